/**
 * Planning stage: the output checkpoint's tensors, named in the base's own key layout, with the
 * counts the report gives.
 */
import { BODY_PREFIX, TIED_INPUT_WEIGHT, TIED_OUTPUT_WEIGHT } from '../gpt2/architecture.js';
import type { BaseTensors } from './base-tensors.js';
import type { AddedHead } from './replacements.js';
import { outputTypeOf } from './tensor-source.js';
import type { MergePlan, PlannedTensor, TensorSource, TiePlan } from './types.js';

/** The output's tensors and their counts. */
export interface OutputTensors {
  readonly tensors: readonly PlannedTensor[];
  readonly counts: Omit<MergePlan['summary'], 'loraModules'>;
}

/**
 * Lists every output tensor. Names keep the base's layout, unless a tensor outside the body
 * (lm_head, score) is added to a bare GPT2Model checkpoint: transformers restores the body prefix only
 * when no key has it, so mixed layouts would not load, and every body key then gets the prefix.
 */
export function planOutputTensors(base: BaseTensors, effective: ReadonlyMap<string, TensorSource>, wteSource: TensorSource, newHead: AddedHead | null, tie: TiePlan): OutputTensors {
  const baseIsBare = [...base.byCanonical.values()].every((r) => !r.name.startsWith(BODY_PREFIX));
  const addsOutsideBody = newHead !== null || (tie.state !== 'untouched' && tie.state !== 'base-untied' && !(tie.state === 'decided' && tie.decision === 'keep'));
  const renameBody = baseIsBare && addsOutsideBody;

  const tensors: PlannedTensor[] = [];
  let merged = 0;
  let replaced = 0;
  const count = (s: TensorSource) => {
    if (s.kind === 'merge' || s.kind === 'bias') merged++;
    else if (s.kind === 'replace' || s.kind === 'rows') replaced++;
  };
  for (const [canonical, ref] of base.byCanonical) {
    const name = renameBody ? canonical : ref.name;
    const source = canonical === TIED_INPUT_WEIGHT ? wteSource : effective.get(canonical) ?? { kind: 'copy' as const, from: ref };
    count(source);
    tensors.push({ name, ...outputTypeOf(source), source });
  }
  let added = 0;
  if (newHead) {
    tensors.push({ name: `${newHead.module}.weight`, dtype: newHead.ref.dtype, shape: newHead.ref.shape, source: { kind: 'replace', from: newHead.ref, reason: 'modules_to_save', replaces: null } });
    added++;
  }
  if (tie.state === 'decided' && tie.decision === 'untie' && tie.lmHead) {
    tensors.push({ ...tie.lmHead, name: TIED_OUTPUT_WEIGHT });
    count(tie.lmHead.source);
    added++;
  }
  return { tensors, counts: { merged, replaced, added, copied: tensors.filter((t) => t.source.kind === 'copy').length } };
}
