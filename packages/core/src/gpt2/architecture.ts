/**
 * GPT-2 architecture facts, in one place: module kinds, Conv1D orientation, the tied pair, and the
 * two key layouts (GPT2LMHeadModel's `transformer.` prefix and GPT2Model's bare names).
 */

/** How a module stores its weight, which decides how a LoRA delta is laid onto it. */
export type ModuleKind = 'conv1d' | 'linear' | 'embedding' | 'other';

/** Prefix of the transformer body in GPT2LMHeadModel and the other head models (`base_model_prefix`). */
export const BODY_PREFIX = 'transformer.';

/** The tied pair: `lm_head.weight` is `transformer.wte.weight` when `tie_word_embeddings` is true. */
export const TIED_OUTPUT_WEIGHT = 'lm_head.weight';
export const TIED_INPUT_WEIGHT = 'transformer.wte.weight';

/** Head modules that live beside the body, outside `transformer.` (all `nn.Linear`). */
export const HEAD_MODULES: readonly string[] = ['lm_head', 'score', 'classifier', 'qa_outputs'];

/**
 * GPT-2's Conv1D modules (weight [in, out], `y = x @ W + b`). `attn.c_proj` is square, so only the
 * name can tell its orientation; shapes never decide it (SPEC §3.1).
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

/** Weight shape a module of this kind has for a LoRA with A [r, inFeatures] and B [outFeatures, r]. */
export function expectedWeightShape(kind: ModuleKind, inFeatures: number, outFeatures: number): [number, number] {
  // Conv1D stores [in, out]; an Embedding stores [num_embeddings, dim] where A is [r, num_embeddings].
  return kind === 'linear' ? [outFeatures, inFeatures] : [inFeatures, outFeatures];
}
