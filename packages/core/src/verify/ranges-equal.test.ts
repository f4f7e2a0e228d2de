import { describe, expect, it } from 'vitest';
import { memorySource } from '../io.js';
import { COMPARE_CHUNK_BYTES, rangesEqualBySlices, rangesEqualOnce } from './ranges-equal.js';

describe('rangesEqualBySlices', () => {
  it('compares ranges longer than one slice, at any offsets, and finds a difference in the last slice', async () => {
    const n = COMPARE_CHUNK_BYTES + 100;
    const x = new Uint8Array(n + 7);
    for (let i = 0; i < x.length; i++) x[i] = (i * 31) & 0xff;
    const y = new Uint8Array(n + 3);
    y.set(x.subarray(7, 7 + n), 3);
    const a = memorySource('a', x);
    const b = memorySource('b', y);
    expect(await rangesEqualBySlices(a, 7, b, 3, n)).toBe(true);
    y[3 + n - 1]! ^= 1;
    expect(await rangesEqualBySlices(a, 7, b, 3, n)).toBe(false);
    expect(await rangesEqualBySlices(a, 0, a, 0, n)).toBe(true);
    // Unaligned views compare byte by byte, with the same answers.
    expect(await rangesEqualBySlices(memorySource('x', x.subarray(1)), 6, b, 3, n)).toBe(false);
    expect(await rangesEqualBySlices(memorySource('x', x.subarray(1)), 6, memorySource('x', x.subarray(2)), 5, n)).toBe(true);
  });

  it('answers a repeated question from the first answer, reading the sources once', async () => {
    let reads = 0;
    const counted = (label: string, bytes: Uint8Array) => ({ ...memorySource(label, bytes), read: async (o: number, l: number) => (reads++, bytes.subarray(o, o + l)) });
    const a = counted('a', new Uint8Array([1, 2, 3, 4, 5]));
    const b = counted('b', new Uint8Array([9, 2, 3, 4, 5]));
    const equal = rangesEqualOnce();
    expect(await equal(a, 1, b, 1, 4)).toBe(true);
    expect(await equal(a, 1, b, 1, 4)).toBe(true);
    expect(reads).toBe(2);
    expect(await equal(a, 0, b, 0, 4)).toBe(false);
    expect(reads).toBe(4);
  });
});
