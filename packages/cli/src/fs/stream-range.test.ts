import { memorySource, type ByteSource } from '@lorafuse/core';
import { describe, expect, it } from 'vitest';
import { byteRangesEqual } from './byte-ranges.js';
import { CHUNK_BYTES } from './chunk-buffers.js';
import { streamRange } from './stream-range.js';

/** A source that fills buffers (as files do), counting reads. */
function fillingSource(bytes: Uint8Array): ByteSource & { reads: number } {
  const inner = memorySource('test', bytes);
  const source = {
    ...inner,
    reads: 0,
    async readInto(target: Uint8Array, offset: number) {
      source.reads++;
      target.set(bytes.subarray(offset, offset + target.byteLength));
    },
  };
  return source;
}

const pattern = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + (i >> 13)) & 0xff);

describe('streamRange', () => {
  it('delivers every chunk intact to a slow sink while the next one is read ahead', async () => {
    const bytes = pattern(3 * CHUNK_BYTES + 1234);
    const source = fillingSource(bytes);
    const got: number[] = [];
    let at = 100;
    await streamRange(source, 100, bytes.byteLength - 100, async (chunk) => {
      const copy = chunk.slice();
      // The read-ahead runs now; a chunk must stay untouched until this promise settles.
      await new Promise((r) => setTimeout(r, 5));
      expect(Buffer.compare(chunk, copy)).toBe(0);
      expect(Buffer.compare(chunk, bytes.subarray(at, at + chunk.byteLength))).toBe(0);
      at += chunk.byteLength;
      got.push(chunk.byteLength);
    });
    expect(at).toBe(bytes.byteLength);
    expect(got).toEqual([CHUNK_BYTES, CHUNK_BYTES, CHUNK_BYTES, 1134]);
    expect(source.reads).toBe(4);
  });

  it('stops at the first failing sink and waits for it before giving the buffers back', async () => {
    const source = fillingSource(pattern(2 * CHUNK_BYTES));
    let calls = 0;
    await expect(
      streamRange(source, 0, 2 * CHUNK_BYTES, async () => {
        calls++;
        throw new Error('disk full');
      }),
    ).rejects.toThrow('disk full');
    expect(calls).toBe(1);
  });

  it('a sink failing while the next chunk is still being read is reported, never left unhandled', async () => {
    const bytes = pattern(3 * CHUNK_BYTES);
    const slow = {
      ...memorySource('slow', bytes),
      async readInto(target: Uint8Array, offset: number) {
        await new Promise((r) => setTimeout(r, 30));
        target.set(bytes.subarray(offset, offset + target.byteLength));
      },
    };
    const unhandled: unknown[] = [];
    const record = (e: unknown) => void unhandled.push(e);
    process.on('unhandledRejection', record);
    try {
      await expect(streamRange(slow, 0, bytes.byteLength, () => Promise.reject(new Error('disk full')))).rejects.toThrow('disk full');
      await new Promise((r) => setTimeout(r, 10));
    } finally {
      process.off('unhandledRejection', record);
    }
    expect(unhandled).toEqual([]);
  });

  it('streams sources without readInto, and zero bytes', async () => {
    const bytes = pattern(CHUNK_BYTES + 5);
    const chunks: Uint8Array[] = [];
    await streamRange(memorySource('m', bytes), 0, bytes.byteLength, async (c) => void chunks.push(c.slice()));
    expect(Buffer.compare(Buffer.concat(chunks), bytes)).toBe(0);
    await streamRange(fillingSource(bytes), 0, 0, async () => {
      throw new Error('no chunk expected');
    });
  });
});

describe('byteRangesEqual', () => {
  it('finds a difference in the last byte of a multi-chunk range, and equality at other offsets', async () => {
    const a = pattern(2 * CHUNK_BYTES + 10);
    const b = new Uint8Array(a.byteLength + 3);
    b.set(a, 3);
    expect(await byteRangesEqual(fillingSource(a), 0, fillingSource(b), 3, a.byteLength)).toBe(true);
    b[b.byteLength - 1]! ^= 1;
    expect(await byteRangesEqual(fillingSource(a), 0, fillingSource(b), 3, a.byteLength)).toBe(false);
    expect(await byteRangesEqual(memorySource('a', a), 0, fillingSource(b), 3, 100)).toBe(true);
  });
});
