import type { ByteSource } from '@lorafuse/core';

/** Chunk size for streaming comparisons: bounded memory, large reads. */
const CHUNK_BYTES = 8 * 1024 * 1024;

/**
 * Whether `length` bytes at `offsetA` of `a` equal `length` bytes at `offsetB` of `b`, read side by
 * side in bounded chunks (the first differing chunk ends the reading). Exact: no hash collisions.
 */
export async function byteRangesEqual(a: ByteSource, offsetA: number, b: ByteSource, offsetB: number, length: number): Promise<boolean> {
  if (a === b && offsetA === offsetB) return true;
  for (let done = 0; done < length; ) {
    const n = Math.min(CHUNK_BYTES, length - done);
    const [x, y] = await Promise.all([a.read(offsetA + done, n), b.read(offsetB + done, n)]);
    if (!Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength))) return false;
    done += n;
  }
  return true;
}
