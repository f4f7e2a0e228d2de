/**
 * Worker thread of the CPU executor (see workers.ts): merges a range of W's rows in place, in
 * shared memory, delta after delta, with core's `loraMergeRowsInPlace` (bit-identical to the
 * kernels' f64 reference), and hashes merged results so the main thread need not.
 */
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { loraMergeRowsInPlace } from '@lorafuse/core';
import type { DigestJob, RowJob, RowJobResult } from './workers.js';

parentPort!.on('message', (job: RowJob | DigestJob) => {
  let reply: RowJobResult;
  try {
    if ('digestOf' in job) {
      parentPort!.postMessage({ id: job.id, digest: createHash('sha256').update(new Uint8Array(job.digestOf, 0, job.byteLength)).digest('hex') } satisfies RowJobResult);
      return;
    }
    const w = new Float32Array(job.w);
    let nonFinite = 0;
    for (const d of job.deltas) {
      nonFinite = loraMergeRowsInPlace(
        { w, a: new Float32Array(d.a), b: new Float32Array(d.b), rows: job.rows, cols: job.cols, rank: d.rank, orientation: d.orientation, scale: d.scale },
        job.rowStart,
        job.rowEnd,
      );
    }
    reply = { id: job.id, nonFinite };
  } catch (e) {
    reply = { id: job.id, error: e instanceof Error ? e.message : String(e) };
  }
  parentPort!.postMessage(reply);
});
