/**
 * The order of GPT-2's parameters in `state_dict()`, which is the order transformers' `save_pretrained`
 * splits a checkpoint into shards in: modules in the order their classes create them (GPT2Model:
 * wte, wpe, the blocks h.0…, ln_f; each block: ln_1, attn (c_attn, q_attn, c_proj), ln_2,
 * crossattention, ln_cross_attn, mlp (c_fc, c_proj)), weight before bias, then the heads beside the
 * body. The model's non-persistent buffers (`attn.bias`) are not in it.
 */
import { canonicalName } from './architecture.js';

/** A block's parameters in creation order (names after `transformer.h.N.`). */
const BLOCK_PARAMETERS: readonly string[] = [
  'ln_1', 'attn.c_attn', 'attn.q_attn', 'attn.c_proj', 'ln_2',
  'crossattention.c_attn', 'crossattention.q_attn', 'crossattention.c_proj', 'ln_cross_attn',
  'mlp.c_fc', 'mlp.c_proj',
].flatMap((m) => [`${m}.weight`, `${m}.bias`]);

/**
 * Heads, as created beside `transformer` by GPT2LMHeadModel, GPT2DoubleHeadsModel,
 * GPT2ForSequenceClassification, GPT2ForTokenClassification and GPT2ForQuestionAnswering.
 */
const HEAD_PARAMETERS: readonly string[] = ['lm_head', 'multiple_choice_head.summary', 'score', 'classifier', 'qa_outputs'].flatMap((m) => [`${m}.weight`, `${m}.bias`]);

const BLOCK = /^transformer\.h\.(\d+)\.(.+)$/;

/**
 * Where a tensor (either key layout) stands in the model's `state_dict()`, as a sort key compared
 * element by element; undefined for a name that is no GPT-2 parameter (an old checkpoint's
 * `attn.bias` buffer, an unknown extra).
 */
export function stateDictPosition(name: string): readonly number[] | undefined {
  const c = canonicalName(name);
  if (c === 'transformer.wte.weight') return [0];
  if (c === 'transformer.wpe.weight') return [1];
  const block = BLOCK.exec(c);
  if (block) {
    const at = BLOCK_PARAMETERS.indexOf(block[2]!);
    return at < 0 ? undefined : [2, Number(block[1]), at];
  }
  if (c === 'transformer.ln_f.weight') return [3, 0];
  if (c === 'transformer.ln_f.bias') return [3, 1];
  const head = HEAD_PARAMETERS.indexOf(c);
  return head < 0 ? undefined : [4, head];
}

function comparePositions(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/**
 * `items` in the model's `state_dict()` order; names that are no GPT-2 parameter follow, in their
 * given order (transformers would not save them at all, so no order of its own exists for them).
 */
export function inStateDictOrder<T>(items: readonly T[], nameOf: (item: T) => string): T[] {
  const keyed = items.map((item, i) => ({ item, i, at: stateDictPosition(nameOf(item)) }));
  keyed.sort((x, y) => {
    if (x.at && y.at) return comparePositions(x.at, y.at) || x.i - y.i;
    if (x.at || y.at) return x.at ? -1 : 1;
    return x.i - y.i;
  });
  return keyed.map((k) => k.item);
}

/**
 * What transformers' `num_parameters()` counts for a model loaded from these tensors (the index's
 * `metadata.total_parameters`): the elements of every GPT-2 parameter stored. A tied lm_head is not
 * stored and shares wte's elements, which count once; buffers and extras count nothing.
 */
export function countParameters(tensors: ReadonlyArray<{ readonly name: string; readonly shape: readonly number[] }>): number {
  let n = 0;
  for (const t of tensors) if (stateDictPosition(t.name)) n += t.shape.reduce((a, b) => a * b, 1);
  return n;
}
