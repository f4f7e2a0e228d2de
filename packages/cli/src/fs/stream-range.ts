import type { ByteSource } from '@lorafuse/core';

/** Chunk size for streaming unchanged tensors: large enough for throughput, small enough to bound memory. */
const CHUNK_BYTES = 8 * 1024 * 1024;

/**
 * Streams `length` bytes at `offset` of `source` to `sink` in bounded chunks. With a `readInto`
 * source one buffer is reused for every chunk (allocating per chunk made the GC cost more than the
 * merge itself on a 500 MB checkpoint), so `sink` must be done with a chunk when its promise settles.
 */
export async function streamRange(source: ByteSource, offset: number, length: number, sink: (chunk: Uint8Array) => Promise<void>): Promise<void> {
  const reuse = source.readInto ? new Uint8Array(Math.min(CHUNK_BYTES, length)) : undefined;
  let done = 0;
  while (done < length) {
    const n = Math.min(CHUNK_BYTES, length - done);
    if (reuse && source.readInto) {
      const chunk = reuse.subarray(0, n);
      await source.readInto(chunk, offset + done);
      await sink(chunk);
    } else {
      await sink(await source.read(offset + done, n));
    }
    done += n;
  }
}
