/** How `diff` compares one tensor pair: byte identity in Node first, values on the compare device. */
import type { TensorComparer } from '@lorafuse/core';
import type { LazyExecutor } from '../devices/index.js';
import { byteRangesEqual } from '../fs/byte-ranges.js';
import type { OpenFiles } from '../fs/inputs.js';

/** The `TensorComparer` of core's diff over opened files: byte identity in Node, values on the executor. */
export function createTensorComparer(files: OpenFiles, executor: LazyExecutor): TensorComparer {
  return {
    bytesEqual: (a, b) => byteRangesEqual(files.get(a.file), a.fileOffset, files.get(b.file), b.fileOffset, a.byteLength),
    compare: async (a, b, tolerance) => (await executor.get()).compare(a, b, tolerance),
  };
}
