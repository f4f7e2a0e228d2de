/**
 * The merge planner: headers and configs in, a plan out (see `types.ts` for the rule a plan encodes).
 * No tensor bytes are read and nothing is written here. Each stage is a function of its own file; this
 * one only composes them, in the order their inputs require.
 */
import { LorafuseError, InputError } from '../errors.js';
import { architectureOf, canonicalName, TIED_INPUT_WEIGHT, TIED_OUTPUT_WEIGHT } from '../gpt2/architecture.js';
import { classifyAdapterTensors } from './adapter-tensors.js';
import { indexBaseTensors } from './base-tensors.js';
import { planLoraBiases } from './lora-biases.js';
import { reconcileConfigAndTensors } from './config-agreement.js';
import { planLoraMerges } from './lora-deltas.js';
import { planOutputConfig } from './output-config.js';
import { planOutputTensors } from './output-tensors.js';
import { planReplacements } from './replacements.js';
import { startingWeights } from './starting-weight.js';
import { decideTie } from './tie.js';
import { planTrainableTokens } from './trainable-tokens.js';
import type { Finding, MergePlan, PlanMergeInput, TensorSource } from './types.js';

/**
 * Builds the merge plan for a GPT-2 base and a LoRA adapter. Throws `InputError` for anything that
 * cannot be merged faithfully; returns warnings and notes as `findings`.
 */
export function planMerge(input: PlanMergeInput): MergePlan {
  const options = input.options ?? {};
  const base = indexBaseTensors(input.base);
  const agreement = reconcileConfigAndTensors(input, classifyAdapterTensors(input.adapter), options.follow);
  const adapterTensors = agreement.tensors;
  const startOf = startingWeights(base, adapterTensors, input.adapter.file);

  // The effective source of every weight the adapter touches.
  const lora = planLoraMerges(input, adapterTensors, startOf);
  const biases = planLoraBiases(input, adapterTensors, startOf, lora);
  // Weights a LoRA merge or trainable-token rows start from: their saved base_layer is no replacement.
  const startedFrom = new Set([...lora.sources.keys(), ...adapterTensors.tokenRows.map((t) => `${canonicalName(t.modulePath)}.weight`)]);
  const replacements = planReplacements(input, base, adapterTensors, startedFrom);
  // A bias the adapter saved (and replacements checked) is where its lora_B bias is added.
  const effective = new Map<string, TensorSource>([...lora.sources, ...replacements.sources, ...biases.sources]);
  const tokens = planTrainableTokens(input, base, adapterTensors, startOf, effective);
  const originals = ignoredOriginalsFinding(adapterTensors.ignoredOriginals);

  const wteSource: TensorSource = effective.get(TIED_INPUT_WEIGHT) ?? { kind: 'copy', from: base.wte };
  const tie = decideTie({
    baseTied: base.tied,
    hasHead: replacements.newHead === null && architectureOf(input.base.config) !== 'GPT2Model',
    wte: { name: base.wte.name, source: wteSource },
    lmHeadSource: base.tied ? (effective.get(TIED_OUTPUT_WEIGHT) ?? null) : null,
    mode: options.tie ?? 'auto',
    force: options.force === true,
    adapterLabel: input.adapter.label,
  });
  if (!base.tied && effective.has(TIED_OUTPUT_WEIGHT) && !base.byCanonical.has(TIED_OUTPUT_WEIGHT)) {
    throw new InputError('ADAPTER_TARGET_MISSING', `${input.adapter.label}: the adapter changes lm_head, but ${input.base.label} has no lm_head.weight and its config is untied`, { subject: TIED_OUTPUT_WEIGHT });
  }

  const output = planOutputTensors(base, effective, wteSource, replacements.newHead, tie);
  const config = planOutputConfig(input.base.config, base, wteSource, replacements.newHead, tie, options.padTokenId);
  return {
    tensors: output.tensors,
    tie,
    outputConfig: config.config,
    configChanges: config.changes,
    findings: [...base.findings, ...agreement.findings, ...lora.findings, ...biases.findings, ...originals, ...config.findings, ...tie.findings],
    baseConfig: input.base.config,
    duplicateCopies: [...adapterTensors.duplicateCopies, ...tokens.duplicateCopies],
    summary: { ...output.counts, loraModules: lora.modules },
  };
}

/** A plan, or the typed error that refused one (for the doctor, which reports it as a finding). */
export type PlanOutcome = MergePlan | LorafuseError;

/** {@link planMerge}, with a refusal returned rather than thrown; other errors still propagate. */
export function tryPlanMerge(input: PlanMergeInput): PlanOutcome {
  try {
    return planMerge(input);
  } catch (e) {
    if (e instanceof LorafuseError) return e;
    throw e;
  }
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
