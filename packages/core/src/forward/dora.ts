/**
 * DoRA in the unmerged forward pass, as PEFT's `DoraLinearLayer`/`DoraEmbeddingLayer` compute it at
 * run time: the weight norm of the base weight plus the module's own LoRA product, one per output
 * feature, detached, and the magnitude divided by it. Computed from the base weight and the factors
 * here, never from a merged matrix, so a merge bug cannot hide in it.
 */
import type { WeightOrder } from '@lorafuse/kernels/reference';
import type { LoraTerm } from './gpt2-model.js';

/** A module's base weight as the forward pass holds it. */
export interface DoraWeight {
  readonly weight: Float32Array;
  /** `in-out`: Conv1D `[in, out]` and the Embedding `[vocab, dim]`; `out-in`: Linear `[out, in]`. */
  readonly order: WeightOrder;
  readonly inDim: number;
  readonly outDim: number;
}

const cache = new WeakMap<LoraTerm, Float32Array>();

/**
 * `m / ‖W + s·B·A‖` per output feature o (the norm over the module's inputs), for a term with a
 * magnitude vector (`t.magnitude`, passed narrowed). The sum of squares runs in f64; the result is
 * cached per term, since decoding runs the module once per token.
 */
export function doraMagnitudeScale(unit: DoraWeight, t: LoraTerm, magnitude: Float32Array): Float32Array {
  const hit = cache.get(t);
  if (hit) return hit;
  const { weight, order, inDim, outDim } = unit;
  const { a, b, rank, scale } = t;
  const out = new Float32Array(outDim);
  for (let o = 0; o < outDim; o++) {
    let squares = 0;
    for (let i = 0; i < inDim; i++) {
      let lora = 0;
      for (let k = 0; k < rank; k++) lora += b[o * rank + k]! * a[k * inDim + i]!;
      const v = (order === 'in-out' ? weight[i * outDim + o]! : weight[o * inDim + i]!) + scale * lora;
      squares += v * v;
    }
    out[o] = magnitude[o]! / Math.sqrt(squares);
  }
  cache.set(t, out);
  return out;
}
