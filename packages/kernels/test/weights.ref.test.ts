/**
 * The weight kernels' CPU twin against values worked out by hand, and the chunk plan and binding
 * checks, in Node (no GPU).
 */
import { describe, expect, it } from 'vitest';
import { applyDoraRef, applyTermsRef, inspectRef } from '../src/reference.js';
import { planWordChunks, weightWords } from '../src/weights/weight-view.js';

const u16 = (bytes: Uint8Array) => Array.from(new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2));
const f32 = (bytes: Uint8Array) => Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4));

describe('applyTermsRef', () => {
  it('adds s·B·A to an out-in W and s·(B·A)ᵀ to an in-out W', () => {
    // B [2,1] = [1, 2], A [1,3] = [1, 10, 100], s = 0.5: B·A = [[1,10,100],[2,20,200]].
    const a = new Float32Array([1, 10, 100]);
    const b = new Float32Array([1, 2]);
    const w = new Uint8Array(new Float32Array(6).fill(1).buffer);
    expect(f32(applyTermsRef({ w, rows: 2, cols: 3, layout: 'out-in', element: 'f32', terms: [{ a, b, rank: 1, scale: 0.5 }] }))).toEqual([1.5, 6, 51, 2, 11, 101]);
    // in-out W [3, 2] = (B·A)ᵀ with A [1,3] over W's rows and B [2,1] over its columns.
    expect(f32(applyTermsRef({ w, rows: 3, cols: 2, layout: 'in-out', element: 'f32', terms: [{ a, b, rank: 1, scale: 0.5 }] }))).toEqual([1.5, 2, 6, 11, 51, 101]);
  });

  it('rounds once to f16/bf16, ties to even, overflow to Inf, and keeps the high half of an odd last word', () => {
    const values = new Float32Array([1 + 2 ** -11, 1 + 3 * 2 ** -11, 70000]);
    const w = new Uint8Array(8);
    new DataView(w.buffer).setUint16(6, 0xbeef, true);
    const out = applyTermsRef({ w, rows: 1, cols: 3, layout: 'out-in', element: 'f16', terms: [{ a: values, b: new Float32Array([1]), rank: 1, scale: 1 }] });
    expect(u16(out)).toEqual([0x3c00, 0x3c02, 0x7c00, 0xbeef]);
    const bf = applyTermsRef({ w: new Uint8Array(4), rows: 1, cols: 2, layout: 'out-in', element: 'bf16', terms: [{ a: new Float32Array([1 + 2 ** -8, 1 + 3 * 2 ** -8]), b: new Float32Array([1]), rank: 1, scale: 1 }] });
    expect(u16(bf)).toEqual([0x3f80, 0x3f82]);
  });

  it('rebuilds from the pristine copy, whatever W held', () => {
    const pristine = new Uint8Array(new Float32Array([2, 4]).buffer);
    const w = new Uint8Array(new Float32Array([1e9, -1e9]).buffer);
    const out = applyTermsRef({ w, pristine, rows: 1, cols: 2, layout: 'out-in', element: 'f32', terms: [{ a: new Float32Array([1, 1]), b: new Float32Array([1]), rank: 1, scale: -1 }] });
    expect(f32(out)).toEqual([1, 3]);
  });
});

