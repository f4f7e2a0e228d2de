import type { ByteSource } from '@lorafuse/core';

/** Chunk size for streaming comparisons: bounded memory, large reads. */
const CHUNK_BYTES = 8 * 1024 * 1024;

/**
 * Whether `length` bytes at `offsetA` of `a` equal `length` bytes at `offsetB` of `b`, read side by
 * side in bounded chunks (the first differing chunk ends the reading). Exact: no hash collisions.
 */
export async function byteRangesEqual(a: ByteSource, offsetA: number, b: ByteSource, offsetB: number, length: number): Promise<boolean> {
  if (a === b && offsetA === offsetB) return true;
  // Two buffers reused for every chunk when the sources can fill them (no per-chunk garbage).
  const bufA = a.readInto ? new Uint8Array(Math.min(CHUNK_BYTES, length)) : undefined;
  const bufB = b.readInto ? new Uint8Array(Math.min(CHUNK_BYTES, length)) : undefined;
  const readChunk = async (s: ByteSource, buf: Uint8Array | undefined, offset: number, n: number) => {
    if (!buf || !s.readInto) return s.read(offset, n);
    const view = buf.subarray(0, n);
    await s.readInto(view, offset);
    return view;
  };
  for (let done = 0; done < length; ) {
    const n = Math.min(CHUNK_BYTES, length - done);
    const [x, y] = await Promise.all([readChunk(a, bufA, offsetA + done, n), readChunk(b, bufB, offsetB + done, n)]);
    if (!Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength))) return false;
    done += n;
  }
  return true;
}
