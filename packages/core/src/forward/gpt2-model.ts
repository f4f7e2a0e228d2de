/**
 * A GPT-2 as the forward pass runs it: every module's weight in f32 and the LoRA terms applied on top
 * of it unmerged. Built either from a checkpoint as transformers loads it (no LoRA terms) or from a
 * base plus an adapter (LoRA terms, replaced modules), so the two can be compared.
 */
import type { WeightOrder } from '@lorafuse/kernels/reference';
import type { ForwardConfig } from './forward-config.js';

/** One unmerged LoRA on a module: `y += scale · (x Aᵀ) Bᵀ`, A `[rank, in]`, B `[out, rank]`. */
export interface LoraTerm {
  readonly a: Float32Array;
  readonly b: Float32Array;
  readonly rank: number;
  readonly scale: number;
  /** The adapter key the term came from, for reports. */
  readonly module: string;
  /**
   * DoRA's magnitude vector (one value per output feature): the module's output, its base part
   * included, is then scaled by `m / ‖W + s·B·A‖` (see dora.ts).
   */
  readonly magnitude?: Float32Array;
}

/** A Conv1D (`W [in, out]`) or Linear (`W [out, in]`) module. */
export interface LinearUnit {
  readonly weight: Float32Array;
  readonly bias: Float32Array | null;
  readonly order: WeightOrder;
  readonly inDim: number;
  readonly outDim: number;
  readonly lora: readonly LoraTerm[];
}

/** The token embedding; its LoRA is `wte[ids] + scale · (A[:, ids])ᵀ Bᵀ`, A `[rank, rows]`, B `[dim, rank]`. */
export interface EmbeddingUnit {
  readonly table: Float32Array;
  readonly rows: number;
  readonly dim: number;
  readonly lora: readonly LoraTerm[];
}

/** A layer norm's scale and shift. */
export interface NormUnit {
  readonly weight: Float32Array;
  readonly bias: Float32Array;
}

/** One transformer block. */
export interface Gpt2Block {
  readonly ln1: NormUnit;
  readonly attn: LinearUnit;
  readonly attnProj: LinearUnit;
  readonly ln2: NormUnit;
  readonly fc: LinearUnit;
  readonly proj: LinearUnit;
}

/** The whole model. */
export interface Gpt2Model {
  readonly config: ForwardConfig;
  readonly wte: EmbeddingUnit;
  /** `[n_positions, n_embd]`. */
  readonly wpe: Float32Array;
  readonly blocks: readonly Gpt2Block[];
  readonly lnF: NormUnit;
  /** lm_head / score / classifier: Linear `[out, n_embd]`. */
  readonly head: LinearUnit;
  /** Where the model came from, in words (for reports). */
  readonly description: string;
}