describe('applyDoraRef', () => {
  it('scales each row of an out-in W and each column of an in-out W by m / ‖W + ΔW‖', () => {
    // out-in rows [3, 4] and [6, 8] (norms 5, 10), m = [10, 5]: [6, 8] and [3, 4].
    const rowsW = new Uint8Array(new Float32Array([3, 4, 6, 8]).buffer);
    expect(f32(applyDoraRef({ w: rowsW, rows: 2, cols: 2, layout: 'out-in', element: 'f32', terms: [], magnitude: [10, 5] }))).toEqual([6, 8, 3, 4]);
    // in-out columns [3, 4] and [6, 8]: the same factors along the other axis.
    const colsW = new Uint8Array(new Float32Array([3, 6, 4, 8]).buffer);
    expect(f32(applyDoraRef({ w: colsW, rows: 2, cols: 2, layout: 'in-out', element: 'f32', terms: [], magnitude: [10, 5] }))).toEqual([6, 3, 8, 4]);
  });

  it('takes the norm of W + ΔW (from the pristine copy for a rebuild), not of W', () => {
    // pristine [3, 0] + ΔW [0, 4] (B = [1], A = [0, 4]) = [3, 4], norm 5, m = [1].
    const pristine = new Uint8Array(new Float32Array([3, 0]).buffer);
    const w = new Uint8Array(new Float32Array([100, 100]).buffer);
    const out = applyDoraRef({ w, pristine, rows: 1, cols: 2, layout: 'out-in', element: 'f32', terms: [{ a: new Float32Array([0, 4]), b: new Float32Array([1]), rank: 1, scale: 1 }], magnitude: [1] });
    expect(f32(out)).toEqual([Math.fround(0.6), Math.fround(0.8)]);
  });

  it('writes NaN for a zero-norm feature, rounds once to f16 and keeps the high half of an odd last word', () => {
    // out-in [3, 1]: rows [2], [0], [-4]; m = [1.5, 1, 3] gives 1.5, NaN, -3.
    const w = new Uint8Array(8);
    const view = new DataView(w.buffer);
    view.setUint16(0, 0x4000, true);
    view.setUint16(4, 0xc400, true);
    view.setUint16(6, 0xbeef, true);
    const out = u16(applyDoraRef({ w, rows: 3, cols: 1, layout: 'out-in', element: 'f16', terms: [], magnitude: [1.5, 1, 3] }));
    expect([out[0], out[2], out[3]]).toEqual([0x3e00, 0xc200, 0xbeef]);
    expect(out[1]! & 0x7fff).toBeGreaterThan(0x7c00);
  });

  it('refuses more terms than one DoRA pass adds', () => {
    const term = { a: new Float32Array([1]), b: new Float32Array([1]), rank: 1, scale: 1 };
    expect(() => applyDoraRef({ w: new Uint8Array(4), rows: 1, cols: 1, layout: 'out-in', element: 'f32', terms: [term, term, term], magnitude: [1] })).toThrow(RangeError);
  });
});

describe('inspectRef', () => {
  it('counts non-finite values and measures finite pairs', () => {
    const w = new Uint8Array(new Float32Array([1, Number.NaN, 3, Number.POSITIVE_INFINITY]).buffer);
    const r = new Uint8Array(new Float32Array([1, 2, 5, 4]).buffer);
    const stats = inspectRef(w, 'f32', 4, r);
    expect(stats).toMatchObject({ nonFinite: 2, referenceNonFinite: 0, maxAbsDiff: 2 });
    expect(stats.cosine).toBeCloseTo(16 / Math.sqrt(10 * 26), 12);
  });
});

describe('planWordChunks', () => {
  it('splits W into aligned runs of whole words, the last one short, and nothing for an empty W', () => {
    const view = { binding: { buffer: { size: 1 << 20 } as GPUBuffer, offset: 512 }, rows: 31, cols: 33, layout: 'out-in', element: 'f16' } as const;
    const chunks = planWordChunks(view, { minStorageBufferOffsetAlignment: 256, maxStorageBufferBindingSize: 1000 });
    expect(weightWords(view)).toBe(512);
    expect(chunks).toEqual([
      { wordStart: 0, wordCount: 192, offset: 512 },
      { wordStart: 192, wordCount: 192, offset: 1280 },
      { wordStart: 384, wordCount: 128, offset: 2048 },
    ]);
    expect(planWordChunks({ ...view, rows: 0 }, { minStorageBufferOffsetAlignment: 256, maxStorageBufferBindingSize: 1000 })).toEqual([]);
  });
});
