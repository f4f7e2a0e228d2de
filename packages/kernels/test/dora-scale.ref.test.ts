/** CPU reference of the DoRA scaling, checked against hand-computed norms and an independent f64 recomputation. */
import { describe, expect, it } from 'vitest';
import { doraFeatureCount, doraScaleRef } from '../src/reference.js';
import { SeededRandom } from '../src/testing/seeded-random.js';

describe('doraScaleRef', () => {
  it('row features ([out, in]): each row scaled to its magnitude', () => {
    // Rows [3, 4] (norm 5) and [0, 2] (norm 2).
    const w = new Float32Array([3, 4, 0, 2]);
    expect(doraScaleRef({ w, rows: 2, cols: 2, magnitude: [10, 1], featureAxis: 'row' })).toBe(0);
    expect([...w]).toEqual([6, 8, 0, 1]);
  });

  it('column features ([in, out]): each column scaled to its magnitude', () => {
    // Columns [3, 4] (norm 5) and [0, 2] (norm 2), stored row-major as [[3, 0], [4, 2]].
    const w = new Float32Array([3, 0, 4, 2]);
    doraScaleRef({ w, rows: 2, cols: 2, magnitude: [10, 1], featureAxis: 'column' });
    expect([...w]).toEqual([6, 0, 8, 1]);
  });

  it('one row, one column, and empty matrices', () => {
    const row = new Float32Array([-2]);
    doraScaleRef({ w: row, rows: 1, cols: 1, magnitude: [3], featureAxis: 'column' });
    expect([...row]).toEqual([-3]);
    const col = new Float32Array([1, 1, 1, 1]); // [4, 1]: one column of norm 2
    doraScaleRef({ w: col, rows: 4, cols: 1, magnitude: [1], featureAxis: 'column' });
    expect([...col]).toEqual([0.5, 0.5, 0.5, 0.5]);
    expect(doraScaleRef({ w: new Float32Array(0), rows: 0, cols: 5, magnitude: [1, 2, 3, 4, 5], featureAxis: 'column' })).toBe(0);
  });

  it('a zero norm gives non-finite values, counted', () => {
    const w = new Float32Array([0, 1, 0, 1]);
    expect(doraScaleRef({ w, rows: 2, cols: 2, magnitude: [1, 1], featureAxis: 'column' })).toBe(2);
    expect(Number.isNaN(w[0])).toBe(true);
  });

  it('matches an f64 recomputation on an awkward shape, in both axes', () => {
    const rnd = new SeededRandom(7);
    const rows = 37, cols = 65;
    const v = Float32Array.from({ length: rows * cols }, () => rnd.normal(1));
    for (const featureAxis of ['row', 'column'] as const) {
      const n = doraFeatureCount(rows, cols, featureAxis);
      const m = Float32Array.from({ length: n }, () => 1 + rnd.uniform(0.5));
      const w = v.slice();
      doraScaleRef({ w, rows, cols, magnitude: m, featureAxis });
      for (let j = 0; j < n; j++) {
        const idx = (i: number) => (featureAxis === 'row' ? j * cols + i : i * cols + j);
        const len = featureAxis === 'row' ? cols : rows;
        let ss = 0;
        for (let i = 0; i < len; i++) ss += v[idx(i)]! ** 2;
        let got = 0;
        for (let i = 0; i < len; i++) {
          expect(w[idx(i)]).toBe(Math.fround((m[j]! / Math.sqrt(ss)) * v[idx(i)]!));
          got += w[idx(i)]! ** 2;
        }
        expect(Math.sqrt(got)).toBeCloseTo(m[j]!, 5);
      }
    }
  });

  it('refuses a magnitude vector of the wrong length', () => {
    expect(() => doraScaleRef({ w: new Float32Array(6), rows: 2, cols: 3, magnitude: [1, 2], featureAxis: 'column' })).toThrow(/3 output features/);
  });
});
