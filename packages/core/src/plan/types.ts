/**
 * The vocabulary of a merge plan: pure data saying, for every output tensor, where its bytes come
 * from. Every planning stage, the tie step, the executors and verification speak it; it imports
 * nothing of them, so none of them depends on another through it.
 *
 * The rule a plan encodes: the output, loaded by transformers, computes what the *unmerged* PEFT model
 * computes. Each module's effective weight is its base weight plus its LoRA delta, or the adapter's
 * full tensor. With several adapters active together, the deltas of all of them add up (each times
 * its weight) and a full tensor may come from only one of them (or from several, byte-identical). In a tied base the input embedding and the output head are two uses of one matrix, so
 * each gets its own effective weight, and the tie survives only if they stay bitwise equal.
 */
import type { DoraFeatureAxis } from '@lorafuse/kernels/reference';
import type { DeltaOrientation } from '../gpt2/architecture.js';
import type { LoraAdapterConfig } from '../peft/adapter-config.js';
import type { Dtype } from '../safetensors/dtype.js';
import type { SafetensorsHeader } from '../safetensors/header.js';
import type { TensorRef } from '../safetensors/tensor-ref.js';

/**
 * One LoRA delta laid onto a 2-D weight W (row-major, `rows` x `cols`): W += scale · delta, where
 * `linear`: W is [out, in] and delta = B·A; `transposed`: W is [in, out] (Conv1D) or
 * [num_embeddings, dim] (Embedding, A = lora_embedding_A, B = lora_embedding_B) and delta = (B·A)ᵀ.
 */
export interface LoraDeltaSpec {
  readonly modulePath: string;
  readonly a: TensorRef;
  readonly b: TensorRef;
  readonly rank: number;
  readonly alpha: number;
  /** The factor applied to B·A: the adapter's LoRA scaling times its weight in the merge. */
  readonly scale: number;
  /** The adapter this delta comes from (its label), and the user's weight for it (1 unless given). */
  readonly adapter: string;
  readonly weight: number;
  readonly orientation: DeltaOrientation;
  readonly rows: number;
  readonly cols: number;
}

/**
 * One adapter's DoRA step in a merge: `V' = (m / ‖W + ΔW‖) ⊙ (V + ΔW)`, where W is the unmerged
 * base, ΔW this adapter's deltas and V what the adapters before it left (W itself for the first or
 * only one); one L2 norm per output feature. This is PEFT's run-time DoRA: the norm comes from the
 * base and the adapter's own product, and the scaling applies to everything the module computed so
 * far (its earlier adapters' outputs included).
 */
export interface DoraSpec {
  /** The adapter (its label) the step belongs to. */
  readonly adapter: string;
  /** The magnitude vector m, one value per output feature. */
  readonly magnitude: TensorRef;
  /**
   * Which axis of the row-major matrix indexes the output features: `row` for Linear `[out, in]`
   * (each row's norm), `column` for Conv1D `[in, out]` and Embedding `[vocab, dim]` (each column's).
   */
  readonly featureAxis: DoraFeatureAxis;
}

/** Why an adapter tensor replaces a base tensor. */
export type ReplaceReason = 'modules_to_save' | 'trained_bias' | 'tied_weight';

/** Where an output tensor's bytes come from. */
export type TensorSource =
  /** Unchanged bytes of an input tensor. */
  | { readonly kind: 'copy'; readonly from: TensorRef }
  /** The adapter's full tensor replaces the base's (modules_to_save, saved embeddings, trained bias). */
  | { readonly kind: 'replace'; readonly from: TensorRef; readonly reason: ReplaceReason; readonly replaces: TensorRef | null }
  /**
   * A weight plus LoRA deltas, computed in f32 and rounded once to the output dtype. The deltas are
   * the contributions of every adapter to this weight, in adapter order. Without `dora` they add up;
   * with it, the adapters apply in order, each LoRA one adding its deltas and each DoRA one taking its
   * {@link DoraSpec} step (for one adapter: `(m / ‖W + ΔW‖) ⊙ (W + ΔW)`).
   */
  | { readonly kind: 'merge'; readonly base: TensorRef; readonly deltas: readonly LoraDeltaSpec[]; readonly dora?: readonly DoraSpec[] }
  /**
   * Trainable tokens: the adapter's rows replace rows of the base, row k at `indices[k]` (PEFT's
   * `index_copy`); the rows are full values, not deltas.
   */
  | { readonly kind: 'rows'; readonly base: TensorRef; readonly rows: TensorRef; readonly indices: readonly number[] }
  /**
   * A module's bias plus its trained `lora_B` biases (PEFT's `lora_bias`): `b + Σ scale·lora_B.bias`,
   * computed in f32 and rounded once to the output dtype. `base` is the base's bias, or the trained
   * value the adapter saved for it (`bias: "all" | "lora_only"`).
   */
  | { readonly kind: 'bias'; readonly base: TensorRef; readonly terms: readonly LoraBiasTerm[] };

/** One trained `lora_B.bias` (`[out]`) added to its module's bias at the module's LoRA scale. */
export interface LoraBiasTerm {
  readonly modulePath: string;
  readonly bias: TensorRef;
  readonly scale: number;
}

/** One tensor of the output checkpoint. */
export interface PlannedTensor {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly source: TensorSource;
}

