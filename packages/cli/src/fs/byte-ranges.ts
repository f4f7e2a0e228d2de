import type { ByteSource } from '@lorafuse/core';
import { CHUNK_BYTES, withChunkBuffers } from './chunk-buffers.js';

/**
 * Whether `length` bytes at `offsetA` of `a` equal `length` bytes at `offsetB` of `b`, read side by
 * side in bounded chunks (the first differing chunk ends the reading). Exact: no hash collisions.
 */
export async function byteRangesEqual(a: ByteSource, offsetA: number, b: ByteSource, offsetB: number, length: number): Promise<boolean> {
  if (a === b && offsetA === offsetB) return true;
  return withChunkBuffers(2, async ([bufA, bufB]) => {
    const readChunk = async (s: ByteSource, buf: Uint8Array, offset: number, n: number) => {
      if (!s.readInto) return s.read(offset, n);
      const view = buf.subarray(0, n);
      await s.readInto(view, offset);
      return view;
    };
    for (let done = 0; done < length; ) {
      const n = Math.min(CHUNK_BYTES, length - done);
      const [x, y] = await Promise.all([readChunk(a, bufA!, offsetA + done, n), readChunk(b, bufB!, offsetB + done, n)]);
      if (!Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength))) return false;
      done += n;
    }
    return true;
  });
}
