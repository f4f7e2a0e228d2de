/**
 * Byte-range comparison slice by slice, so a proof never holds two whole large tensors: the default
 * of `proveLoads` (the CLI passes its own, reading into reused buffers).
 */
import { bytesEqual } from '../bytes-equal.js';
import type { ByteSource } from '../io.js';

/** Bytes compared per step: bounded memory whatever the tensor's size. */
export const COMPARE_CHUNK_BYTES = 16 * 2 ** 20;

/** Whether `length` bytes at `offsetA` of `a` equal those at `offsetB` of `b` (the first differing slice ends the reading). */
export async function rangesEqualBySlices(a: ByteSource, offsetA: number, b: ByteSource, offsetB: number, length: number): Promise<boolean> {
  if (a === b && offsetA === offsetB) return true;
  for (let done = 0; done < length; done += COMPARE_CHUNK_BYTES) {
    const n = Math.min(COMPARE_CHUNK_BYTES, length - done);
    const [x, y] = await Promise.all([a.read(offsetA + done, n), b.read(offsetB + done, n)]);
    if (!bytesEqual(x, y)) return false;
  }
  return true;
}

/**
 * {@link rangesEqualBySlices} answering each question once: the proof asks it for transformers v4
 * and v5 alike, and again for a tensor loaded through the tie, about the same bytes.
 */
export function rangesEqualOnce(): typeof rangesEqualBySlices {
  const known = new Map<string, Promise<boolean>>();
  return (a, offsetA, b, offsetB, length) => {
    const key = JSON.stringify([a.label, offsetA, b.label, offsetB, length]);
    let answer = known.get(key);
    if (!answer) {
      answer = rangesEqualBySlices(a, offsetA, b, offsetB, length);
      known.set(key, answer);
    }
    return answer;
  };
}
