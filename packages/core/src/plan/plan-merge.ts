/**
 * The merge planner: headers and configs in, a plan out (see `types.ts` for the rule a plan encodes).
 * No tensor bytes are read and nothing is written here. Each stage is a function of its own file; this
 * one only composes them, in the order their inputs require: each adapter's effect on its own, the
 * effects combined, then the tie, the output tensors and the config, decided on the combined effect.
 */
import { LorafuseError, InputError } from '../errors.js';
import { architectureOf, TIED_INPUT_WEIGHT, TIED_OUTPUT_WEIGHT } from '../gpt2/architecture.js';
import { planAdapterEffect } from './adapter-effect.js';
import { indexBaseTensors } from './base-tensors.js';
import { combineAdapterEffects } from './combine-adapters.js';
import { planOutputConfig } from './output-config.js';
import { planOutputTensors } from './output-tensors.js';
import { decideTie } from './tie.js';
import type { Finding, MergedAdapter, MergePlan, PlanMergeInput, TensorSource } from './types.js';

/**
 * Builds the merge plan for a GPT-2 base and one or more LoRA adapters active together. Throws
 * `InputError` for anything that cannot be merged faithfully; returns warnings and notes as `findings`.
 */
export function planMerge(input: PlanMergeInput): MergePlan {
  const options = input.options ?? {};
  if (input.adapters.length === 0) throw new InputError('ADAPTER_MISSING', 'no adapter to merge', { hint: 'Give at least one adapter directory.' });
  const base = indexBaseTensors(input.base);
  const effects = input.adapters.map((adapter) => planAdapterEffect({ base: input.base, adapter }, base, options));
  const combined = combineAdapterEffects(effects);
  const { effective, newHead } = combined;
  const adapters: MergedAdapter[] = effects.map((e) => ({ label: e.label, weight: e.weight }));
  const labelsOf = (canonical: string) => (combined.changedBy.get(canonical) ?? adapters.map((a) => a.label)).join(' and ');

  const wteSource: TensorSource = effective.get(TIED_INPUT_WEIGHT) ?? { kind: 'copy', from: base.wte };
  const tie = decideTie({
    baseTied: base.tied,
    hasHead: newHead === null && architectureOf(input.base.config) !== 'GPT2Model',
    wte: { name: base.wte.name, source: wteSource },
    lmHeadSource: base.tied ? (effective.get(TIED_OUTPUT_WEIGHT) ?? null) : null,
    mode: options.tie ?? 'auto',
    force: options.force === true,
    adapterLabel: [...new Set([TIED_INPUT_WEIGHT, TIED_OUTPUT_WEIGHT].flatMap((c) => combined.changedBy.get(c) ?? []))].join(' and ') || adapters[0]!.label,
  });
  if (!base.tied && effective.has(TIED_OUTPUT_WEIGHT) && !base.byCanonical.has(TIED_OUTPUT_WEIGHT)) {
    throw new InputError('ADAPTER_TARGET_MISSING', `${labelsOf(TIED_OUTPUT_WEIGHT)}: the adapter changes lm_head, but ${input.base.label} has no lm_head.weight and its config is untied`, { subject: TIED_OUTPUT_WEIGHT });
  }

  const output = planOutputTensors(base, effective, wteSource, newHead, tie);
  const config = planOutputConfig(input.base.config, base, wteSource, newHead, tie, options.padTokenId);
  return {
    tensors: output.tensors,
    tie,
    outputConfig: config.config,
    configChanges: config.changes,
    findings: [...base.findings, ...combinationFinding(adapters), ...combined.findings, ...config.findings, ...tie.findings],
    baseConfig: input.base.config,
    adapters,
    duplicateCopies: combined.duplicateCopies,
    summary: { ...output.counts, loraModules: combined.loraModules },
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

/** What a merge of several (or weighted) adapters computes, and how it relates to PEFT's ways of combining them. */
function combinationFinding(adapters: readonly MergedAdapter[]): Finding[] {
  if (adapters.length === 1 && adapters[0]!.weight === 1) return [];
  return [{
    severity: 'info',
    code: 'ADAPTERS_COMBINED',
    subject: 'weights',
    message: `${adapters.length} adapter(s) active together, weights ${adapters.map((a) => `${a.label}: ${a.weight}`).join(', ')}: every merged weight is W + Σ wᵢ·sᵢ·BᵢAᵢ, each full-rank product exact (no low-rank approximation), added in f32 in adapter order and rounded once to the weight's dtype. `
      + 'This is what PEFT\'s add_weighted_adapter(combination_type="cat") followed by merge_and_unload gives, without the cross terms of "linear" '
      + '(Σ√|wᵢsᵢ|Bᵢ · Σ±√|wᵢsᵢ|Aᵢ ≠ Σ wᵢsᵢBᵢAᵢ) or the scaling applied twice by "svd" in PEFT ≤ 0.20. '
      + 'Weights scale LoRA deltas only: full tensors (modules_to_save, trained biases, saved embeddings) and trainable-token rows are values and apply as saved.',
  }];
}
