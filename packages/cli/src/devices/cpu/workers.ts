/**
 * The CPU executor's worker threads: W's rows split over one worker per core, each merging its rows
 * in place in shared memory (`SharedArrayBuffer`), so a merge takes 1/N of the single-thread time
 * while the main thread reads and writes files. Results are bit-identical to the single-thread
 * merge (each element is computed by exactly the same operations, whichever thread runs it).
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { applyDoraStep, decodeToF32, doraInSequence, encodeFromF32, mergeOnCpu, type FloatCodecDtype, type ReadTensorBytes, type TensorRef, type TensorSource } from '@lorafuse/core';
import type { MergedBytes } from '../device.js';

/** A row range of one merge, sent to a worker. `w`, `a`, `b` are shared f32 buffers. */
export interface RowJob {
  readonly id: number;
  readonly w: SharedArrayBuffer;
  readonly rows: number;
  readonly cols: number;
  readonly rowStart: number;
  readonly rowEnd: number;
  readonly deltas: ReadonlyArray<{ a: SharedArrayBuffer; b: SharedArrayBuffer; rank: number; scale: number; orientation: 'linear' | 'transposed' }>;
}

/** SHA-256 of the first `byteLength` bytes of a shared buffer, sent to a worker. */
export interface DigestJob {
  readonly id: number;
  readonly digestOf: SharedArrayBuffer;
  readonly byteLength: number;
}

/** A byte range of a file the main thread has open, read by a worker through the same descriptor. */
export interface FdRange {
  readonly fd: number;
  readonly offset: number;
  readonly length: number;
}

/** Whether two file ranges of the same length hold the same bytes, sent to a worker. */
export interface EqualJob {
  readonly id: number;
  readonly equal: readonly [FdRange, FdRange];
}

/** SHA-256 of a file range, sent to a worker. */
export interface DigestFileJob {
  readonly id: number;
  readonly digestFile: FdRange;
}

/** Any job a worker takes. */
export type WorkerJob = RowJob | DigestJob | EqualJob | DigestFileJob;

/**
 * A worker's answer: the NaN/Inf count of its rows after the last delta, a digest, whether ranges
 * are equal, or an error (with the OS error's code and system call when a read failed).
 */
export type RowJobResult =
  | { id: number; nonFinite: number }
  | { id: number; digest: string }
  | { id: number; equal: boolean }
  | { id: number; error: string; code?: string; errno?: number; syscall?: string; fd?: number };

/** Reads a tensor's bytes into `target` (exactly its byte length). */
export type ReadTensorInto = (ref: TensorRef, target: Uint8Array) => Promise<void>;

/** Below this many elements of W a merge runs on the calling thread (worker round trips cost more). */
export const MIN_PARALLEL_ELEMENTS = 1 << 18;

/** `Omit` over each member of a union. */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A pool of merge workers. */
export interface CpuMergePool {
  /** Worker threads (0 when the pool could not start them: merges then run on the calling thread). */
  readonly threads: number;
  /** `mergeOnCpu`, with W's rows spread over the workers when W is large enough. */
  merge(source: Extract<TensorSource, { kind: 'merge' }>, outDtype: FloatCodecDtype, read: ReadTensorBytes, readInto?: ReadTensorInto): Promise<MergedBytes>;
  /**
   * Whether two ranges of open files (the same length) hold the same bytes, compared by the
   * workers in slices spread over all of them. Rejects when there are no workers (see `threads`) or
   * one died; a read error carries the OS error's code.
   */
  filesEqual(a: FdRange, b: FdRange): Promise<boolean>;
  /** SHA-256 (hex) of a range of an open file, read by one worker; rejects as {@link filesEqual}. */
  digestFile(range: FdRange): Promise<string>;
  /** Terminates the workers. */
  close(): Promise<void>;
}

/** Bytes of a comparison one worker takes at a time: a large tensor is compared by all of them. */
const EQUAL_SLICE_BYTES = 16 * 1024 * 1024;

/**
 * Shared buffers kept for reuse by size: a model repeats a handful of weight shapes, and
 * `SharedArrayBuffer`s are external memory that garbage collection returns late.
 */
class SharedBuffers {
  private readonly free = new Map<number, SharedArrayBuffer[]>();
  private kept = 0;

  constructor(private readonly maxKeptBytes: number) {}

  take(byteLength: number): SharedArrayBuffer {
    const size = Math.max(4, byteLength);
    const list = this.free.get(size);
    const buffer = list?.pop();
    if (buffer !== undefined) {
      this.kept -= size;
      return buffer;
    }
    return new SharedArrayBuffer(size);
  }

  give(buffer: SharedArrayBuffer): void {
    if (this.kept + buffer.byteLength > this.maxKeptBytes) return;
    this.kept += buffer.byteLength;
    const list = this.free.get(buffer.byteLength) ?? [];
    list.push(buffer);
    this.free.set(buffer.byteLength, list);
  }
}

/**
 * Starts `threads` workers (default: one per core, at most 8; none on a single core). Workers that
 * fail to start (e.g. when running from TypeScript sources, where the worker's `.js` file does not
 * exist) make the pool fall back to the calling thread.
 */
