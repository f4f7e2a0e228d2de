/** CPU reference of layer normalisation over the last dimension (biased variance, eps inside the root). */

/** `rows` rows of `dim` values each, normalised, scaled by `weight` and shifted by `bias`. */
export function layerNormRef(x: Float32Array, rows: number, dim: number, weight: Float32Array, bias: Float32Array, eps: number): Float32Array {
  const out = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let mean = 0;
    for (let i = 0; i < dim; i++) mean += x[o + i]!;
    mean /= dim;
    let variance = 0;
    for (let i = 0; i < dim; i++) {
      const d = x[o + i]! - mean;
      variance += d * d;
    }
    variance /= dim;
    const inv = 1 / Math.sqrt(variance + eps);
    for (let i = 0; i < dim; i++) out[o + i] = (x[o + i]! - mean) * inv * weight[i]! + bias[i]!;
  }
  return out;
}
