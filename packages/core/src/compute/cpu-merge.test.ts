/** The CPU executor's merge is bit-identical to the kernels' f64 reference, row range by row range; several deltas round W once. */
import { describe, expect, it } from 'vitest';
import { loraMergeRef } from '@lorafuse/kernels/reference';
import type { LoraMergeOrientation } from '@lorafuse/kernels/internal';
import { countNonFinite, doraInSequence, loraMergeTermsRowsInPlace, mergeOnCpu } from './cpu-merge.js';
import { loraMergeColumnFactor, loraMergeRowsInPlace } from './merge-rows.js';
import type { TensorRef } from '../safetensors/tensor-ref.js';
import { SeededRandom } from '../testing/random.js';

function inputs(rows: number, cols: number, rank: number, orientation: LoraMergeOrientation, seed: number) {
  const rng = new SeededRandom(seed);
  const [outF, inF] = orientation === 'linear' ? [rows, cols] : [cols, rows];
  return { w: rng.normalArray(rows * cols, 0.1), a: rng.normalArray(rank * inF, 0.3), b: rng.normalArray(outF * rank, 0.3) };
}

const bits = (x: Float32Array) => new Uint32Array(x.buffer, x.byteOffset, x.length);

describe('loraMergeRowsInPlace', () => {
  for (const orientation of ['linear', 'transposed'] as const) {
    it.each([1, 2, 3, 4, 5, 8, 12, 16, 64])(`${orientation}, r=%i: bit-identical to loraMergeRef`, (rank) => {
      const rows = 37;
      const cols = 29;
      const { w, a, b } = inputs(rows, cols, rank, orientation, rank * 31 + (orientation === 'linear' ? 1 : 2));
      const scale = 16 / 3 / rank;
      const ref = loraMergeRef({ rows, cols, rank, orientation, w, a, b, scale });
      const mine = w.slice();
      const column = loraMergeColumnFactor({ w: mine, a, b, rows, cols, rank, orientation, scale });
      // In three row ranges, as the worker threads split it.
      let nonFinite = 0;
      for (const [s, e] of [[0, 10], [10, 11], [11, rows]] as const) nonFinite += loraMergeRowsInPlace({ w: mine, a, b, rows, cols, rank, orientation, scale }, s, e, column);
      expect([...bits(mine)]).toEqual([...bits(ref)]);
      expect(nonFinite).toBe(0);
    });
  }

  it('counts NaN and Inf, including f32 overflow of a finite f64 sum', () => {
    const w = new Float32Array([0, 1, 2, 3]);
    const a = new Float32Array([1, 1]); // [r=1, in=2]
    const b = new Float32Array([3e38, Number.NaN]); // [out=2, r=1]
    const p = { w, a, b, rows: 2, cols: 2, rank: 1, orientation: 'linear' as const, scale: 2 };
    const ref = loraMergeRef(p);
    expect(loraMergeRowsInPlace(p)).toBe(4);
    expect([...bits(w)]).toEqual([...bits(ref)]);
    expect(countNonFinite(ref)).toBe(4);
  });

  it('keeps the sign of zero as the reference does', () => {
    const w = new Float32Array([-0, -0]);
    const p = { w, a: new Float32Array([-0]), b: new Float32Array([0, -0]), rows: 1, cols: 2, rank: 1, orientation: 'transposed' as const, scale: 1 };
    const ref = loraMergeRef({ ...p, w: w.slice() });
    loraMergeRowsInPlace(p);
    expect([...bits(w)]).toEqual([...bits(ref)]);
  });

  it('rejects short inputs and bad row ranges', () => {
    const p = { w: new Float32Array(3), a: new Float32Array(2), b: new Float32Array(2), rows: 2, cols: 2, rank: 1, orientation: 'linear' as const, scale: 1 };
    expect(() => loraMergeRowsInPlace(p)).toThrow(RangeError);
    expect(() => loraMergeRowsInPlace({ ...p, w: new Float32Array(4) }, 1, 3)).toThrow(/row range/);
  });
});

