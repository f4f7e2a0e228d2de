/** CPU reference and dispatch planning, checked against hand-computed examples (exact). */
import { describe, expect, it } from 'vitest';
import { foldDispatch, planRowChunks } from '../src/dispatch.js';
import { loraMergeSizes } from '../src/internal.js';
import { loraMergeRef } from '../src/reference.js';

describe('loraMergeRef', () => {
  it('linear, r=1: W[o,i] += s·B[o]·A[i]', () => {
    // A [1, in=3], B [out=2, 1], W [2, 3] = 0
    const out = loraMergeRef({ rows: 2, cols: 3, rank: 1, orientation: 'linear', w: new Float32Array(6), a: [1, 2, 3], b: [10, 20], scale: 0.5 });
    expect([...out]).toEqual([5, 10, 15, 10, 20, 30]);
  });

  it('transposed (Conv1D), r=1: W[i,o] += s·B[o]·A[i]', () => {
    // W [in=3, out=2]
    const out = loraMergeRef({ rows: 3, cols: 2, rank: 1, orientation: 'transposed', w: new Float32Array(6), a: [1, 2, 3], b: [10, 20], scale: 0.5 });
    expect([...out]).toEqual([5, 10, 10, 20, 15, 30]);
  });

  it('r=2 in both orientations: B@A and its transpose', () => {
    const a = [1, 2, 3, 4]; // [r=2, in=2]
    const b = [1, 0, 2, 1]; // [out=2, r=2]; B@A = [[1, 2], [5, 8]]
    const w = [1, 1, 1, 1];
    expect([...loraMergeRef({ rows: 2, cols: 2, rank: 2, orientation: 'linear', w, a, b, scale: 1 })]).toEqual([2, 3, 6, 9]);
    expect([...loraMergeRef({ rows: 2, cols: 2, rank: 2, orientation: 'transposed', w, a, b, scale: 1 })]).toEqual([2, 6, 3, 9]);
  });

  it('embedding layout: W [num_emb=3, dim=2], A [r, num_emb], B [dim, r] uses the transposed rule', () => {
    const out = loraMergeRef({ rows: 3, cols: 2, rank: 1, orientation: 'transposed', w: [0, 0, 0, 0, 0, 0], a: [1, 0, -1], b: [2, 3], scale: 1 });
    expect([...out]).toEqual([2, 3, 0, 0, -2, -3]);
  });

  it('accumulates in f64 and rounds once (f32 accumulation would give 0)', () => {
    // Σ = 1e8 + 1 - 1e8: in f32, 1e8 + 1 rounds back to 1e8.
    const out = loraMergeRef({ rows: 1, cols: 1, rank: 3, orientation: 'linear', w: [0], a: [1e8, 1, -1e8], b: [1, 1, 1], scale: 1 });
    expect(out[0]).toBe(1);
  });

  it('does not modify W and returns f32', () => {
    const w = new Float32Array([1, 2]);
    const out = loraMergeRef({ rows: 1, cols: 2, rank: 1, orientation: 'linear', w, a: [1, 1], b: [0.1], scale: 1 });
    expect([...w]).toEqual([1, 2]);
    expect(out).toBeInstanceOf(Float32Array);
    expect(out[0]).toBe(Math.fround(1.1));
  });

  it('empty shapes give empty results', () => {
    expect(loraMergeRef({ rows: 0, cols: 5, rank: 2, orientation: 'linear', w: [], a: new Float32Array(10), b: [], scale: 1 }).length).toBe(0);
  });

  it('rejects rank 0, negative sizes, unknown orientation and short inputs', () => {
    expect(() => loraMergeSizes({ rows: 1, cols: 1, rank: 0, orientation: 'linear' })).toThrow(RangeError);
    expect(() => loraMergeSizes({ rows: -1, cols: 1, rank: 1, orientation: 'linear' })).toThrow(RangeError);
    expect(() => loraMergeSizes({ rows: 1, cols: 1, rank: 1, orientation: 'sideways' as 'linear' })).toThrow(/orientation/);
    expect(() => loraMergeRef({ rows: 2, cols: 2, rank: 1, orientation: 'linear', w: [0, 0, 0], a: [1, 1], b: [1, 1], scale: 1 })).toThrow(RangeError);
  });

  it('sizes: A is [r, in], B is [out, r] in both orientations', () => {
    expect(loraMergeSizes({ rows: 768, cols: 2304, rank: 8, orientation: 'transposed' })).toEqual({ w: 768 * 2304, a: 8 * 768, b: 2304 * 8, inFeatures: 768, outFeatures: 2304 });
    expect(loraMergeSizes({ rows: 2304, cols: 768, rank: 8, orientation: 'linear' })).toEqual({ w: 768 * 2304, a: 8 * 768, b: 2304 * 8, inFeatures: 768, outFeatures: 2304 });
  });
});

