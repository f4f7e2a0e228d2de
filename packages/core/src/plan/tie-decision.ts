/**
 * The tie decision, a named plan step (SPEC §0.2, pitfall 10): in a tied GPT-2 the input embedding
 * and the output head are two uses of one matrix. The output keeps the tie (stores only wte) exactly
 * when the effective wte and lm_head are bitwise equal; otherwise it stores both and unties. Which
 * side the adapter touched is known from the plan; equality is confirmed on the computed bytes,
 * so an undecided plan is `pending` until `resolveTie` is given the comparison.
 */
import { InputError } from '../errors.js';
import { TIED_OUTPUT_WEIGHT } from '../gpt2/architecture.js';
import type { Finding, MergePlan, PlannedTensor, TensorSource } from './merge-plan.js';
import { outputTypeOf, shapeText, tieConfigChange } from './merge-plan.js';

/** `auto`: decide from the effective weights; `keep`: keep the tie (refused if it loses weights, unless forced); `untie`: always store both. */
export type TieMode = 'auto' | 'keep' | 'untie';

/** The state of the tie decision in a plan. */
export type TiePlan =
  /** The base stores its own lm_head (untied): each side is merged on its own. */
  | { readonly state: 'base-untied'; readonly findings: readonly Finding[] }
  /** Tied base, and the adapter leaves both uses alone (or the model has no lm_head): tie kept. */
  | { readonly state: 'untouched'; readonly findings: readonly Finding[] }
  /** Both effective matrices must be computed and compared before the output layout is known. */
  | {
      readonly state: 'pending';
      readonly wte: { readonly name: string; readonly source: TensorSource };
      readonly lmHead: PlannedTensor;
      readonly mode: TieMode;
      readonly force: boolean;
      /** What the adapter changed, in words. */
      readonly touched: string;
      readonly findings: readonly Finding[];
    }
  | {
      readonly state: 'decided';
      readonly decision: 'keep' | 'untie';
      readonly reason: string;
      /** The head written separately when untied. */
      readonly lmHead: PlannedTensor | null;
      readonly findings: readonly Finding[];
    };

/** Inputs of the tie step. */
export interface TieInput {
  /** Base config ties and the base stores no lm_head.weight. */
  readonly baseTied: boolean;
  /** The output model has an lm_head (GPT2LMHeadModel and the like, not GPT2Model or a classifier). */
  readonly hasHead: boolean;
  readonly wte: { readonly name: string; readonly source: TensorSource };
  /** What the adapter does to lm_head (LoRA or a full tensor), or null if nothing. */
  readonly lmHeadSource: TensorSource | null;
  readonly mode: TieMode;
  readonly force: boolean;
  readonly adapterLabel: string;
}

function describeChange(source: TensorSource | null): string | null {
  if (!source || source.kind === 'copy') return null;
  if (source.kind === 'merge') return 'LoRA';
  if (source.kind === 'rows') return 'trainable tokens';
  return 'a full trained tensor (modules_to_save / saved embedding)';
}

/** Decides what can be decided from the plan alone. */
export function decideTie(input: TieInput): TiePlan {
  if (!input.baseTied) return { state: 'base-untied', findings: [] };
  const wteChange = describeChange(input.wte.source);
  const headChange = describeChange(input.lmHeadSource);
  if (!input.hasHead) {
    return { state: 'untouched', findings: [] };
  }
  const w = input.wte.source;
  const wteBase = w.kind === 'merge' || w.kind === 'rows' ? w.base : w.kind === 'copy' ? w.from : w.replaces;
  const lmHeadSource: TensorSource = input.lmHeadSource ?? (wteBase ? { kind: 'copy', from: wteBase } : input.wte.source);
  const lmHead: PlannedTensor = { name: TIED_OUTPUT_WEIGHT, ...outputTypeOf(lmHeadSource), source: lmHeadSource };
  if (!wteChange && !headChange) {
    if (input.mode === 'untie') {
      return { state: 'decided', decision: 'untie', reason: '--tie untie', lmHead, findings: [] };
    }
    return { state: 'untouched', findings: [] };
  }
  const wteShape = outputTypeOf(input.wte.source).shape;
  if (wteShape[0] !== lmHead.shape[0] || wteShape[1] !== lmHead.shape[1]) {
    throw new InputError('TIED_SHAPES_DISAGREE', `${input.adapterLabel}: the effective wte is ${shapeText(wteShape)} but the effective lm_head is ${shapeText(lmHead.shape)}; in a tied GPT-2 both must have the vocabulary's row count`, {
      subject: TIED_OUTPUT_WEIGHT,
      hint: 'The vocabulary was resized during training but the adapter does not carry both resized matrices. Save the adapter with save_embedding_layers=True (or modules_to_save=["wte", "lm_head"]).',
    });
  }
  const touched = [wteChange ? `wte: ${wteChange}` : null, headChange ? `lm_head: ${headChange}` : null].filter(Boolean).join('; ');
  if (input.mode === 'untie') {
    return { state: 'decided', decision: 'untie', reason: `--tie untie (${touched})`, lmHead, findings: [] };
  }
  return { state: 'pending', wte: input.wte, lmHead, mode: input.mode, force: input.force, touched, findings: [] };
}

