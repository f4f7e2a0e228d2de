/**
 * The matrix-view CPU twins against values worked out by hand, so that the browser tests compare
 * the GPU with something known to be right.
 */
import { describe, expect, it } from 'vitest';
import { heatmapColorRef, heatmapRef, HEATMAP_BACKGROUND, HEATMAP_STOPS, magnitudeGridRef } from '../src/reference.js';
import { magnitudeGridShape } from '../src/view.js';

describe('magnitudeGridShape', () => {
  it('shrinks each axis on its own to at most maxSide cells', () => {
    expect(magnitudeGridShape(50257, 768, 1024)).toEqual({ rows: 50257, cols: 768, blockRows: 50, blockCols: 1, gridRows: 1006, gridCols: 768 });
    expect(magnitudeGridShape(768, 3072, 1024)).toEqual({ rows: 768, cols: 3072, blockRows: 1, blockCols: 3, gridRows: 768, gridCols: 1024 });
    expect(magnitudeGridShape(0, 7, 4)).toMatchObject({ blockCols: 2, gridRows: 0, gridCols: 4 });
    expect(() => magnitudeGridShape(3, 3, 0)).toThrow(/maxSide/);
    expect(() => magnitudeGridShape(-1, 3, 2)).toThrow(/rows/);
  });
});

describe('magnitudeGridRef', () => {
  it('takes max |m| and Σ m² per block, short blocks at the ends', () => {
    // 3 × 5 into blocks of 2 × 3 (maxSide 2): cells [[0..1]×[0..2], [0..1]×[3..4]], [[2]×[0..2], [2]×[3..4]].
    const m = new Float32Array([1, -2, 0, 4, 0.5, -3, 1, 1, -1, 2, 0, 0, -5, 0, 0]);
    const g = magnitudeGridRef({ m, rows: 3, cols: 5, maxSide: 2 });
    expect(g.shape).toMatchObject({ blockRows: 2, blockCols: 3, gridRows: 2, gridCols: 2 });
    expect(Array.from(g.maxAbs)).toEqual([3, 4, 5, 0]);
    expect(Array.from(g.sumSquares)).toEqual([1 + 4 + 0 + 9 + 1 + 1, 16 + 0.25 + 1 + 4, 25, 0]);
  });

  it('ranks NaN above Inf, and -0 as 0', () => {
    const g = magnitudeGridRef({ m: new Float32Array([NaN, -Infinity, -0, -0]), rows: 2, cols: 2, maxSide: 1 });
    expect(g.maxAbs[0]).toBeNaN();
    const h = magnitudeGridRef({ m: new Float32Array([1, -Infinity, -0, -0]), rows: 2, cols: 2, maxSide: 1 });
    expect(h.maxAbs[0]).toBe(Infinity);
    expect(Object.is(magnitudeGridRef({ m: new Float32Array([-0]), rows: 1, cols: 1, maxSide: 1 }).maxAbs[0], 0)).toBe(true);
  });
});

describe('heatmapRef', () => {
  it('runs the colour map from its first stop to its last, interpolating between', () => {
    expect(heatmapColorRef(0)).toEqual([...HEATMAP_STOPS[0]!]);
    expect(heatmapColorRef(1)).toEqual([...HEATMAP_STOPS[7]!]);
    expect(heatmapColorRef(2)).toEqual([...HEATMAP_STOPS[7]!]);
    const mid = heatmapColorRef(1.5 / 7);
    mid.forEach((c, i) => expect(c).toBeCloseTo((HEATMAP_STOPS[1]![i]! + HEATMAP_STOPS[2]![i]!) / 2, 12));
  });

  it('maps pixel centres through gridFromPixel to the nearest cell, background off the grid', () => {
    // 1 × 2 grid [0, 2] drawn 2 pixels per cell, shifted right by one pixel: 5 × 1 pixels.
    const px = heatmapRef({ cells: new Float32Array([0, 2]), gridRows: 1, gridCols: 2, width: 5, height: 1, gridFromPixel: [0.5, 0, 0, 0, 0, 1, 0, 0, -0.5, 0, 1, 0], maxValue: 2 });
    const rgb = (p: number) => Array.from(px.subarray(p * 4, p * 4 + 3));
    const bytes = (c: readonly number[]) => c.map((v) => Math.round(v * 255));
    expect(rgb(0)).toEqual(bytes(HEATMAP_BACKGROUND));
    expect(rgb(1)).toEqual(bytes(HEATMAP_STOPS[0]!));
    expect(rgb(2)).toEqual(bytes(HEATMAP_STOPS[0]!));
    expect(rgb(3)).toEqual(bytes(HEATMAP_STOPS[7]!));
    expect(rgb(4)).toEqual(bytes(HEATMAP_STOPS[7]!));
    expect(px[3]).toBe(255);
  });
});
