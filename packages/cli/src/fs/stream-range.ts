import type { ByteSource } from '@lorafuse/core';
import { CHUNK_BYTES, withChunkBuffers } from './chunk-buffers.js';

/**
 * Streams `length` bytes at `offset` of `source` to `sink` in bounded chunks. With a `readInto`
 * source two reused buffers alternate, so the next chunk is read while `sink` consumes this one
 * (reading and writing one after the other left half of a 2-core machine idle); `sink` must be
 * done with a chunk when its promise settles.
 */
export async function streamRange(source: ByteSource, offset: number, length: number, sink: (chunk: Uint8Array) => Promise<void>): Promise<void> {
  if (!source.readInto) {
    for (let done = 0; done < length; ) {
      const n = Math.min(CHUNK_BYTES, length - done);
      await sink(await source.read(offset + done, n));
      done += n;
    }
    return;
  }
  const readInto = source.readInto.bind(source);
  await withChunkBuffers(2, async (buffers) => {
    let sinking: Promise<void> = Promise.resolve();
    try {
      for (let done = 0, i = 0; done < length; i++) {
        const n = Math.min(CHUNK_BYTES, length - done);
        const chunk = buffers[i % 2]!.subarray(0, n);
        await readInto(chunk, offset + done);
        await sinking;
        sinking = sink(chunk);
        // Awaited after the next read; a failure before then must not count as unhandled (Node
        // would end the process with a stack trace).
        sinking.catch(() => undefined);
        done += n;
      }
      await sinking;
    } catch (e) {
      // Never return while a sink still uses a buffer that goes back to the pool.
      await sinking.catch(() => undefined);
      throw e;
    }
  });
}
