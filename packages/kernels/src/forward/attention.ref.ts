/**
 * CPU reference of causal multi-head self-attention over a key/value cache: the queries are the last
 * `queries` positions of `keys`/`values`, each attending to itself and every earlier position.
 */

/** Inputs of {@link causalAttentionRef}. */
export interface CausalAttentionParams {
  /** `[queries, heads·headDim]`, heads side by side. */
  readonly q: Float32Array;
  /** `[positions, heads·headDim]`: the cache, the queries' own positions last. */
  readonly k: Float32Array;
  readonly v: Float32Array;
  readonly queries: number;
  readonly positions: number;
  readonly heads: number;
  readonly headDim: number;
  /** Multiplies q·k before the softmax. */
  readonly scale: number;
}

/** `[queries, heads·headDim]`: softmax(q·kᵀ·scale, masked causally)·v, heads concatenated in order. */
export function causalAttentionRef(p: CausalAttentionParams): Float32Array {
  const { q, k, v, queries, positions, heads, headDim, scale } = p;
  const width = heads * headDim;
  const out = new Float32Array(queries * width);
  const scores = new Float64Array(positions);
  const past = positions - queries;
  for (let h = 0; h < heads; h++) {
    const ho = h * headDim;
    for (let i = 0; i < queries; i++) {
      const visible = past + i + 1;
      const qo = i * width + ho;
      // Scores are rounded to f32 as torch holds them, then the softmax subtracts the max (safe for any range).
      let max = -Infinity;
      for (let j = 0; j < visible; j++) {
        const ko = j * width + ho;
        let s = 0;
        for (let d = 0; d < headDim; d++) s += q[qo + d]! * k[ko + d]!;
        const sc = Math.fround(Math.fround(s) * scale);
        scores[j] = sc;
        if (sc > max) max = sc;
      }
      let sum = 0;
      for (let j = 0; j < visible; j++) {
        const e = Math.exp(scores[j]! - max);
        scores[j] = e;
        sum += e;
      }
      const oo = i * width + ho;
      for (let d = 0; d < headDim; d++) {
        let s = 0;
        for (let j = 0; j < visible; j++) s += scores[j]! * v[j * width + ho + d]!;
        out[oo + d] = s / sum;
      }
    }
  }
  return out;
}