/** How the effective wte and lm_head compare, computed on their bytes. */
export interface TieComparison {
  readonly equal: boolean;
  /** Rows of lm_head that differ from wte. */
  readonly differingRows: number;
  readonly maxAbsDiff: number;
}

/** Finishes a pending tie decision with the comparison of the two effective matrices. */
export function resolveTie(plan: MergePlan, cmp: TieComparison): MergePlan {
  const tie = plan.tie;
  if (tie.state !== 'pending') return plan;
  let decided: Extract<TiePlan, { state: 'decided' }>;
  const findings: Finding[] = [];
  if (cmp.equal) {
    decided = { state: 'decided', decision: 'keep', reason: `the effective wte and lm_head are bitwise equal (${tie.touched})`, lmHead: null, findings };
  } else if (tie.mode === 'keep') {
    const lost = `${cmp.differingRows} row(s) of lm_head differ from wte (max |difference| ${cmp.maxAbsDiff.toPrecision(4)})`;
    if (!tie.force) {
      throw new InputError('TIE_KEEP_LOSES_WEIGHTS', `--tie keep would discard trained weights: ${lost}; with the tie kept, transformers uses wte for lm_head`, {
        subject: TIED_OUTPUT_WEIGHT,
        hint: 'Use --tie auto (unties and stores both), or add --force to keep the tie and lose those lm_head values.',
      });
    }
    findings.push({ severity: 'warning', code: 'TIE_KEPT_FORCED', subject: TIED_OUTPUT_WEIGHT, message: `--tie keep --force: lm_head's trained values are lost: ${lost}` });
    decided = { state: 'decided', decision: 'keep', reason: `--tie keep --force (${tie.touched})`, lmHead: null, findings };
  } else {
    decided = {
      state: 'decided',
      decision: 'untie',
      reason: `the effective wte and lm_head differ: ${cmp.differingRows} row(s), max |difference| ${cmp.maxAbsDiff.toPrecision(4)} (${tie.touched})`,
      lmHead: tie.lmHead,
      findings,
    };
  }
  const tensors = decided.decision === 'untie' ? [...plan.tensors, tie.lmHead] : plan.tensors;
  const outputConfig = { ...(plan.outputConfig ?? plan.baseConfig) };
  const configChanges = [...plan.configChanges];
  const change = tieConfigChange(decided, plan.baseConfig);
  if (change) {
    outputConfig['tie_word_embeddings'] = change.value;
    configChanges.push(change.text);
  }
  return {
    ...plan,
    tensors,
    tie: decided,
    outputConfig: configChanges.length > 0 ? outputConfig : null,
    configChanges,
    findings: [...plan.findings, ...findings, { severity: 'info', code: decided.decision === 'keep' ? 'TIE_KEPT' : 'UNTIED', subject: TIED_OUTPUT_WEIGHT, message: `${decided.decision === 'keep' ? 'tie kept' : 'untied: lm_head.weight stored separately, tie_word_embeddings: false'}: ${decided.reason}` }],
    summary: decided.decision === 'untie'
      ? {
          ...plan.summary,
          added: plan.summary.added + 1,
          merged: plan.summary.merged + (tie.lmHead.source.kind === 'merge' ? 1 : 0),
          replaced: plan.summary.replaced + (tie.lmHead.source.kind === 'replace' || tie.lmHead.source.kind === 'rows' ? 1 : 0),
        }
      : plan.summary,
  };
}
