import { describe, expect, it } from 'vitest';
import { activate, causalAttentionRef, embeddingRef, erf, layerNormRef, matmulRef } from './index.js';

describe('activation references', () => {
  it('gelu_new and its aliases give the tanh approximation (values from torch)', () => {
    // torch.nn.functional.gelu(torch.tensor([1., -2., 0.5], dtype=torch.float64), approximate="tanh")
    const want = [0.8411919906082768, -0.04540230591222494, 0.34571400982514394];
    for (const kind of ['gelu_new', 'gelu_pytorch_tanh', 'gelu_fast'] as const) {
      [1, -2, 0.5].forEach((x, i) => expect(activate(kind, x)).toBeCloseTo(want[i]!, 6));
    }
  });

  it('gelu uses erf (values from torch)', () => {
    // torch.nn.functional.gelu(torch.tensor([1., -2., 0.5], dtype=torch.float64))
    [[1, 0.841344746068543], [-2, -0.04550026389635842], [0.5, 0.34573123063700656]].forEach(([x, y]) => expect(activate('gelu', x!)).toBeCloseTo(y!, 6));
    expect(erf(0)).toBeCloseTo(0, 7);
    expect(erf(3)).toBeCloseTo(0.9999779095, 6);
    expect(erf(-0.3)).toBeCloseTo(-0.3286267595, 6);
  });

  it('relu, silu and quick_gelu', () => {
    expect(activate('relu', -1)).toBe(0);
    expect(activate('relu', 2)).toBe(2);
    expect(activate('silu', 1)).toBeCloseTo(0.7310585786, 7);
    expect(activate('quick_gelu', 1)).toBeCloseTo(1 / (1 + Math.exp(-1.702)), 7);
  });
});

describe('layerNormRef', () => {
  it('normalises each row with the biased variance and eps inside the root', () => {
    const x = Float32Array.of(1, 2, 3, 4, 10, 10, 10, 10);
    const out = layerNormRef(x, 2, 4, Float32Array.of(1, 1, 2, 1), Float32Array.of(0, 0, 0, 0.5), 1e-5);
    const sd = Math.sqrt(1.25 + 1e-5);
    expect(Array.from(out.subarray(0, 4))).toEqual([-1.5 / sd, -0.5 / sd, 1 / sd, 1.5 / sd + 0.5].map(Math.fround));
    // A constant row becomes the bias (variance 0: eps keeps it finite).
    expect(Array.from(out.subarray(4))).toEqual([0, 0, 0, 0.5]);
  });
});

describe('matmulRef', () => {
  const x = Float32Array.of(1, 2, 3, -1, 0, 2); // [2, 3]
  it('Conv1D layout [in, out] and Linear layout [out, in] give the same product of the same matrix', () => {
    const wInOut = Float32Array.of(1, 0, 0, 1, 2, 2); // [3, 2]
    const wOutIn = Float32Array.of(1, 0, 2, 0, 1, 2); // its transpose [2, 3]
    const a = matmulRef(x, wInOut, { rows: 2, inDim: 3, outDim: 2, order: 'in-out' }, Float32Array.of(0.5, -0.5));
    const b = matmulRef(x, wOutIn, { rows: 2, inDim: 3, outDim: 2, order: 'out-in' }, Float32Array.of(0.5, -0.5));
    expect(Array.from(a)).toEqual([7.5, 7.5, 3.5, 3.5]);
    expect(Array.from(b)).toEqual(Array.from(a));
  });

  it('accumulates into a given output; rank-1 and empty shapes', () => {
    const acc = Float32Array.of(1, 1);
    matmulRef(Float32Array.of(2), Float32Array.of(3, 4), { rows: 1, inDim: 1, outDim: 2, order: 'in-out' }, null, acc);
    expect(Array.from(acc)).toEqual([7, 9]);
    expect(matmulRef(new Float32Array(0), new Float32Array(0), { rows: 0, inDim: 3, outDim: 0, order: 'out-in' }).length).toBe(0);
  });
});

describe('causalAttentionRef', () => {
  it('the first position sees only itself; later ones average over what they see (softmax of equal scores)', () => {
    // One head, headDim 1; q = 0 makes every score 0, so the output is the mean of the visible values.
    const out = causalAttentionRef({ q: new Float32Array(3), k: Float32Array.of(1, 2, 3), v: Float32Array.of(1, 2, 6), queries: 3, positions: 3, heads: 1, headDim: 1, scale: 1 });
    expect(Array.from(out)).toEqual([1, 1.5, 3]);
  });

  it('queries at the end of a cache attend to the whole past; heads are independent', () => {
    // Two heads of dim 1, one query after two cached positions.
    const k = Float32Array.of(0, 0, 0, 0, 0, 0);
    const v = Float32Array.of(1, 10, 2, 20, 3, 30);
    const out = causalAttentionRef({ q: Float32Array.of(5, -5), k, v, queries: 1, positions: 3, heads: 2, headDim: 1, scale: 0.5 });
    expect(Array.from(out)).toEqual([2, 20]);
  });

  it('is safe for large scores (no overflow in exp)', () => {
    const out = causalAttentionRef({ q: Float32Array.of(1000), k: Float32Array.of(1000, 999), v: Float32Array.of(1, 2), queries: 1, positions: 2, heads: 1, headDim: 1, scale: 1 });
    expect(out[0]).toBeCloseTo(1, 6);
  });
});

describe('embeddingRef', () => {
  it('picks rows; an id outside the table is a RangeError', () => {
    const table = Float32Array.of(0, 1, 2, 3, 4, 5);
    expect(Array.from(embeddingRef(table, 2, [2, 0, 2]))).toEqual([4, 5, 0, 1, 4, 5]);
    expect(() => embeddingRef(table, 2, [3])).toThrow(RangeError);
    expect(embeddingRef(table, 2, []).length).toBe(0);
  });
});
