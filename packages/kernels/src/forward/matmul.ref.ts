/**
 * CPU reference of the two weight layouts a GPT-2 applies to activations: Conv1D and embedding
 * tables store `W` as `[in, out]` (`y = x W + b`); nn.Linear stores `[out, in]` (`y = x Wᵀ + b`).
 */

/** How a weight matrix is stored. */
export type WeightOrder = 'in-out' | 'out-in';

/** The shape of one `x → y` product. */
export interface MatmulShape {
  readonly rows: number;
  readonly inDim: number;
  readonly outDim: number;
  readonly order: WeightOrder;
}

/**
 * `y = x · W (+ bias)` for `rows` rows of `x [rows, inDim]`; `accumulate` adds into it instead of
 * starting from zero. Sums run in double precision, rounded once per output.
 */
export function matmulRef(x: Float32Array, w: Float32Array, shape: MatmulShape, bias: Float32Array | null = null, accumulate: Float32Array | null = null): Float32Array {
  const { rows, inDim, outDim, order } = shape;
  const out = accumulate ?? new Float32Array(rows * outDim);
  const acc = new Float64Array(outDim);
  for (let r = 0; r < rows; r++) {
    const xo = r * inDim;
    if (order === 'in-out') {
      acc.fill(0);
      for (let k = 0; k < inDim; k++) {
        const xv = x[xo + k]!;
        if (xv === 0) continue;
        const wo = k * outDim;
        for (let j = 0; j < outDim; j++) acc[j]! += xv * w[wo + j]!;
      }
    } else {
      for (let j = 0; j < outDim; j++) {
        const wo = j * inDim;
        let s = 0;
        for (let k = 0; k < inDim; k++) s += x[xo + k]! * w[wo + k]!;
        acc[j] = s;
      }
    }
    const oo = r * outDim;
    for (let j = 0; j < outDim; j++) out[oo + j] = out[oo + j]! + acc[j]! + (bias ? bias[j]! : 0);
  }
  return out;
}
