import { withLookAhead, type FloatCodecDtype } from '@lorafuse/core';
import type { OpenFiles } from '../../fs/inputs.js';
import type { MergedBytes, MergeExecutor, MergeTensor } from '../device.js';
import { startCpuMergePool, type CpuMergePool } from './workers.js';

/** Options of {@link createCpuExecutor}. */
export interface CpuExecutorOptions {
  /** Worker threads (default: one per core, at most 8; 0 or 1 merges on the calling thread). */
  threads?: number;
  /** The run's pool, lent (the executor then starts none and leaves it open when it closes). */
  pool?: CpuMergePool;
}

/**
 * The CPU executor: the kernels' f64 reference semantics (core's `mergeOnCpu`, bit-identical to
 * `loraMergeRef`), W's rows spread over worker threads, and two merges in flight when the caller
 * {@link MergeExecutor.prefetch}es. For machines without Chromium or a GPU.
 */
export function createCpuExecutor(files: OpenFiles, options: CpuExecutorOptions = {}): MergeExecutor {
  const pool = options.pool ?? startCpuMergePool(options.threads);
  const mergeOne = (t: MergeTensor): Promise<MergedBytes> =>
    pool.merge(
      t.source,
      t.dtype as FloatCodecDtype,
      (ref) => files.get(ref.file).read(ref.fileOffset, ref.byteLength),
      async (ref, target) => {
        const source = files.get(ref.file);
        if (source.readInto) await source.readInto(target, ref.fileOffset);
        else target.set(await source.read(ref.fileOffset, ref.byteLength));
      },
    );
  const prefetcher = withLookAhead(mergeOne, { limit: 2 });
  return {
    device: 'cpu',
    get description() {
      const threads = pool.threads;
      return `CPU in Node.js (f64 accumulation, ${threads > 1 ? `${threads} worker threads` : 'one thread'})`;
    },
    merge: (t) => prefetcher.run(t),
    prefetch: (tensors) => prefetcher.prefetch(tensors),
    close: async () => {
      await prefetcher.drain();
      if (!options.pool) await pool.close();
    },
  };
}
