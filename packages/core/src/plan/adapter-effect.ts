/**
 * Planning stage: what one adapter does to the base on its own — every tensor it changes, by
 * canonical name, with its source (LoRA merge, full replacement, trainable-token rows) — validated
 * against the base exactly as a single-adapter merge is. Several adapters' effects are combined by
 * `combine-adapters.ts`.
 */
import { InputError } from '../errors.js';
import { canonicalName } from '../gpt2/architecture.js';
import { classifyAdapterTensors } from './adapter-tensors.js';
import type { BaseTensors } from './base-tensors.js';
import { reconcileConfigAndTensors } from './config-agreement.js';
import { planLoraBiases } from './lora-biases.js';
import { planLoraMerges } from './lora-deltas.js';
import { planReplacements, type AddedHead } from './replacements.js';
import { startingWeights } from './starting-weight.js';
import { planTrainableTokens } from './trainable-tokens.js';
import type { DuplicateCopy, Finding, PlanMergeOptions, SingleAdapterInput, TensorSource } from './types.js';

/** One adapter's effect on the base. */
export interface AdapterEffect {
  readonly label: string;
  readonly weight: number;
  /** The effective source of every weight this adapter touches, by canonical name. */
  readonly effective: ReadonlyMap<string, TensorSource>;
  readonly newHead: AddedHead | null;
  /** LoRA module paths, in the adapter file's order. */
  readonly loraModules: readonly string[];
  readonly duplicateCopies: readonly DuplicateCopy[];
  readonly findings: readonly Finding[];
}

/** Plans one adapter's changes; throws `InputError` for anything that cannot be merged faithfully. */
export function planAdapterEffect(input: SingleAdapterInput, base: BaseTensors, options: PlanMergeOptions): AdapterEffect {
  const weight = input.adapter.weight ?? 1;
  if (!Number.isFinite(weight)) {
    throw new InputError('ADAPTER_WEIGHT_INVALID', `${input.adapter.label}: the weight ${weight} is not a finite number`, { subject: 'weights', hint: 'Give each adapter a finite weight (zero and negative weights are allowed).' });
  }
  const agreement = reconcileConfigAndTensors(input, classifyAdapterTensors(input.adapter), options.follow);
  const tensors = agreement.tensors;
  const startOf = startingWeights(base, tensors, input.adapter.file);
  const lora = planLoraMerges(input, tensors, startOf);
  const biases = planLoraBiases(input, tensors, startOf, lora, options.follow);
  // Weights a LoRA merge or trainable-token rows start from: their saved base_layer is no replacement.
  const startedFrom = new Set([...lora.sources.keys(), ...tensors.tokenRows.map((t) => `${canonicalName(t.modulePath)}.weight`)]);
  const replacements = planReplacements(input, base, tensors, startedFrom);
  // A bias the adapter saved (and replacements checked) is where its lora_B bias is added.
  const effective = new Map<string, TensorSource>([...lora.sources, ...replacements.sources, ...biases.sources]);
  const tokens = planTrainableTokens(input, base, tensors, startOf, effective);
  return {
    label: input.adapter.label,
    weight,
    effective,
    newHead: replacements.newHead,
    loraModules: lora.modules,
    duplicateCopies: [...tensors.duplicateCopies, ...tokens.duplicateCopies],
    findings: [...agreement.findings, ...lora.findings, ...biases.findings, ...ignoredOriginalsFinding(tensors.ignoredOriginals)],
  };
}

function ignoredOriginalsFinding(keys: readonly string[]): Finding[] {
  if (keys.length === 0) return [];
  return [{
    severity: 'info',
    code: 'ORIGINAL_MODULE_IGNORED',
    subject: keys.join(', '),
    message: `the adapter also stores ${keys.map((k) => `"${k}"`).join(', ')}: the untrained module PEFT keeps beside a modules_to_save copy, which the model never uses; ignored`,
  }];
}
