/**
 * Worker thread of the CPU executor (see workers.ts): merges a range of W's rows in place, in
 * shared memory, every delta summed in f64 and W rounded once, with core's
 * `loraMergeTermsRowsInPlace` (for one delta bit-identical to the kernels' f64 reference), and
 * hashes merged results so the main thread need not.
 */
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { loraMergeTermsRowsInPlace } from '@lorafuse/core';
import type { DigestJob, RowJob, RowJobResult } from './workers.js';

parentPort!.on('message', (job: RowJob | DigestJob) => {
  let reply: RowJobResult;
  try {
    if ('digestOf' in job) {
      parentPort!.postMessage({ id: job.id, digest: createHash('sha256').update(new Uint8Array(job.digestOf, 0, job.byteLength)).digest('hex') } satisfies RowJobResult);
      return;
    }
    const terms = job.deltas.map((d) => ({ a: new Float32Array(d.a), b: new Float32Array(d.b), rank: d.rank, orientation: d.orientation, scale: d.scale }));
    reply = { id: job.id, nonFinite: loraMergeTermsRowsInPlace(new Float32Array(job.w), job.rows, job.cols, terms, job.rowStart, job.rowEnd) };
  } catch (e) {
    reply = { id: job.id, error: e instanceof Error ? e.message : String(e) };
  }
  parentPort!.postMessage(reply);
});
