/**
 * Computing one planned merge on the CPU with the semantics of the kernels' reference
 * (`loraMergeRef`: f64 accumulation over k in ascending order, one rounding to f32, then one rounding
 * to the base dtype), bit for bit: one delta through the merge loop (merge-rows.ts, on WebAssembly
 * SIMD where there is one), several summed per element, W updated in place. The same math the
 * WebGPU kernel is tested against.
 */
import { loraMergeSizes } from '@lorafuse/kernels/internal';
import { doraFactorsRef, doraScaleRef, scaleFeaturesRef } from '@lorafuse/kernels/reference';
import { decodeToF32, encodeFromF32, type FloatCodecDtype } from '../safetensors/dtype.js';
import type { TensorRef } from '../safetensors/tensor-ref.js';
import type { LoraDeltaSpec, TensorSource } from '../plan/types.js';
import { loraMergeColumnFactor, type LoraMergeInPlaceParams } from './merge-rows.js';
import { loraMergeRowsSimd } from './simd/merge-rows.js';

/** Reads a tensor's bytes (by file range). */
export type ReadTensorBytes = (ref: TensorRef) => Promise<Uint8Array>;

/** Merged tensor bytes in the output dtype, and the count of NaN/Inf values produced. */
export interface CpuMergeResult {
  readonly bytes: Uint8Array;
  readonly nonFinite: number;
}

/** One LoRA term of {@link loraMergeTermsRowsInPlace}: the factors of {@link LoraMergeInPlaceParams}. */
export type LoraMergeTerm = Omit<LoraMergeInPlaceParams, 'w' | 'rows' | 'cols'>;

/**
 * `W[row, col] = f32(W[row, col] + Σ_terms scale · Σ_k L[row, k] · R[k, col])` for rows
 * `[rowStart, rowEnd)`, in place: every term's sum in f64 (over k in ascending order, as
 * {@link loraMergeRowsInPlace}), the terms added in f64 in their order, and W rounded once. With one
 * term it is {@link loraMergeRowsInPlace}. Returns the count of NaN/Inf values written.
 */
export function loraMergeTermsRowsInPlace(w: Float32Array, rows: number, cols: number, terms: readonly LoraMergeTerm[], rowStart = 0, rowEnd = rows): number {
  if (terms.length === 1) return loraMergeRowsSimd({ ...terms[0]!, w, rows, cols }, rowStart, rowEnd);
  const params = terms.map((t) => ({ ...t, w, rows, cols }));
  for (const p of params) {
    const sizes = loraMergeSizes(p);
    if (w.length < sizes.w || p.a.length < sizes.a || p.b.length < sizes.b) {
      throw new RangeError(`loraMergeTermsRowsInPlace: need W ${sizes.w}, A ${sizes.a}, B ${sizes.b} values; got ${w.length}, ${p.a.length}, ${p.b.length}.`);
    }
  }
  if (!(rowStart >= 0 && rowEnd <= rows && rowStart <= rowEnd)) throw new RangeError(`loraMergeTermsRowsInPlace: bad row range [${rowStart}, ${rowEnd}) of ${rows}.`);
  if (cols === 0 || rowStart === rowEnd) return 0;
  const columns = params.map(loraMergeColumnFactor);
  // Allocated once, not per row: this runs over every row of the weight.
  const rowFactors = params.map((p) => new Float64Array(p.rank));
  const acc = new Float64Array(cols);
  let nonFinite = 0;
  for (let row = rowStart; row < rowEnd; row++) {
    acc.fill(0);
    for (const [t, p] of params.entries()) {
      const { rank, a, b, scale } = p;
      const r = columns[t]!;
      const l = rowFactors[t]!;
      if (p.orientation === 'linear') for (let k = 0; k < rank; k++) l[k] = b[row * rank + k]!;
      else for (let k = 0; k < rank; k++) l[k] = a[k * rows + row]!;
      for (let col = 0, j = 0; col < cols; col++, j += rank) {
        let sum = 0;
        for (let k = 0; k < rank; k++) sum += r[j + k]! * l[k]!;
        acc[col] = acc[col]! + scale * sum;
      }
    }
    const base = row * cols;
    for (let col = 0; col < cols; col++) {
      const v = Math.fround(w[base + col]! + acc[col]!);
      w[base + col] = v;
      if (v - v !== 0) nonFinite++;
    }
  }
  return nonFinite;
}

/** Counts NaN and ±Inf values. */
export function countNonFinite(values: Float32Array): number {
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v - v !== 0) n++;
  }
  return n;
}

type MergeSource = Extract<TensorSource, { kind: 'merge' }>;

/**
 * Whether a `merge` source's DoRA steps must run adapter by adapter: DoRA with deltas of more than
 * one adapter, where each DoRA step rescales what the adapters before it left. Every executor
 * computes such a source with {@link mergeOnCpu}, so all devices give the same bytes.
 */
export function doraInSequence(source: MergeSource): boolean {
  return (source.dora?.length ?? 0) > 0 && new Set(source.deltas.map((d) => d.adapter)).size > 1;
}

