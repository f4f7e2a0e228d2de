/**
 * Planning stage: the adapter's full tensors (modules_to_save, saved embeddings, trained biases)
 * replace the base's, and a classification head the base lacks (`score`, `classifier`) is added.
 */
import { InputError } from '../errors.js';
import { TIED_INPUT_WEIGHT, TIED_OUTPUT_WEIGHT } from '../gpt2/architecture.js';
import { shapeText } from '../shape.js';
import { tensorRefOf, type TensorRef } from '../safetensors/tensor-ref.js';
import type { AdapterTensors } from './adapter-tensors.js';
import type { BaseTensors } from './base-tensors.js';
import type { SingleAdapterInput, TensorSource } from './types.js';

/** A head added to a base that has none (its number of labels is the weight's row count). */
export interface AddedHead {
  readonly module: 'score' | 'classifier';
  readonly labels: number;
  readonly ref: TensorRef;
}

/** What the full tensors do. */
export interface PlannedReplacements {
  /** `replace` sources by the canonical name of the tensor they replace. */
  readonly sources: ReadonlyMap<string, Extract<TensorSource, { kind: 'replace' }>>;
  readonly newHead: AddedHead | null;
}

/**
 * Plans each full tensor; `loraTargets` are weights a LoRA merge already starts from (a saved
 * `base_layer`), which are not replacements. Only wte and lm_head may change shape, and only in their
 * row count (a resized vocabulary).
 */
export function planReplacements(input: SingleAdapterInput, base: BaseTensors, tensors: AdapterTensors, loraTargets: ReadonlySet<string>): PlannedReplacements {
  const { adapter } = input;
  const sources = new Map<string, Extract<TensorSource, { kind: 'replace' }>>();
  let newHead: AddedHead | null = null;
  for (const [canonical, r] of tensors.replacements) {
    if (r.fromBaseLayer && loraTargets.has(canonical)) continue;
    const from = tensorRefOf(adapter.file, r.info);
    const isEmbeddingPair = canonical === TIED_INPUT_WEIGHT || canonical === TIED_OUTPUT_WEIGHT;
    const existing = canonical === TIED_OUTPUT_WEIGHT && base.tied ? base.wte : base.byCanonical.get(canonical);
    if (existing) {
      const sameShape = existing.shape.length === from.shape.length && existing.shape.every((d, i) => d === from.shape[i]);
      const resized = isEmbeddingPair && from.shape.length === 2 && existing.shape.length === 2 && from.shape[1] === existing.shape[1];
      if (!sameShape && !resized) {
        throw new InputError('ADAPTER_BASE_SHAPE_MISMATCH', `${adapter.label}: tensor "${r.key}" is ${shapeText(from.shape)} but "${existing.name}" in ${existing.file} is ${shapeText(existing.shape)}`, {
          subject: r.key,
          hint: 'The adapter was trained on a different model size; use the base it was trained on.',
        });
      }
      sources.set(canonical, { kind: 'replace', from, reason: isEmbeddingPair ? 'modules_to_save' : canonical.endsWith('.bias') ? 'trained_bias' : 'modules_to_save', replaces: existing });
      continue;
    }
    const headMatch = canonical.match(/^(score|classifier)\.weight$/);
    if (headMatch && from.shape.length === 2) {
      const hidden = base.wte.shape[1];
      if (from.shape[1] !== hidden) {
        throw new InputError('ADAPTER_BASE_SHAPE_MISMATCH', `${adapter.label}: head "${r.key}" is ${shapeText(from.shape)} but the base's hidden size is ${hidden}`, { subject: r.key });
      }
      newHead = { module: headMatch[1] as AddedHead['module'], labels: from.shape[0]!, ref: from };
      continue;
    }
    throw new InputError('ADAPTER_TARGET_MISSING', `${adapter.label}: tensor "${r.key}" replaces "${canonical}", which ${input.base.label} does not have`, {
      subject: r.key,
      hint: 'Check that the adapter was trained on this base model.',
    });
  }
  return { sources, newHead };
}
