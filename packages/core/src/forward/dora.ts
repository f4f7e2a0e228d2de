/**
 * DoRA in the unmerged forward pass, as PEFT's `DoraLinearLayer`/`DoraEmbeddingLayer` compute it at
 * run time: the weight norm of the base weight plus the module's own LoRA product, one per output
 * feature, detached, and the magnitude divided by it. Computed from the base weight and the factors
 * here, never from a merged matrix, so a merge bug cannot hide in it.
 */
import type { WeightOrder } from '@lorafuse/kernels/reference';
import type { EmbeddingUnit, Gpt2Model, LinearUnit, LoraTerm } from './gpt2-model.js';

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

/** The per-feature multipliers of a module's parts once its DoRA terms are folded in (see {@link foldDora}). */
function foldedScales(unit: DoraWeight, lora: readonly LoraTerm[]): { base: Float32Array; terms: Float32Array[] } {
  // A DoRA term scales everything the module computed before it, its own product included: walking
  // back from the last term, each part's multiplier is the product of the DoRA factors at or after it.
  const g = new Float32Array(unit.outDim).fill(1);
  const terms: Float32Array[] = new Array<Float32Array>(lora.length);
  for (let j = lora.length - 1; j >= 0; j--) {
    const t = lora[j]!;
    if (t.magnitude) {
      const f = doraMagnitudeScale(unit, t, t.magnitude);
      for (let o = 0; o < g.length; o++) g[o] = g[o]! * f[o]!;
    }
    terms[j] = g.slice();
  }
  return { base: g, terms };
}

/** `weight` with output feature o scaled by `g[o]` (a column of an in-out matrix, a row of an out-in one). */
function scaleFeatures(weight: Float32Array, order: WeightOrder, inDim: number, outDim: number, g: Float32Array): Float32Array {
  const out = new Float32Array(weight.length);
  for (let i = 0; i < inDim; i++) {
    for (let o = 0; o < outDim; o++) {
      const at = order === 'in-out' ? i * outDim + o : o * inDim + i;
      out[at] = weight[at]! * g[o]!;
    }
  }
  return out;
}

/** A term's B `[out, rank]` with row o scaled by `g[o]`, and no magnitude vector left. */
function foldTerm(t: LoraTerm, outDim: number, g: Float32Array): LoraTerm {
  const { magnitude: _dropped, ...rest } = t;
  return { ...rest, b: scaleFeatures(t.b, 'out-in', t.rank, outDim, g) };
}

/**
 * The same function with DoRA's scaling folded into the weights, for a forward pass that has only
 * matrix products (the WGSL one). PEFT computes, per DoRA term, `y ← f ⊙ y_so_far + f ⊙ s·(x Aᵀ) Bᵀ`
 * with the bias kept out of the scaling and `f = m / ‖W + s·B·A‖` fixed (detached); since f is
 * fixed, `f ⊙ (x W)` is `x (W·diag f)` and `f ⊙ (z Bᵀ)` is `z (diag f · B)ᵀ`. Each module then
 * holds W scaled by the product of its DoRA factors, each B by those at or after its term, the
 * LoRA products still applied unmerged, and no magnitude vectors. The factors come from the base
 * weight and the module's own factors (dora.ts), not from any merged matrix. A model without DoRA
 * is returned as it is.
 */
export function foldDora(model: Gpt2Model): Gpt2Model {
  const hasDora = (lora: readonly LoraTerm[]) => lora.some((t) => t.magnitude !== undefined);
  const linear = (u: LinearUnit): LinearUnit => {
    if (!hasDora(u.lora)) return u;
    const g = foldedScales(u, u.lora);
    return { ...u, weight: scaleFeatures(u.weight, u.order, u.inDim, u.outDim, g.base), lora: u.lora.map((t, j) => foldTerm(t, u.outDim, g.terms[j]!)) };
  };
  const embedding = (u: EmbeddingUnit): EmbeddingUnit => {
    if (!hasDora(u.lora)) return u;
    const g = foldedScales({ weight: u.table, order: 'in-out', inDim: u.rows, outDim: u.dim }, u.lora);
    return { ...u, table: scaleFeatures(u.table, 'in-out', u.rows, u.dim, g.base), lora: u.lora.map((t, j) => foldTerm(t, u.dim, g.terms[j]!)) };
  };
  const units = [...model.blocks.flatMap((b) => [b.attn, b.attnProj, b.fc, b.proj]), model.head];
  if (!units.some((u) => hasDora(u.lora)) && !hasDora(model.wte.lora)) return model;
  return {
    ...model,
    wte: embedding(model.wte),
    blocks: model.blocks.map((b) => ({ ...b, attn: linear(b.attn), attnProj: linear(b.attnProj), fc: linear(b.fc), proj: linear(b.proj) })),
    head: linear(model.head),
  };
}
