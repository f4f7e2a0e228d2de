import { describe, expect, it } from 'vitest';
import { memorySource } from '@lorafuse/core';
import { COMPARE_CHUNK_BYTES, rangesEqualBySlices } from './byte-ranges.js';

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
  });
});
