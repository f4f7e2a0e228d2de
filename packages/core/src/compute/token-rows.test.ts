import { describe, expect, it } from 'vitest';
import { decodeToF32, encodeFromF32 } from '../safetensors/dtype.js';
import { applyTokenRows } from './token-rows.js';

describe('applyTokenRows', () => {
  it('replaces row indices[k] with row k and leaves the input untouched', () => {
    const base = encodeFromF32('F32', Float32Array.from([0, 0, 1, 1, 2, 2, 3, 3]));
    const rows = encodeFromF32('F32', Float32Array.from([9, 8, 7, 6]));
    const out = applyTokenRows(base, 'F32', rows, 'F32', [3, 1], 2);
    expect(Array.from(decodeToF32('F32', out))).toEqual([0, 0, 7, 6, 2, 2, 9, 8]);
    expect(Array.from(decodeToF32('F32', base))).toEqual([0, 0, 1, 1, 2, 2, 3, 3]);
  });
  it('converts rows to the base dtype once', () => {
    const base = encodeFromF32('BF16', Float32Array.from([0, 0, 1, 1]));
    const rows = encodeFromF32('F32', Float32Array.from([1.5, -2]));
    expect(Array.from(decodeToF32('BF16', applyTokenRows(base, 'BF16', rows, 'F32', [0], 2)))).toEqual([1.5, -2, 1, 1]);
  });
});
