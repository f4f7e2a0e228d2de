import { decodeToF32, encodeFromF32 } from '../safetensors/dtype.js';
import { describe, expect, it } from 'vitest';
import { addDelta } from './add-delta.js';

const f32 = (values: number[]) => new Uint8Array(new Float32Array(values).buffer);

describe('addDelta (W + ΔW after the page computed ΔW)', () => {
  it('adds in f32, rounding each sum to f32, in place for f32 W', () => {
    const w = f32([1, 2 ** 24, -3.5, 0]);
    const delta = f32([2 ** -30, 1, 0.25, -0]);
    const out = addDelta(w, 'F32', delta, 'F32');
    expect(out.bytes).toBe(w);
    // 1 + 2^-30 rounds back to 1 in f32; 2^24 + 1 rounds to 2^24 (ties to even).
    expect([...new Float32Array(out.bytes.buffer)]).toEqual([1, 2 ** 24, -3.25, 0]);
    expect(out.nonFinite).toBe(0);
  });

  it('counts NaN and overflow to Inf in the result, not in ΔW alone', () => {
    const out = addDelta(f32([3e38, 1, Number.NaN, 5]), 'F32', f32([3e38, Number.POSITIVE_INFINITY, 0, 1]), 'F32');
    const values = [...new Float32Array(out.bytes.buffer)];
    expect(values.slice(0, 2)).toEqual([Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY]);
    expect(values[2]).toBeNaN();
    expect(out.nonFinite).toBe(3);
  });

  it('decodes 16-bit W and encodes the result in the tensor dtype', () => {
    for (const dtype of ['F16', 'BF16'] as const) {
      const w = encodeFromF32(dtype, new Float32Array([1, -2, 0.5]));
      const out = addDelta(w, dtype, f32([0.5, 0.25, -1]), dtype);
      expect(out.bytes.byteLength).toBe(6);
      expect([...decodeToF32(dtype, out.bytes)]).toEqual([1.5, -1.75, -0.5]);
      expect(w).toEqual(encodeFromF32(dtype, new Float32Array([1, -2, 0.5]))); // not modified
    }
  });

  it('accepts ΔW at an unaligned offset and empty tensors, and refuses a ΔW of another size', () => {
    const backing = new Uint8Array(9);
    backing.set(f32([0.5, 1]), 1);
    expect([...new Float32Array(addDelta(f32([1, 1]), 'F32', backing.subarray(1), 'F32').bytes.buffer)]).toEqual([1.5, 2]);
    expect(addDelta(new Uint8Array(0), 'F32', new Uint8Array(0), 'F32')).toMatchObject({ nonFinite: 0 });
    expect(() => addDelta(f32([1, 2]), 'F32', f32([1]), 'F32')).toThrow(/ΔW has 1 values/);
  });
});
