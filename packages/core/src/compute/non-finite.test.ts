import { describe, expect, it } from 'vitest';
import { encodeFromF32 } from '../safetensors/dtype.js';
import { countNonFiniteEncoded } from './non-finite.js';

describe('countNonFiniteEncoded', () => {
  const values = new Float32Array([0, 1, -2, NaN, Infinity, -Infinity, 65504, 70000, 3.4e38, -1e-45]);
  it('counts NaN/Inf in F32 bytes', () => {
    expect(countNonFiniteEncoded('F32', new Uint8Array(values.buffer))).toBe(3);
  });
  it('counts what F16 rounding makes infinite (70000 and 3.4e38 overflow; 65504 does not)', () => {
    expect(countNonFiniteEncoded('F16', encodeFromF32('F16', values))).toBe(5);
  });
  it('counts BF16 (3.4e38 rounds to Inf in bf16; 70000 does not)', () => {
    expect(countNonFiniteEncoded('BF16', encodeFromF32('BF16', values))).toBe(4);
  });
  it('reads unaligned views and empty tensors', () => {
    const f16 = encodeFromF32('F16', values);
    const shifted = new Uint8Array(f16.byteLength + 1);
    shifted.set(f16, 1);
    expect(countNonFiniteEncoded('F16', shifted.subarray(1))).toBe(5);
    expect(countNonFiniteEncoded('F32', new Uint8Array(0))).toBe(0);
  });
});
