import { describe, expect, it } from 'vitest';
import { decodeToF32, encodeFromF32 } from '../safetensors/dtype.js';
import { applyLoraBias } from './lora-bias.js';

describe('applyLoraBias', () => {
  it('adds scale·lora_B.bias in f32 and rounds once to the bias dtype', () => {
    const base = encodeFromF32('F32', Float32Array.from([1, -2, 0.1]));
    const lb = encodeFromF32('F16', Float32Array.from([0.5, 0.25, 1]));
    const r = applyLoraBias(base, 'F32', [{ bytes: lb, dtype: 'F16', scale: 2 }]);
    expect(Array.from(decodeToF32('F32', r.bytes))).toEqual([2, -1.5, Math.fround(Math.fround(0.1) + 2)]);
    expect(r.nonFinite).toBe(0);
    const h = applyLoraBias(encodeFromF32('BF16', Float32Array.from([1])), 'BF16', [{ bytes: encodeFromF32('F32', Float32Array.from([1e-3])), dtype: 'F32', scale: 1 }]);
    expect(Array.from(decodeToF32('BF16', h.bytes))).toEqual([1]);
  });

  it('counts NaN/Inf it produces and refuses a vector of another length', () => {
    const big = applyLoraBias(encodeFromF32('F32', Float32Array.from([3e38])), 'F32', [{ bytes: encodeFromF32('F32', Float32Array.from([3e38])), dtype: 'F32', scale: 1 }]);
    expect(big.nonFinite).toBe(1);
    expect(() => applyLoraBias(encodeFromF32('F32', new Float32Array(2)), 'F32', [{ bytes: encodeFromF32('F32', new Float32Array(3)), dtype: 'F32', scale: 1 }])).toThrow(RangeError);
  });
});
