import { loraMergeSizes, type LoraMergeShape } from './lora-merge.shape.js';

/** Inputs of {@link loraMergeRef}. */
export interface LoraMergeRefParams extends LoraMergeShape {
  /** W, row-major f32 `[rows, cols]`. Not modified. */
  w: ArrayLike<number>;
  /** A, row-major f32 `[rank, in]`. */
  a: ArrayLike<number>;
  /** B, row-major f32 `[out, rank]`. */
  b: ArrayLike<number>;
  /** LoRA scaling s (`lora_alpha / r`, or `/ sqrt(r)` with rsLoRA). */
  scale: number;
}

/**
 * CPU reference of the LoRA merge: returns `W + s · delta` as a new f32 array (row-major
 * `[rows, cols]`), where delta follows `orientation` (see {@link LoraMergeOrientation}). Each output
 * is computed in f64 (products of f32 values are exact in f64; the sum over k accumulates in f64)
 * and rounded to f32 once.
 */
export function loraMergeRef(params: LoraMergeRefParams): Float32Array {
  const { rows, cols, rank, orientation, w, a, b, scale } = params;
  const sizes = loraMergeSizes(params);
  if (w.length < sizes.w || a.length < sizes.a || b.length < sizes.b) {
    throw new RangeError(`loraMergeRef: need W ${sizes.w}, A ${sizes.a}, B ${sizes.b} values; got ${w.length}, ${a.length}, ${b.length}.`);
  }
  const out = new Float32Array(sizes.w);
  for (let row = 0; row < rows; row++) {
    for (let col = 0; col < cols; col++) {
      let sum = 0;
      if (orientation === 'linear') {
        // W[o, i] += s · Σ_k B[o, k] · A[k, i] with o = row, i = col
        for (let k = 0; k < rank; k++) sum += (b[row * rank + k] as number) * (a[k * cols + col] as number);
      } else {
        // W[i, o] += s · Σ_k B[o, k] · A[k, i] with i = row, o = col
        for (let k = 0; k < rank; k++) sum += (b[col * rank + k] as number) * (a[k * rows + row] as number);
      }
      out[row * cols + col] = (w[row * cols + col] as number) + scale * sum;
    }
  }
  return out;
}
