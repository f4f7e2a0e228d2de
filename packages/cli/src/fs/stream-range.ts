import type { ByteSource } from '@lorafuse/core';

/** Chunk size for streaming unchanged tensors: large enough for throughput, small enough to bound memory. */
const CHUNK_BYTES = 8 * 1024 * 1024;

/** Streams `length` bytes at `offset` of `source` to `sink` in bounded chunks. */
export async function streamRange(source: ByteSource, offset: number, length: number, sink: (chunk: Uint8Array) => Promise<void>): Promise<void> {
  let done = 0;
  while (done < length) {
    const n = Math.min(CHUNK_BYTES, length - done);
    await sink(await source.read(offset + done, n));
    done += n;
  }
}
