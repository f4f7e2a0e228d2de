/**
 * Which stored tensors are parameters of a GPT-2 model (what transformers' `num_parameters()`
 * counts), as opposed to buffers such as an old checkpoint's `attn.bias` / `attn.masked_bias` or
 * extras transformers ignores.
 */
import { canonicalName } from './architecture.js';

/** A block's parameter-holding modules (names after `transformer.h.N.`). */
const BLOCK_MODULES = 'ln_1|attn\\.(?:c_attn|q_attn|c_proj)|ln_2|crossattention\\.(?:c_attn|q_attn|c_proj)|ln_cross_attn|mlp\\.(?:c_fc|c_proj)';
/** Heads beside `transformer`: GPT2LMHeadModel, GPT2DoubleHeadsModel, the classification and QA models. */
const HEAD_MODULES = 'lm_head|multiple_choice_head\\.summary|score|classifier|qa_outputs';
const PARAMETER = new RegExp(`^(?:transformer\\.(?:wte|wpe)\\.weight|transformer\\.h\\.\\d+\\.(?:${BLOCK_MODULES})\\.(?:weight|bias)|transformer\\.ln_f\\.(?:weight|bias)|(?:${HEAD_MODULES})\\.(?:weight|bias))$`);

/** Whether a tensor (either key layout) is a parameter of a GPT-2 model class. */
export function isGpt2Parameter(name: string): boolean {
  // The heads keep their own names in both layouts; canonicalName knows only some of them.
  return PARAMETER.test(name) || PARAMETER.test(canonicalName(name));
}

/**
 * What transformers' `num_parameters()` counts for a model loaded from these tensors (the shard
 * index's `metadata.total_parameters`): the elements of every GPT-2 parameter stored. A tied lm_head
 * is not stored and shares wte's elements, which count once; buffers and extras count nothing.
 */
export function countParameters(tensors: ReadonlyArray<{ readonly name: string; readonly shape: readonly number[] }>): number {
  let n = 0;
  for (const t of tensors) if (isGpt2Parameter(t.name)) n += t.shape.reduce((a, b) => a * b, 1);
  return n;
}
