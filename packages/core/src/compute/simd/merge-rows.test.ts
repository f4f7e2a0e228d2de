/** The SIMD merge loop gives the JavaScript loop's bytes on awkward shapes, row ranges and non-finite values. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loraMergeRef } from '@lorafuse/kernels/reference';
import { loraMergeRowsInPlace } from '../merge-rows.js';
import { SeededRandom } from '../../testing/random.js';
import { loraMergeRowsSimd, simdMergeAvailable } from './merge-rows.js';

const bits = (x: Float32Array) => [...new Uint32Array(x.buffer, x.byteOffset, x.length)];

function inputs(rows: number, cols: number, rank: number, orientation: 'linear' | 'transposed', seed: number) {
  const rng = new SeededRandom(seed);
  const [outF, inF] = orientation === 'linear' ? [rows, cols] : [cols, rows];
  return { w: rng.normalArray(rows * cols, 0.1), a: rng.normalArray(rank * inF, 0.3), b: rng.normalArray(outF * rank, 0.3), rows, cols, rank, orientation, scale: 16 / 3 / Math.max(1, rank) };
}

describe('loraMergeRowsSimd', () => {
  it('runs on WebAssembly SIMD in Node (else these tests would only test the fallback)', () => {
    expect(simdMergeAvailable()).toBe(true);
  });

  for (const orientation of ['linear', 'transposed'] as const) {
    // Odd and even columns, fewer than a pair, less than four pairs, rank 1, 2, 3, 8, 17; rows over
    // several 256 KiB blocks (a 4097-column row is its own block).
    it.each([
      [1, 1, 1],
      [3, 1, 8],
      [2, 2, 3],
      [5, 7, 8],
      [37, 29, 16],
      [9, 4097, 8],
      [300, 300, 17],
      [64, 9, 2],
      [1, 8, 1],
    ])(`${orientation}, %i×%i r=%i: the JavaScript loop's bytes, in row ranges`, (rows, cols, rank) => {
      const p = inputs(rows, cols, rank, orientation, rows * 7 + cols * 3 + rank);
      const want = p.w.slice();
      expect(loraMergeRowsInPlace({ ...p, w: want })).toBe(0);
      const got = p.w.slice();
      const cut = Math.floor(rows / 3);
      expect(loraMergeRowsSimd({ ...p, w: got }, 0, cut) + loraMergeRowsSimd({ ...p, w: got }, cut, rows)).toBe(0);
      expect(bits(got)).toEqual(bits(want));
      expect(bits(got)).toEqual(bits(loraMergeRef(p)));
    });
  }

  it('leaves rows outside the range untouched', () => {
    const p = inputs(20, 13, 4, 'linear', 5);
    const got = p.w.slice();
    loraMergeRowsSimd({ ...p, w: got }, 5, 9);
    expect(bits(got.subarray(0, 5 * 13))).toEqual(bits(p.w.subarray(0, 5 * 13)));
    expect(bits(got.subarray(9 * 13))).toEqual(bits(p.w.subarray(9 * 13)));
  });

  it('counts NaN and Inf (f32 overflow of a finite f64 sum too) with the reference bytes, NaN payloads included', () => {
    const p = inputs(40, 21, 2, 'linear', 9);
    p.b[2 * 3] = 3e38; // row 3 overflows f32
    p.a[5] = Number.NaN; // column 5 of every row is NaN
    p.w[17 * 21 + 2] = Number.POSITIVE_INFINITY;
    const want = p.w.slice();
    const wantCount = loraMergeRowsInPlace({ ...p, w: want });
    const got = p.w.slice();
    expect(loraMergeRowsSimd({ ...p, w: got })).toBe(wantCount);
    expect(wantCount).toBeGreaterThan(40);
    expect(bits(got)).toEqual(bits(want));
  });

  it('keeps the sign of zero', () => {
    const p = { w: new Float32Array([-0, -0, -0]), a: new Float32Array([-0]), b: new Float32Array([0, -0, 0]), rows: 1, cols: 3, rank: 1, orientation: 'transposed' as const, scale: 1 };
    const want = p.w.slice();
    loraMergeRowsInPlace({ ...p, w: want });
    loraMergeRowsSimd(p);
    expect(bits(p.w)).toEqual(bits(want));
  });

  it('rejects short inputs and bad row ranges as the loop does', () => {
    const p = { w: new Float32Array(3), a: new Float32Array(2), b: new Float32Array(2), rows: 2, cols: 2, rank: 1, orientation: 'linear' as const, scale: 1 };
    expect(() => loraMergeRowsSimd(p)).toThrow(RangeError);
    expect(() => loraMergeRowsSimd({ ...p, w: new Float32Array(4) }, 1, 3)).toThrow(/row range/);
    expect(loraMergeRowsSimd({ ...p, w: new Float32Array(4) }, 1, 1)).toBe(0);
  });

  it('works on W in shared memory (the worker threads merge there)', () => {
    const p = inputs(33, 70, 8, 'transposed', 3);
    const want = p.w.slice();
    loraMergeRowsInPlace({ ...p, w: want });
    const got = new Float32Array(new SharedArrayBuffer(p.w.byteLength));
    got.set(p.w);
    loraMergeRowsSimd({ ...p, w: got });
    expect(bits(got)).toEqual(bits(want));
  });

  it('the committed module is what merge-rows.wat compiles to', () => {
    const script = fileURLToPath(new URL('../../../scripts/compile-wasm.mjs', import.meta.url));
    const r = spawnSync(process.execPath, [script, '--check'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
