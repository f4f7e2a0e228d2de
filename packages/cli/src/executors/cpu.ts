import { mergeOnCpu, type FloatCodecDtype } from '@lorafuse/core';
import type { OpenFiles } from '../fs/inputs.js';
import type { MergedBytes, MergeExecutor, MergeTensor } from './executor.js';

/** The CPU executor: the kernels' TypeScript reference, for machines without Chromium or WebGPU. */
export function createCpuExecutor(files: OpenFiles): MergeExecutor {
  return {
    device: 'cpu',
    description: 'CPU reference in Node.js (f64 accumulation)',
    merge: (t: MergeTensor): Promise<MergedBytes> =>
      mergeOnCpu(t.source, t.dtype as FloatCodecDtype, (ref) => files.get(ref.file).read(ref.fileOffset, ref.byteLength)),
    close: async () => undefined,
  };
}
