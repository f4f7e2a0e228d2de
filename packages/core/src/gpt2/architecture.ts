/**
 * GPT-2 architecture facts, in one place: module kinds, the weight-layout rule for LoRA deltas, the
 * tied pair, the model class of a config, and the two key layouts (GPT2LMHeadModel's `transformer.`
 * prefix and GPT2Model's bare names).
 */
import type { LoraMergeOrientation } from '@lorafuse/kernels/internal';
import type { DoraFeatureAxis } from '@lorafuse/kernels/reference';

/** How a module stores its weight, which decides how a LoRA delta is laid onto it. */
export type ModuleKind = 'conv1d' | 'linear' | 'embedding' | 'other';

/** Prefix of the transformer body in GPT2LMHeadModel and the other head models (`base_model_prefix`). */
export const BODY_PREFIX = 'transformer.';

/** The tied pair: `lm_head.weight` is `transformer.wte.weight` when `tie_word_embeddings` is true. */
export const TIED_OUTPUT_WEIGHT = 'lm_head.weight';
export const TIED_INPUT_WEIGHT = 'transformer.wte.weight';

/** Head modules that live beside the body, outside `transformer.` (all `nn.Linear`). */
export const HEAD_MODULES: readonly string[] = ['lm_head', 'score', 'classifier', 'qa_outputs', 'multiple_choice_head'];

/**
 * GPT-2's Conv1D modules (weight [in, out], `y = x @ W + b`). `attn.c_proj` is square, so only the
 * name can tell its orientation; shapes never decide it.
 */
const CONV1D_PATTERN = /(?:^|\.)h\.\d+\.(?:attn|crossattention)\.(?:c_attn|c_proj|q_attn)$|(?:^|\.)h\.\d+\.mlp\.(?:c_fc|c_proj)$/;
const EMBEDDING_PATTERN = /(?:^|\.)(?:wte|wpe)$/;

/**
 * Canonical module or tensor name: the GPT2LMHeadModel layout (`transformer.h.0.attn.c_attn`,
 * `lm_head`). Accepts the bare GPT2Model layout (`h.0.attn.c_attn`, `wte.weight`) too.
 */
export function canonicalName(name: string): string {
  if (name.startsWith(BODY_PREFIX)) return name;
  const head = name.split('.', 1)[0] ?? '';
  if (HEAD_MODULES.includes(head)) return name;
  return BODY_PREFIX + name;
}

/** The kind of a GPT-2 module given its path in either layout (`transformer.h.3.mlp.c_fc`, `lm_head`). */
export function moduleKind(modulePath: string): ModuleKind {
  const name = canonicalName(modulePath);
  if (CONV1D_PATTERN.test(name)) return 'conv1d';
  if (EMBEDDING_PATTERN.test(name)) return 'embedding';
  const head = name.split('.', 1)[0] ?? '';
  if (HEAD_MODULES.includes(head) && name.split('.').length <= 2) return 'linear';
  if (/\.multiple_choice_head\.summary$/.test(name)) return 'linear';
  return 'other';
}

/** Names of GPT-2 leaf modules a LoRA can target, for suggestions in errors and findings. */
export const LORA_TARGETABLE_MODULES: readonly string[] = ['c_attn', 'c_proj', 'c_fc', 'lm_head', 'wte'];

/** How a LoRA delta `B·A` is laid onto a stored weight: as is, or transposed (the kernels' own term). */
export type DeltaOrientation = LoraMergeOrientation;

/**
 * The one rule for how a module stores its weight and so how its LoRA delta is laid onto it. With
 * A `[r, in]` and B `[out, r]`: a Linear stores `[out, in]` and gets `B·A`; a Conv1D stores
 * `[in, out]` and gets `(B·A)ᵀ`; an Embedding stores `[num_embeddings, dim]` while PEFT's
 * `lora_embedding_A` is `[r, num_embeddings]`, so it also gets `(B·A)ᵀ`. The module's name decides
 * (GPT-2's `attn.c_proj` is square, so a shape cannot), never the saved `fan_in_fan_out` flag.
 */
export interface WeightLayout {
  readonly kind: Exclude<ModuleKind, 'other'>;
  readonly orientation: DeltaOrientation;
  /** The stored layout, e.g. `[in, out]`. */
  readonly layout: '[out, in]' | '[in, out]' | '[num_embeddings, dim]' | 'as stored';
  /** For reports: `Conv1D [in, out]`. */
  readonly label: string;
  /** Which axis of the stored matrix indexes the output features (DoRA's norm is one per feature). */
  readonly featureAxis: DoraFeatureAxis;
  /** The stored weight's shape for a LoRA with A `[r, inFeatures]` and B `[outFeatures, r]`. */
  weightShape(inFeatures: number, outFeatures: number): [number, number];
}

const LAYOUTS: Record<Exclude<ModuleKind, 'other'>, WeightLayout> = {
  linear: { kind: 'linear', orientation: 'linear', layout: '[out, in]', label: 'Linear [out, in]', featureAxis: 'row', weightShape: (i, o) => [o, i] },
  conv1d: { kind: 'conv1d', orientation: 'transposed', layout: '[in, out]', label: 'Conv1D [in, out]', featureAxis: 'column', weightShape: (i, o) => [i, o] },
  embedding: { kind: 'embedding', orientation: 'transposed', layout: '[num_embeddings, dim]', label: 'Embedding [vocab, dim]', featureAxis: 'column', weightShape: (i, o) => [i, o] },
};

/**
 * A Conv1D weight LoRA-adapted as a parameter (PEFT's `target_parameters` / `ParamWrapper`): PEFT takes
 * in = `shape[1]` and out = `shape[0]` of the parameter as stored, so A is `[r, shape[1]]`, B is
 * `[shape[0], r]`, and `B·A` is added untransposed, whatever the module's own layout.
 */
export const PARAMETER_LAYOUT: WeightLayout = { kind: 'conv1d', orientation: 'linear', layout: 'as stored', label: 'parameter as stored (target_parameters)', featureAxis: 'row', weightShape: (i, o) => [o, i] };

/** The {@link WeightLayout} of a module kind; `other` modules take no LoRA delta in GPT-2. */
export function weightLayoutOf(kind: Exclude<ModuleKind, 'other'>): WeightLayout {
  return LAYOUTS[kind];
}

/** The {@link WeightLayout} of a module given its path, or `undefined` for a module that takes no LoRA delta. */
export function weightLayoutOfModule(modulePath: string): WeightLayout | undefined {
  const kind = moduleKind(modulePath);
  return kind === 'other' ? undefined : LAYOUTS[kind];
}

/** The model class a config describes (`architectures[0]`; GPT2LMHeadModel when absent, as transformers assumes for GPT-2). */
export function architectureOf(config: Record<string, unknown>): string {
  const arch = config['architectures'];
  return Array.isArray(arch) && typeof arch[0] === 'string' ? arch[0] : 'GPT2LMHeadModel';
}
