/**
 * CPU reference of the DoRA scaling step: `W' = (m / ‖V‖) ⊙ V` for `V = W + ΔW` (the LoRA merge's
 * result), one L2 norm per output feature, the norms in f64. The CLI's executors of every device run
 * this after their LoRA merge, so all of them give the same bytes; `WeightKernels.mergeDora` is the
 * GPU kernel (f32 norms, within a few f32 ulps of this) and its twin `applyDoraRef` calls this.
 */

/** Which axis of the row-major `[rows, cols]` matrix indexes the output features. */
export type DoraFeatureAxis =
  /** One feature per row (`nn.Linear`, W `[out, in]`): each row's norm. */
  | 'row'
  /** One feature per column (GPT-2 `Conv1D` `[in, out]`, `nn.Embedding` `[vocab, dim]`): each column's norm. */
  | 'column';

/** Inputs of {@link doraScaleRef}. */
export interface DoraScaleRefParams {
  /** V = W + ΔW, row-major f32 `[rows, cols]`; scaled in place. */
  readonly w: Float32Array;
  readonly rows: number;
  readonly cols: number;
  /** The magnitude vector m: `rows` values for `'row'`, `cols` for `'column'`. */
  readonly magnitude: ArrayLike<number>;
  readonly featureAxis: DoraFeatureAxis;
}

/** Values of the magnitude vector a shape needs. */
export function doraFeatureCount(rows: number, cols: number, featureAxis: DoraFeatureAxis): number {
  return featureAxis === 'row' ? rows : cols;
}

/**
 * The DoRA factors `m[j] / ‖V_j‖₂`, one per output feature j of V: the sum of squares runs in f64 in
 * ascending element order and the factors stay f64. A zero norm gives ±Inf or NaN, as PEFT's
 * division does.
 *
 * @throws RangeError for bad sizes or a magnitude vector of the wrong length.
 */
export function doraFactorsRef(p: DoraScaleRefParams): Float64Array {
  const { w, rows, cols, magnitude, featureAxis } = p;
  if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(cols) || rows < 0 || cols < 0) throw new RangeError(`dora-scale: bad shape [${rows}, ${cols}].`);
  if (w.length < rows * cols) throw new RangeError(`dora-scale: need ${rows * cols} values of W, got ${w.length}.`);
  const features = doraFeatureCount(rows, cols, featureAxis);
  if (magnitude.length !== features) throw new RangeError(`dora-scale: the magnitude vector has ${magnitude.length} values; ${features} output features need as many.`);
  const factor = new Float64Array(features);
  if (featureAxis === 'row') {
    for (let r = 0; r < rows; r++) {
      let sum = 0;
      for (let c = 0, i = r * cols; c < cols; c++, i++) sum += w[i]! * w[i]!;
      factor[r] = (magnitude[r] as number) / Math.sqrt(sum);
    }
  } else {
    // Row by row (contiguous reads); each column still sums its squares in ascending row order.
    const sums = new Float64Array(cols);
    for (let r = 0; r < rows; r++) {
      for (let c = 0, i = r * cols; c < cols; c++, i++) sums[c] = sums[c]! + w[i]! * w[i]!;
    }
    for (let c = 0; c < cols; c++) factor[c] = (magnitude[c] as number) / Math.sqrt(sums[c]!);
  }
  return factor;
}

/**
 * `w[i] = f32(factor[feature of i] · w[i])` in place, one rounding per value; returns the count of
 * NaN/Inf values written.
 */
export function scaleFeaturesRef(w: Float32Array, rows: number, cols: number, factor: Float64Array, featureAxis: DoraFeatureAxis): number {
  let nonFinite = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0, i = r * cols; c < cols; c++, i++) {
      const v = Math.fround(factor[featureAxis === 'row' ? r : c]! * w[i]!);
      w[i] = v;
      if (v - v !== 0) nonFinite++;
    }
  }
  return nonFinite;
}

/**
 * Scales V in place by `m[j] / ‖V_j‖₂` per output feature j ({@link doraFactorsRef}, then
 * {@link scaleFeaturesRef}): each product is rounded to f32 once. Returns the count of NaN/Inf
 * values written.
 *
 * @throws RangeError for bad sizes or a magnitude vector of the wrong length.
 */
export function doraScaleRef(p: DoraScaleRefParams): number {
  return scaleFeaturesRef(p.w, p.rows, p.cols, doraFactorsRef(p), p.featureAxis);
}