/** A planned tensor whose bytes are computed (base + LoRA deltas). */
export type MergeTensor = PlannedTensor & { readonly source: Extract<TensorSource, { kind: 'merge' }> };

/** Something the user should know, with a fix where there is one. */
export interface Finding {
  readonly severity: 'error' | 'warning' | 'info';
  readonly code: string;
  readonly message: string;
  readonly fix?: string;
  readonly subject?: string;
}

/** `auto`: decide from the effective weights; `keep`: keep the tie (refused if it loses weights, unless forced); `untie`: always store both. */
export type TieMode = 'auto' | 'keep' | 'untie';

/** The state of the tie decision in a plan. */
export type TiePlan =
  /** The base stores its own lm_head (untied): each side is merged on its own. */
  | { readonly state: 'base-untied'; readonly findings: readonly Finding[] }
  /** Tied base, and the adapter leaves both uses alone (or the model has no lm_head): tie kept. */
  | { readonly state: 'untouched'; readonly findings: readonly Finding[] }
  /** Both effective matrices must be computed and compared before the output layout is known. */
  | {
      readonly state: 'pending';
      readonly wte: { readonly name: string; readonly source: TensorSource };
      readonly lmHead: PlannedTensor;
      readonly mode: TieMode;
      readonly force: boolean;
      /** What the adapter changed, in words. */
      readonly touched: string;
      readonly findings: readonly Finding[];
    }
  | {
      readonly state: 'decided';
      readonly decision: 'keep' | 'untie';
      readonly reason: string;
      /** The head written separately when untied. */
      readonly lmHead: PlannedTensor | null;
      readonly findings: readonly Finding[];
    };

/** How the effective wte and lm_head compare, computed on their bytes. */
export interface TieComparison {
  readonly equal: boolean;
  /** Rows of lm_head that differ from wte. */
  readonly differingRows: number;
  readonly maxAbsDiff: number;
}

/** The whole plan. */
export interface MergePlan {
  /** Output tensors. While `tie.state` is `pending`, the head candidate is not among them yet. */
  readonly tensors: readonly PlannedTensor[];
  readonly tie: TiePlan;
  /** The config to write, or `null` to copy config.json unchanged. */
  readonly outputConfig: Record<string, unknown> | null;
  /** Human-readable list of config changes. */
  readonly configChanges: readonly string[];
  readonly findings: readonly Finding[];
  /** The base config (for resolving the tie later). */
  readonly baseConfig: Record<string, unknown>;
  /** The adapters merged, in order, with their weights. */
  readonly adapters: readonly MergedAdapter[];
  /**
   * Tensors given twice — by one adapter under two names, or by two adapters for the same base
   * tensor; the executor must find them byte-identical before anything is written.
   */
  readonly duplicateCopies: readonly DuplicateCopy[];
  readonly summary: {
    readonly merged: number;
    readonly replaced: number;
    readonly added: number;
    readonly copied: number;
    readonly loraModules: readonly string[];
  };
}

/** One adapter of a merge and its weight. */
export interface MergedAdapter {
  readonly label: string;
  readonly weight: number;
}

/** A tensor the plan takes from `kept`, which `duplicate` gives too; both must hold the same bytes. */
export interface DuplicateCopy {
  /** The canonical name of the tensor both give. */
  readonly tensor: string;
  readonly kept: TensorRef;
  readonly duplicate: TensorRef;
  /** The labels of the adapters that give each (the same adapter for a copy PEFT saved twice). */
  readonly keptBy: string;
  readonly duplicateBy: string;
}

/**
 * Which side wins when adapter_config.json and the adapter's tensors disagree: `config` merges what
 * PEFT's unmerged model computes (tensors it ignores are left out), `tensors` merges every saved tensor.
 */
export type FollowRule = 'config' | 'tensors';

/** Options of `planMerge`. */
export interface PlanMergeOptions {
  /** Unset: a disagreement between config and tensors is an error. */
  readonly follow?: FollowRule;
  /** `auto` (default): untie exactly when the effective wte and lm_head differ. */
  readonly tie?: TieMode;
  /** With `tie: 'keep'`: keep the tie even when that discards trained lm_head values. */
  readonly force?: boolean;
  /** `pad_token_id` for the output config (`--pad-token-id`); a sequence classifier without one gets eos_token_id. */
  readonly padTokenId?: number;
}

/** Inputs to `planMerge`: headers and configs, no tensor bytes. */
export interface PlanMergeInput {
  readonly base: {
    /** The base directory, for messages. */
    readonly label: string;
    readonly config: Record<string, unknown>;
    /** Headers of every weight file of the base (one, or several shards). */
    readonly files: readonly SafetensorsHeader[];
  };
  /** The adapters, in the order their tensors are resolved (at least one). */
  readonly adapters: readonly AdapterInput[];
  readonly options?: PlanMergeOptions;
}

/** One adapter as the planner sees it. */
export interface AdapterInput {
  readonly label: string;
  readonly config: LoraAdapterConfig;
  readonly file: SafetensorsHeader;
  /** The factor its LoRA deltas are multiplied by (default 1; may be zero or negative). */
  readonly weight?: number;
}

/** What a planning stage sees of one adapter of the merge: the base, and that adapter. */
export interface SingleAdapterInput {
  readonly base: PlanMergeInput['base'];
  readonly adapter: AdapterInput;
}
