import { compareRef } from '@lorafuse/kernels/reference';
import type { OpenFiles } from '../../fs/inputs.js';
import { elementCount, elementTypeOf, type CompareExecutor } from '../device.js';

/** The CPU executor: the compare kernel's TypeScript reference (f64 sums), for machines without Chromium. */
export function createCpuCompareExecutor(files: OpenFiles): CompareExecutor {
  return {
    device: 'cpu',
    description: 'CPU reference in Node.js (f64 accumulation)',
    async compare(a, b, tolerance) {
      const [x, y] = await Promise.all([files.get(a.file).read(a.fileOffset, a.byteLength), files.get(b.file).read(b.fileOffset, b.byteLength)]);
      return compareRef({ count: elementCount(a), a: { type: elementTypeOf(a), bytes: x }, b: { type: elementTypeOf(b), bytes: y }, ...tolerance });
    },
    close: async () => undefined,
  };
}
