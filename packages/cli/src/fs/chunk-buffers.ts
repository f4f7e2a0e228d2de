/**
 * The buffers that file ranges are streamed through. Allocating one per tensor made garbage
 * collection cost more than the I/O on a 500 MB checkpoint (hundreds of 8 MiB ArrayBuffers are
 * external memory that V8 frees late), so they are lent out and kept for reuse: as many exist as
 * were ever in use at once.
 */

/** Chunk size for streaming ranges: large enough for throughput, small enough to bound memory. */
export const CHUNK_BYTES = 8 * 1024 * 1024;

const free: Uint8Array[] = [];

/** Runs `use` with `count` chunk buffers of {@link CHUNK_BYTES}; `use` must not keep them. */
export async function withChunkBuffers<T>(count: number, use: (buffers: Uint8Array[]) => Promise<T>): Promise<T> {
  const lent = Array.from({ length: count }, () => free.pop() ?? new Uint8Array(CHUNK_BYTES));
  try {
    return await use(lent);
  } finally {
    free.push(...lent);
  }
}