export function startCpuMergePool(threads = Math.min(8, availableParallelism())): CpuMergePool {
  const workers: Worker[] = [];
  let broken = threads < 2;
  let nextId = 1;
  const pending = new Map<number, { resolve(answer: number | string | boolean): void; reject(e: Error): void; worker: number; bytes: number }>();
  // Bytes of file jobs each worker has queued: the next goes to the least busy.
  const queued: number[] = [];
  const failAll = (err: Error) => {
    broken = true;
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  if (!broken) {
    const url = new URL('./merge-worker.js', import.meta.url);
    for (let i = 0; i < threads; i++) {
      let worker: Worker;
      try {
        worker = new Worker(url);
      } catch {
        broken = true;
        break;
      }
      worker.unref();
      worker.on('message', (m: RowJobResult) => {
        const p = pending.get(m.id);
        if (!p) return;
        pending.delete(m.id);
        queued[p.worker]! -= p.bytes;
        if ('error' in m) p.reject(Object.assign(new Error(m.error), m.code === undefined ? {} : { code: m.code, errno: m.errno, syscall: m.syscall }, m.fd === undefined ? {} : { fd: m.fd }));
        else p.resolve('digest' in m ? m.digest : 'equal' in m ? m.equal : m.nonFinite);
      });
      worker.on('error', (e) => failAll(e instanceof Error ? e : new Error(String(e))));
      worker.on('exit', (code) => {
        if (pending.size > 0) failAll(new Error(`a CPU merge worker exited (code ${code})`));
      });
      workers.push(worker);
      queued.push(0);
    }
  }

  const buffers = new SharedBuffers(64 * 2 ** 20);
  const sharedF32 = (values: Float32Array): SharedArrayBuffer => {
    const shared = buffers.take(values.byteLength);
    new Float32Array(shared, 0, values.length).set(values);
    return shared;
  };

  const post = (worker: Worker, job: DistributiveOmit<WorkerJob, 'id'>, bytes = 0): Promise<number | string | boolean> =>
    new Promise((resolve, reject) => {
      if (broken) {
        reject(new Error('the CPU pool has no worker threads'));
        return;
      }
      const id = nextId++;
      const index = workers.indexOf(worker);
      pending.set(id, { resolve, reject, worker: index, bytes });
      queued[index]! += bytes;
      worker.postMessage({ ...job, id });
    });
  const leastBusy = () => workers[queued.indexOf(Math.min(...queued))]!;
  const run = (worker: Worker, job: Omit<RowJob, 'id'>) => post(worker, job) as Promise<number>;
  let nextDigestWorker = 0;
  const digestIn = (shared: SharedArrayBuffer, byteLength: number) => post(workers[nextDigestWorker++ % workers.length]!, { digestOf: shared, byteLength }) as Promise<string>;

  return {
    get threads() {
      return broken ? 0 : workers.length;
    },
    async merge(source, outDtype, read, readInto) {
      const { rows, cols } = source.deltas[0] ?? { rows: 0, cols: 0 };
      if (broken || source.deltas.length === 0 || rows * cols < MIN_PARALLEL_ELEMENTS || doraInSequence(source)) return mergeOnCpu(source, outDtype, read);
      const deltas: Array<RowJob['deltas'][number]> = [];
      for (const d of source.deltas) {
        deltas.push({
          a: sharedF32(decodeToF32(d.a.dtype as FloatCodecDtype, await read(d.a))),
          b: sharedF32(decodeToF32(d.b.dtype as FloatCodecDtype, await read(d.b))),
          rank: d.rank,
          scale: d.scale,
          orientation: d.orientation,
        });
      }
      const w = buffers.take(rows * cols * 4);
      const wView = new Float32Array(w, 0, rows * cols);
      // f32 in and out (the usual case) is read straight into shared memory and handed out from
      // there: no copies on the main thread, which also writes the output file.
      const f32InPlace = source.base.dtype === 'F32' && outDtype === 'F32' && readInto !== undefined;
      let handedOut = false;
      try {
        if (f32InPlace) await readInto(source.base, new Uint8Array(w, 0, rows * cols * 4));
        else wView.set(decodeToF32(source.base.dtype as FloatCodecDtype, await read(source.base)));
        const per = Math.ceil(rows / workers.length);
        const counts = await Promise.all(
          workers.map((worker, i) => (i * per < rows ? run(worker, { w, rows, cols, rowStart: i * per, rowEnd: Math.min(rows, (i + 1) * per), deltas }) : Promise.resolve(0))),
        );
        // DoRA's norms need the whole merged matrix: they run here, after every row range is done.
        const nonFinite = (await applyDoraStep(source, wView, read)) ?? counts.reduce((x, y) => x + y, 0);
        if (!f32InPlace) return { bytes: encodeFromF32(outDtype, wView), nonFinite };
        const digest = await digestIn(w, rows * cols * 4);
        handedOut = true;
        let released = false;
        return {
          bytes: new Uint8Array(w, 0, rows * cols * 4),
          nonFinite,
          digest,
          release: () => {
            if (!released) buffers.give(w);
            released = true;
          },
        };
      } catch (e) {
        // A worker that died (or never started) is not the merge's fault: redo it on this thread.
        if (broken) return mergeOnCpu(source, outDtype, read);
        throw e;
      } finally {
        if (!handedOut) buffers.give(w);
        for (const d of deltas) buffers.give(d.a), buffers.give(d.b);
      }
    },
    async filesEqual(a, b) {
      if (a.length !== b.length) throw new Error('internal: ranges of different lengths compared');
      const slices: Array<Promise<boolean>> = [];
      for (let at = 0; at < a.length || slices.length === 0; at += EQUAL_SLICE_BYTES) {
        const length = Math.min(EQUAL_SLICE_BYTES, a.length - at);
        const job = { equal: [{ fd: a.fd, offset: a.offset + at, length }, { fd: b.fd, offset: b.offset + at, length }] as const };
        slices.push(post(leastBusy(), job, length) as Promise<boolean>);
      }
      const settled = await Promise.allSettled(slices);
      for (const s of settled) if (s.status === 'rejected') throw s.reason;
      return settled.every((s) => s.status === 'fulfilled' && s.value);
    },
    digestFile: (range) => post(leastBusy(), { digestFile: range }, range.length) as Promise<string>,
    async close() {
      failAll(new Error('the CPU merge pool was closed'));
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}
