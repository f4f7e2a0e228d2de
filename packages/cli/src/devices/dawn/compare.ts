/**
 * The Dawn executor of `diff`: the compare kernel on Dawn inside Node (see device.ts). Both
 * tensors are read from their files and written to GPU buffers directly; only the statistics come
 * back.
 */
import { runCompare } from '@lorafuse/kernels';
import type { OpenFiles } from '../../fs/inputs.js';
import { elementCount, elementTypeOf, type CompareExecutor } from '../device.js';
import { startDawnDevice } from './device.js';

const OTHER_DEVICES = 'Or compare with `lorafuse diff ... --device webgpu` (Chromium) or `--device cpu`.';

/** Starts Dawn; `close()` destroys its device. */
export async function createDawnCompareExecutor(files: OpenFiles, env: Record<string, string | undefined> = process.env): Promise<CompareExecutor> {
  const dawn = await startDawnDevice(env, OTHER_DEVICES);
  return {
    device: 'dawn',
    description: dawn.description,
    async compare(a, b, tolerance) {
      const [x, y] = await Promise.all([files.get(a.file).read(a.fileOffset, a.byteLength), files.get(b.file).read(b.fileOffset, b.byteLength)]);
      return runCompare(dawn.device, { count: elementCount(a), a: { type: elementTypeOf(a), bytes: x }, b: { type: elementTypeOf(b), bytes: y }, ...tolerance, label: a.name });
    },
    close: async () => dawn.destroy(),
  };
}
