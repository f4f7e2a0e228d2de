/** Byte-range comparison in the page, slice by slice, so the proof never holds two whole large tensors. */
import type { ByteSource } from '@lorafuse/core';

/** Bytes compared per step: bounded memory whatever the tensor's size. */
export const COMPARE_CHUNK_BYTES = 16 * 2 ** 20;

/** Whether `length` bytes at `offsetA` of `a` equal those at `offsetB` of `b` (the first differing slice ends the reading). */
export async function rangesEqualBySlices(a: ByteSource, offsetA: number, b: ByteSource, offsetB: number, length: number): Promise<boolean> {
  if (a === b && offsetA === offsetB) return true;
  for (let done = 0; done < length; done += COMPARE_CHUNK_BYTES) {
    const n = Math.min(COMPARE_CHUNK_BYTES, length - done);
    const [x, y] = await Promise.all([a.read(offsetA + done, n), b.read(offsetB + done, n)]);
    for (let i = 0; i < n; i++) if (x[i] !== y[i]) return false;
  }
  return true;
}
