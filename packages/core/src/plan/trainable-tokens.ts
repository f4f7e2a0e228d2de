/**
 * Planning stage: trainable-token rows replace rows of an embedding, at the indices that only
 * adapter_config.json records (the file holds just the rows), starting from the embedding the adapter
 * saved as the wrapper's base layer when the vocabulary was resized for new tokens. In a tied model
 * PEFT ties the output head's token adapter to the input embedding's, so lm_head gets the same rows.
 */
import { InputError } from '../errors.js';
import { canonicalName, TIED_INPUT_WEIGHT, TIED_OUTPUT_WEIGHT } from '../gpt2/architecture.js';
import { trainableTokenIndicesFor } from '../peft/token-indices.js';
import { shapeText } from '../shape.js';
import type { TensorInfo } from '../safetensors/header.js';
import { tensorRefOf } from '../safetensors/tensor-ref.js';
import type { AdapterTensors } from './adapter-tensors.js';
import type { BaseTensors } from './base-tensors.js';
import type { StartingWeight } from './starting-weight.js';
import type { DuplicateCopy, SingleAdapterInput, TensorSource } from './types.js';

/**
 * Adds a `rows` source to `effective` for every trainable-token tensor. `effective` holds the sources
 * planned so far; a module changed two ways is refused.
 */
export function planTrainableTokens(input: SingleAdapterInput, base: BaseTensors, tensors: AdapterTensors, startOf: StartingWeight, effective: Map<string, TensorSource>): TrainableTokenPlan {
  const { adapter } = input;
  const duplicateCopies: DuplicateCopy[] = [];
  const copy = (kept: TensorInfo, duplicate: TensorInfo): DuplicateCopy => ({ tensor: TIED_OUTPUT_WEIGHT, kept: tensorRefOf(adapter.file, kept), duplicate: tensorRefOf(adapter.file, duplicate), keptBy: adapter.label, duplicateBy: adapter.label });
  const inputRows = tensors.tokenRows.find((t) => `${canonicalName(t.modulePath)}.weight` === TIED_INPUT_WEIGHT);
  for (const { modulePath, info } of tensors.tokenRows) {
    const canonical = `${canonicalName(modulePath)}.weight`;
    const indices = trainableTokenIndicesFor(adapter.config, modulePath, canonical === TIED_INPUT_WEIGHT);
    // With a resized vocabulary PEFT saves every tensor under the output embedding too, the tied
    // lm_head token adapter's rows and base layer included: copies of wte's, which must be identical.
    if (!indices && canonical === TIED_OUTPUT_WEIGHT && base.tied && Array.isArray(adapter.config.trainableTokenIndices) && inputRows && sameLayout(inputRows.info, info)) {
      duplicateCopies.push(copy(inputRows.info, info));
      const [headBase, inputBase] = [tensors.replacements.get(TIED_OUTPUT_WEIGHT), tensors.replacements.get(TIED_INPUT_WEIGHT)];
      if (headBase?.fromBaseLayer && inputBase?.fromBaseLayer && sameLayout(inputBase.info, headBase.info)) {
        duplicateCopies.push(copy(inputBase.info, headBase.info));
      }
      continue;
    }
    if (!indices) {
      throw new InputError('ADAPTER_TOKEN_INDICES_MISSING', `${adapter.label}: trainable-token rows "${info.name}" have no indices for "${modulePath}" in adapter_config.json's trainable_token_indices`, {
        subject: 'trainable_token_indices',
        hint: 'PEFT stores the token indices only in adapter_config.json; use the config saved with these weights.',
      });
    }
    if (effective.has(canonical)) {
      throw new InputError('ADAPTER_CONFLICT', `${adapter.label}: "${canonical}" has trainable-token rows and also LoRA factors or a full replacement`, { subject: canonical, hint: 'Use one way of training a module per adapter.' });
    }
    const start = startOf(canonical);
    if (!start || start.shape.length !== 2) {
      throw new InputError('ADAPTER_TARGET_MISSING', `${adapter.label}: trainable-token rows "${info.name}" map to "${canonical}", which ${input.base.label} does not have as a matrix`, { subject: info.name });
    }
    const [rows, dim] = start.shape as [number, number];
    if (info.shape.length !== 2 || info.shape[0] !== indices.length || info.shape[1] !== dim) {
      throw new InputError('ADAPTER_BASE_SHAPE_MISMATCH', `${adapter.label}: trainable-token rows "${info.name}" are ${shapeText(info.shape)}, but ${indices.length} indices of a ${shapeText(start.shape)} "${start.name}" need [${indices.length}, ${dim}]`, { subject: info.name });
    }
    const bad = indices.find((i) => i >= rows);
    if (bad !== undefined || new Set(indices).size !== indices.length) {
      throw new InputError('ADAPTER_TOKEN_INDICES_INVALID', `${adapter.label}: trainable_token_indices for "${modulePath}" ${bad !== undefined ? `include ${bad}, outside the ${rows} rows of "${start.name}"` : 'repeat an index'}`, { subject: 'trainable_token_indices' });
    }
    const source: TensorSource = { kind: 'rows', base: start, rows: tensorRefOf(adapter.file, info), indices };
    effective.set(canonical, source);
    if (canonical === TIED_INPUT_WEIGHT && base.tied && !effective.has(TIED_OUTPUT_WEIGHT)) effective.set(TIED_OUTPUT_WEIGHT, source);
  }
  return { duplicateCopies };
}

/** What the trainable-token stage adds besides its sources. */
export interface TrainableTokenPlan {
  /** The tied lm_head's saved copies of wte's rows and base layer; the executor checks they are byte-identical. */
  readonly duplicateCopies: readonly DuplicateCopy[];
}

function sameLayout(a: TensorInfo, b: TensorInfo): boolean {
  return a.dtype === b.dtype && a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
}
