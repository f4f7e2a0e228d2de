/**
 * Worker thread of the CPU pool (see workers.ts): merges a range of W's rows in place, in shared
 * memory, every delta summed in f64 and W rounded once, with core's `loraMergeTermsRowsInPlace` (for
 * one delta bit-identical to the kernels' f64 reference); hashes merged results so the main thread
 * need not; and reads file ranges for the proof (compared, or hashed) through descriptors the main
 * thread holds open, with blocking reads into buffers small enough to stay in this core's cache.
 */
import { createHash } from 'node:crypto';
import { readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { loraMergeTermsRowsInPlace } from '@lorafuse/core';
import type { FdRange, RowJobResult, WorkerJob } from './workers.js';

/** Bytes read at a time from a file: two such buffers fit in a core's L2 cache. */
const READ_BYTES = 1 << 20;
let buffers: [Buffer, Buffer] | undefined;

/** Calls `use` with each chunk of `range` (a reused buffer), then with `other`'s chunk at the same place when given. */
function readChunks(range: FdRange, use: (chunk: Buffer, done: number) => boolean | void, other?: FdRange): void {
  buffers ??= [Buffer.allocUnsafe(READ_BYTES), Buffer.allocUnsafe(READ_BYTES)];
  for (let done = 0; done < range.length; ) {
    const n = Math.min(READ_BYTES, range.length - done);
    fill(range, buffers[0], n, done);
    if (other) fill(other, buffers[1], n, done);
    if (use(buffers[0].subarray(0, n), done) === false) return;
    done += n;
  }
}

/** Fills `n` bytes of `target` from `range` at `done`; a failure names the descriptor it read. */
function fill(range: FdRange, target: Buffer, n: number, done: number): void {
  try {
    for (let got = 0; got < n; ) {
      const read = readSync(range.fd, target, got, n - got, range.offset + done + got);
      if (read === 0) throw new Error('file ended early (changed while reading?)');
      got += read;
    }
  } catch (e) {
    throw Object.assign(e as Error, { fd: range.fd });
  }
}

function answer(job: WorkerJob): RowJobResult {
  if ('digestOf' in job) return { id: job.id, digest: createHash('sha256').update(new Uint8Array(job.digestOf, 0, job.byteLength)).digest('hex') };
  if ('digestFile' in job) {
    const hash = createHash('sha256');
    readChunks(job.digestFile, (chunk) => {
      hash.update(chunk);
    });
    return { id: job.id, digest: hash.digest('hex') };
  }
  if ('equal' in job) {
    const [a, b] = job.equal;
    let equal = true;
    readChunks(a, (chunk) => (equal = chunk.equals(buffers![1].subarray(0, chunk.byteLength))), b);
    return { id: job.id, equal };
  }
  const terms = job.deltas.map((d) => ({ a: new Float32Array(d.a), b: new Float32Array(d.b), rank: d.rank, orientation: d.orientation, scale: d.scale }));
  return { id: job.id, nonFinite: loraMergeTermsRowsInPlace(new Float32Array(job.w), job.rows, job.cols, terms, job.rowStart, job.rowEnd) };
}

parentPort!.on('message', (job: WorkerJob) => {
  let reply: RowJobResult;
  try {
    reply = answer(job);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const fd = (e as { fd?: unknown } | null)?.fd;
    reply = {
      id: job.id,
      error: err instanceof Error ? err.message : String(e),
      ...(typeof err?.code === 'string' ? { code: err.code } : {}),
      ...(typeof err?.errno === 'number' ? { errno: err.errno } : {}),
      ...(typeof err?.syscall === 'string' ? { syscall: err.syscall } : {}),
      ...(typeof fd === 'number' ? { fd } : {}),
    };
  }
  parentPort!.postMessage(reply);
});