/**
 * Computes `base + Σ scale · delta` for a `merge` source (then its DoRA step, if any), encoded as
 * `outDtype`, on this thread: the deltas summed in f64 and W rounded once to f32
 * ({@link loraMergeTermsRowsInPlace}; with one delta bit-identical to `loraMergeRef`), then
 * `doraScaleRef`; a source whose DoRA runs in sequence ({@link doraInSequence}) is computed adapter
 * by adapter.
 */
export async function mergeOnCpu(source: MergeSource, outDtype: FloatCodecDtype, read: ReadTensorBytes): Promise<CpuMergeResult> {
  if (doraInSequence(source)) return mergeDoraSequence(source, outDtype, read);
  const w = decodeToF32(source.base.dtype as FloatCodecDtype, await read(source.base));
  // With no delta (never planned), nothing is added; count what the base holds.
  const nonFinite = source.deltas.length === 0 ? countNonFinite(w) : await addLoraDeltas(w, source.deltas, read);
  const scaled = await applyDoraStep(source, w, read);
  return { bytes: encodeFromF32(outDtype, w), nonFinite: scaled ?? nonFinite };
}

/** W += Σ scale·delta for `deltas` (all of one W), summed in f64 and rounded once; returns the NaN/Inf count. */
async function addLoraDeltas(w: Float32Array, deltas: readonly LoraDeltaSpec[], read: ReadTensorBytes): Promise<number> {
  const terms: LoraMergeTerm[] = [];
  for (const d of deltas) {
    terms.push({ a: decodeToF32(d.a.dtype as FloatCodecDtype, await read(d.a)), b: decodeToF32(d.b.dtype as FloatCodecDtype, await read(d.b)), rank: d.rank, orientation: d.orientation, scale: d.scale });
  }
  return loraMergeTermsRowsInPlace(w, deltas[0]!.rows, deltas[0]!.cols, terms);
}

/**
 * Several adapters with DoRA among them, as PEFT's model runs them all active: V starts as W; each
 * adapter in turn adds its ΔW (f32, from zero as the kernels' reference sums it), and a DoRA adapter
 * then scales V + ΔW by `m / ‖W + ΔW‖` per output feature, the norm from the base and its own ΔW.
 * One rounding to f32 per step, one to `outDtype` at the end.
 */
async function mergeDoraSequence(source: MergeSource, outDtype: FloatCodecDtype, read: ReadTensorBytes): Promise<CpuMergeResult> {
  const { rows, cols } = source.deltas[0]!;
  const base = decodeToF32(source.base.dtype as FloatCodecDtype, await read(source.base));
  const v = base.slice();
  const adapters = [...new Set(source.deltas.map((d) => d.adapter))];
  for (const adapter of adapters) {
    const delta = new Float32Array(rows * cols);
    await addLoraDeltas(delta, source.deltas.filter((d) => d.adapter === adapter), read);
    const step = source.dora!.find((s) => s.adapter === adapter);
    if (step) {
      for (let i = 0; i < v.length; i++) v[i] = Math.fround(v[i]! + delta[i]!);
      // W + this adapter's ΔW, for its norms, in ΔW's own array (no fourth weight-sized array).
      for (let i = 0; i < delta.length; i++) delta[i] = Math.fround(base[i]! + delta[i]!);
      const magnitude = decodeToF32(step.magnitude.dtype as FloatCodecDtype, await read(step.magnitude));
      const factor = doraFactorsRef({ w: delta, rows, cols, magnitude, featureAxis: step.featureAxis });
      scaleFeaturesRef(v, rows, cols, factor, step.featureAxis);
    } else {
      for (let i = 0; i < v.length; i++) v[i] = Math.fround(v[i]! + delta[i]!);
    }
  }
  return { bytes: encodeFromF32(outDtype, v), nonFinite: countNonFinite(v) };
}

/**
 * The DoRA step of a one-adapter `merge` source, in place on its merged f32 matrix `w` (= W + ΔW):
 * each output feature scaled by `m / ‖W + ΔW‖` with the kernels' reference (`doraScaleRef`). Returns
 * the count of NaN/Inf values after it, or `null` when the source has no DoRA step (`w` untouched).
 * Every executor calls this after its own LoRA merge, so all devices give the same bytes; a source
 * whose DoRA runs in sequence is not for this step ({@link mergeOnCpu} computes it).
 */
export async function applyDoraStep(source: MergeSource, w: Float32Array, read: ReadTensorBytes): Promise<number | null> {
  const step = source.dora?.[0];
  if (!step) return null;
  if (doraInSequence(source)) throw new Error('internal: a DoRA step in sequence reached the one-adapter DoRA step');
  const first = source.deltas[0];
  const [rows, cols] = first ? [first.rows, first.cols] : (source.base.shape as [number, number]);
  const magnitude = decodeToF32(step.magnitude.dtype as FloatCodecDtype, await read(step.magnitude));
  return doraScaleRef({ w, rows, cols, magnitude, featureAxis: step.featureAxis });
}