describe('foldDispatch', () => {
  it('keeps counts up to the limit 1-D', () => {
    expect(foldDispatch(0)).toEqual([0, 1]);
    expect(foldDispatch(65_535)).toEqual([65_535, 1]);
  });
  it('folds larger counts into 2-D covering every workgroup', () => {
    for (const [count, max] of [[65_536, 65_535], [200_000, 65_535], [20, 8], [9, 3]] as const) {
      const [x, y] = foldDispatch(count, max);
      expect(x).toBeLessThanOrEqual(max);
      expect(y).toBeLessThanOrEqual(max);
      expect(x * y).toBeGreaterThanOrEqual(count);
      expect(x * (y - 1)).toBeLessThan(count); // no fully idle row
    }
  });
  it('throws past max²', () => {
    expect(() => foldDispatch(10, 3)).toThrow(/maxComputeWorkgroupsPerDimension/);
  });
});

describe('planRowChunks', () => {
  it('one chunk when the matrix fits', () => {
    expect(planRowChunks(10, 10, 1 << 20, 256)).toEqual([{ rowStart: 0, rowCount: 10, bindingOffset: 0, bindingSize: 400, elementOffset: 0 }]);
  });
  it('no chunks for an empty matrix', () => {
    expect(planRowChunks(0, 10, 1024, 256)).toEqual([]);
    expect(planRowChunks(10, 0, 1024, 256)).toEqual([]);
  });
  it('covers all rows with aligned offsets within the limit', () => {
    for (const [rows, cols, limit, align] of [[37, 53, 4096, 256], [300, 64, 8192, 256], [1000, 3, 512, 256], [1000, 3, 264, 256], [50257, 768, 128 * 1024 * 1024, 256]] as const) {
      const chunks = planRowChunks(rows, cols, limit, align);
      let next = 0;
      for (const c of chunks) {
        expect(c.rowStart).toBe(next);
        expect(c.rowCount).toBeGreaterThan(0);
        expect(c.bindingOffset % align).toBe(0);
        expect(c.bindingSize).toBeLessThanOrEqual(limit);
        expect(c.bindingSize % 4).toBe(0);
        expect(c.bindingOffset + c.elementOffset * 4).toBe(c.rowStart * cols * 4);
        expect(c.bindingSize).toBe(c.elementOffset * 4 + c.rowCount * cols * 4);
        next += c.rowCount;
      }
      expect(next).toBe(rows);
    }
  });
  it('wte in f32 (154 MB) splits in two under the default 128 MiB binding limit', () => {
    expect(planRowChunks(50257, 768, 128 * 1024 * 1024, 256)).toHaveLength(2);
  });
  it('throws naming maxStorageBufferBindingSize when one row cannot be bound', () => {
    expect(() => planRowChunks(3, 2000, 4096, 256)).toThrow(/maxStorageBufferBindingSize/);
    // The row fits at an aligned start but not after a misaligned one.
    expect(() => planRowChunks(3, 63, 256, 256)).toThrow(/maxStorageBufferBindingSize/);
    // Row 21 of 12-byte rows straddles the 256-byte boundary: no aligned binding of 256 bytes holds it.
    expect(() => planRowChunks(1000, 3, 256, 256)).toThrow(/Row 21/);
  });
});