describe('mergeOnCpu', () => {
  it('adds several deltas in f64 and rounds W once (not once per delta)', async () => {
    const rows = 9;
    const cols = 7;
    const one = inputs(rows, cols, 3, 'transposed', 5);
    const two = inputs(rows, cols, 2, 'transposed', 6);
    const files: Record<string, Float32Array> = { w: one.w, a1: one.a, b1: one.b, a2: two.a, b2: two.b };
    const ref = (file: string): TensorRef => ({ file, name: file, dtype: 'F32', shape: [files[file]!.length], fileOffset: 0, byteLength: files[file]!.byteLength });
    const delta = (i: number, rank: number, scale: number) => ({ modulePath: `m${i}`, a: ref(`a${i}`), b: ref(`b${i}`), rank, alpha: 1, scale, adapter: `adapter${i}`, weight: 1, orientation: 'transposed' as const, rows, cols });
    const result = await mergeOnCpu({ kind: 'merge', base: ref('w'), deltas: [delta(1, 3, 0.5), delta(2, 2, 3)] }, 'F32', async (r) => new Uint8Array(files[r.file]!.buffer.slice(0)));
    // Independently: f32(W + 0.5·Σ_k A1ᵀB1ᵀ + 3·Σ_k A2ᵀB2ᵀ), the sums in f64 (Conv1D layout: ΔW[i, j] = Σ_k A[k, i]·B[j, k]).
    const dw = (f: { a: Float32Array; b: Float32Array }, rank: number, i: number, j: number) => {
      let sum = 0;
      for (let k = 0; k < rank; k++) sum += f.a[k * rows + i]! * f.b[j * rank + k]!;
      return sum;
    };
    const expected = Float32Array.from({ length: rows * cols }, (_, x) => {
      const [i, j] = [Math.floor(x / cols), x % cols];
      return one.w[x]! + (0.5 * dw(one, 3, i, j) + 3 * dw(two, 2, i, j));
    });
    expect([...new Uint32Array(result.bytes.buffer, result.bytes.byteOffset, rows * cols)]).toEqual([...bits(expected)]);
    // Rounding after each delta (the reference applied twice) is a different result somewhere.
    const twice = loraMergeRef({ rows, cols, rank: 2, orientation: 'transposed', a: two.a, b: two.b, scale: 3, w: loraMergeRef({ rows, cols, rank: 3, orientation: 'transposed', a: one.a, b: one.b, scale: 0.5, w: one.w }) });
    expect([...bits(twice)]).not.toEqual([...bits(expected)]);
    expect(result.nonFinite).toBe(0);
  });

  it('loraMergeTermsRowsInPlace by row ranges equals the whole; one term is loraMergeRowsInPlace', () => {
    const rows = 23;
    const cols = 10;
    const one = inputs(rows, cols, 8, 'linear', 41);
    const two = inputs(rows, cols, 5, 'linear', 42);
    const terms = [{ a: one.a, b: one.b, rank: 8, orientation: 'linear' as const, scale: 0.7 }, { a: two.a, b: two.b, rank: 5, orientation: 'linear' as const, scale: -1.5 }];
    const whole = one.w.slice();
    loraMergeTermsRowsInPlace(whole, rows, cols, terms);
    const split = one.w.slice();
    for (const [s, e] of [[0, 4], [4, 5], [5, rows]] as const) loraMergeTermsRowsInPlace(split, rows, cols, terms, s, e);
    expect([...bits(split)]).toEqual([...bits(whole)]);
    const single = one.w.slice();
    loraMergeTermsRowsInPlace(single, rows, cols, [terms[0]!]);
    expect([...bits(single)]).toEqual([...bits(loraMergeRef({ rows, cols, rank: 8, orientation: 'linear', a: one.a, b: one.b, scale: 0.7, w: one.w }))]);
    expect(() => loraMergeTermsRowsInPlace(new Float32Array(3), rows, cols, terms)).toThrow(RangeError);
  });

  it('DoRA: scales W + ΔW per output feature to m / ‖W + ΔW‖ (columns of Conv1D/Embedding, rows of Linear), then rounds once', async () => {
    for (const [orientation, featureAxis, dtype] of [['transposed', 'column', 'F32'], ['linear', 'row', 'F32'], ['transposed', 'column', 'BF16']] as const) {
      const rows = 11;
      const cols = 6;
      const { w, a, b } = inputs(rows, cols, 2, orientation, 9);
      const features = featureAxis === 'row' ? rows : cols;
      const m = Float32Array.from({ length: features }, (_, j) => 0.5 + j / 7);
      const files: Record<string, Float32Array> = { w, a, b, m };
      const ref = (file: string): TensorRef => ({ file, name: file, dtype: 'F32', shape: [files[file]!.length], fileOffset: 0, byteLength: files[file]!.byteLength });
      const source = { kind: 'merge' as const, base: ref('w'), deltas: [{ modulePath: 'm', a: ref('a'), b: ref('b'), rank: 2, alpha: 1, scale: 0.75, adapter: 'adapter', weight: 1, orientation, rows, cols }], dora: [{ adapter: 'adapter', magnitude: ref('m'), featureAxis }] };
      const result = await mergeOnCpu(source, dtype, async (r) => new Uint8Array(files[r.file]!.buffer.slice(0)));
      // Independently: V = W + ΔW (f32), then per feature j the f64 norm over its elements.
      const v = loraMergeRef({ rows, cols, rank: 2, orientation, w, a, b, scale: 0.75 });
      const at = (j: number, i: number) => (featureAxis === 'row' ? j * cols + i : i * cols + j);
      const len = featureAxis === 'row' ? cols : rows;
      const want = new Float32Array(rows * cols);
      for (let j = 0; j < features; j++) {
        let ss = 0;
        for (let i = 0; i < len; i++) ss += v[at(j, i)]! ** 2;
        for (let i = 0; i < len; i++) want[at(j, i)] = (m[j]! / Math.sqrt(ss)) * v[at(j, i)]!;
      }
      if (dtype === 'F32') {
        expect([...new Uint32Array(result.bytes.buffer, result.bytes.byteOffset, rows * cols)]).toEqual([...bits(want)]);
      } else {
        const got = new Uint16Array(result.bytes.buffer, result.bytes.byteOffset, rows * cols);
        got.forEach((h, i) => expect(new Float32Array(new Uint32Array([h << 16]).buffer)[0]).toBeCloseTo(want[i]!, 2));
      }
      expect(result.nonFinite).toBe(0);
    }
  });

  it('DoRA: a zero-norm feature gives NaN/Inf, counted like any other non-finite result', async () => {
    const files: Record<string, Float32Array> = { w: new Float32Array([0, 1, 0, 1]), a: new Float32Array([0, 0]), b: new Float32Array([0, 0]), m: new Float32Array([1, 1]) };
    const ref = (file: string): TensorRef => ({ file, name: file, dtype: 'F32', shape: [files[file]!.length], fileOffset: 0, byteLength: files[file]!.byteLength });
    const source = { kind: 'merge' as const, base: ref('w'), deltas: [{ modulePath: 'm', a: ref('a'), b: ref('b'), rank: 1, alpha: 1, scale: 1, adapter: 'adapter', weight: 1, orientation: 'transposed' as const, rows: 2, cols: 2 }], dora: [{ adapter: 'adapter', magnitude: ref('m'), featureAxis: 'column' as const }] };
    const result = await mergeOnCpu(source, 'F32', async (r) => new Uint8Array(files[r.file]!.buffer.slice(0)));
    expect(result.nonFinite).toBe(2);
  });

  it('DoRA among several adapters: in adapter order, each DoRA step scales what came before plus its own ΔW by m / ‖W + its own ΔW‖', async () => {
    // Three adapters on one Conv1D-like weight [in 8, out 5]: DoRA, LoRA, DoRA (weights folded into the scales).
    const rows = 8;
    const cols = 5;
    const one = inputs(rows, cols, 2, 'transposed', 21);
    const two = inputs(rows, cols, 3, 'transposed', 22);
    const three = inputs(rows, cols, 1, 'transposed', 23);
    const m1 = Float32Array.from({ length: cols }, (_, j) => 0.4 + j / 9);
    const m3 = Float32Array.from({ length: cols }, (_, j) => 1.3 - j / 11);
    const files: Record<string, Float32Array> = { w: one.w, a1: one.a, b1: one.b, a2: two.a, b2: two.b, a3: three.a, b3: three.b, m1, m3 };
    const ref = (file: string): TensorRef => ({ file, name: file, dtype: 'F32', shape: [files[file]!.length], fileOffset: 0, byteLength: files[file]!.byteLength });
    const delta = (i: number, rank: number, scale: number) => ({ modulePath: `m${i}`, a: ref(`a${i}`), b: ref(`b${i}`), rank, alpha: 1, scale, adapter: `ad${i}`, weight: 1, orientation: 'transposed' as const, rows, cols });
    const source = {
      kind: 'merge' as const,
      base: ref('w'),
      deltas: [delta(1, 2, 0.5), delta(2, 3, -0.25), delta(3, 1, 2)],
      dora: [{ adapter: 'ad1', magnitude: ref('m1'), featureAxis: 'column' as const }, { adapter: 'ad3', magnitude: ref('m3'), featureAxis: 'column' as const }],
    };
    expect(doraInSequence(source)).toBe(true);
    const result = await mergeOnCpu(source, 'F32', async (r) => new Uint8Array(files[r.file]!.buffer.slice(0)));
    // Independently, in f64 from the factors: ΔWᵢ[i, j] = sᵢ Σ_k Aᵢ[k, i] Bᵢ[j, k] (Conv1D), the norm per column j.
    const dw = (f: { a: Float32Array; b: Float32Array }, rank: number, scale: number) => Float64Array.from({ length: rows * cols }, (_, x) => {
      const [i, j] = [Math.floor(x / cols), x % cols];
      let sum = 0;
      for (let k = 0; k < rank; k++) sum += f.a[k * rows + i]! * f.b[j * rank + k]!;
      return scale * sum;
    });
    const factor = (d: Float64Array, m: Float32Array) => Array.from({ length: cols }, (_, j) => {
      let ss = 0;
      for (let i = 0; i < rows; i++) ss += (one.w[i * cols + j]! + d[i * cols + j]!) ** 2;
      return m[j]! / Math.sqrt(ss);
    });
    const [d1, d2, d3] = [dw(one, 2, 0.5), dw(two, 3, -0.25), dw(three, 1, 2)];
    const [f1, f3] = [factor(d1, m1), factor(d3, m3)];
    const want = Float64Array.from({ length: rows * cols }, (_, x) => {
      const j = x % cols;
      const v1 = f1[j]! * (one.w[x]! + d1[x]!);
      return f3[j]! * (v1 + d2[x]! + d3[x]!);
    });
    const got = new Float32Array(result.bytes.buffer, result.bytes.byteOffset, rows * cols);
    got.forEach((g, x) => expect(Math.abs(g - want[x]!)).toBeLessThanOrEqual(4e-7 * Math.max(1, Math.abs(want[x]!))));
    // Not the one-adapter formula on the summed ΔW.
    const summed = await mergeOnCpu({ ...source, deltas: source.deltas.map((d) => ({ ...d, adapter: 'one' })), dora: [{ ...source.dora[0]!, adapter: 'one' }] }, 'F32', async (r) => new Uint8Array(files[r.file]!.buffer.slice(0)));
    expect([...new Uint32Array(summed.bytes.buffer)]).not.toEqual([...new Uint32Array(result.bytes.buffer)]);
    expect(result.nonFinite).toBe(0);
  });
});
