/**
 * The tie step of a plan. In a tied GPT-2 the input embedding and the output head are two uses of one
 * matrix. The output keeps the tie (stores only wte) exactly when the effective wte and lm_head are
 * bitwise equal; otherwise it stores both and unties, so no trained value is lost and no load rule
 * can overwrite one with the other. Which side the adapter touched is known from the plan; equality
 * needs the computed bytes, so an undecided plan is `pending` until `resolveTie` gets the comparison.
 */
import { InputError } from '../errors.js';
import { canonicalName, TIED_INPUT_WEIGHT, TIED_OUTPUT_WEIGHT } from '../gpt2/architecture.js';
import { shapeText } from '../shape.js';
import { decodeToF32, type FloatCodecDtype } from '../safetensors/dtype.js';
import { bytesEqual } from '../bytes-equal.js';
import { outputTypeOf } from './tensor-source.js';
import type { Finding, MergePlan, PlannedTensor, TieComparison, TieMode, TiePlan, TensorSource } from './types.js';

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
  if (source.kind === 'merge') return source.dora ? 'DoRA' : 'LoRA';
  if (source.kind === 'bias') return 'LoRA';
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
  const wteBase = w.kind === 'merge' || w.kind === 'rows' || w.kind === 'bias' ? w.base : w.kind === 'copy' ? w.from : w.replaces;
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

/** The `tie_word_embeddings` value a decided tie requires, if it differs from the base config's. */
export function tieConfigChange(tie: TiePlan, baseConfig: Record<string, unknown>): { value: boolean; text: string } | null {
  if (tie.state !== 'decided' || tie.decision !== 'untie') return null;
  if (baseConfig['tie_word_embeddings'] === false) return null;
  return { value: false, text: `tie_word_embeddings: ${JSON.stringify(baseConfig['tie_word_embeddings'] ?? true)} → false (${tie.reason})` };
}

/**
 * The intended effective tensor of every model parameter, by canonical name, whatever tie the
 * output chose: a pending tie's lm_head candidate, and in a tie kept untouched lm_head is wte.
 */
export function effectiveParameters(plan: MergePlan): Map<string, PlannedTensor> {
  const intended = new Map<string, PlannedTensor>();
  for (const t of plan.tensors) intended.set(canonicalName(t.name), t);
  if (plan.tie.state === 'pending') intended.set(TIED_OUTPUT_WEIGHT, plan.tie.lmHead);
  else if (!intended.has(TIED_OUTPUT_WEIGHT) && intended.has(TIED_INPUT_WEIGHT) && plan.tie.state === 'untouched') intended.set(TIED_OUTPUT_WEIGHT, intended.get(TIED_INPUT_WEIGHT)!);
  return intended;
}

/**
 * Compares the effective wte and lm_head (row-major [vocab, dim]) bitwise, and, when they differ,
 * counts differing rows and the largest absolute difference for the report.
 */
export function compareTiePair(wte: Uint8Array, wteDtype: string, head: Uint8Array, headDtype: string, dim: number): TieComparison {
  if (wteDtype === headDtype && bytesEqual(wte, head)) {
    return { equal: true, differingRows: 0, maxAbsDiff: 0 };
  }
  const a = decodeToF32(wteDtype as FloatCodecDtype, wte);
  const b = decodeToF32(headDtype as FloatCodecDtype, head);
  let differingRows = 0;
  let maxAbsDiff = 0;
  const rows = Math.floor(Math.min(a.length, b.length) / Math.max(1, dim));
  for (let r = 0; r < rows; r++) {
    let rowDiffers = false;
    for (let c = 0; c < dim; c++) {
      const i = r * dim + c;
      const d = Math.abs(a[i]! - b[i]!);
      if (d > 0 || Object.is(a[i], b[i]) === false) rowDiffers = true;
      if (d > maxAbsDiff) maxAbsDiff = d;
    }
    if (rowDiffers) differingRows++;
  }
  return { equal: false, differingRows, maxAbsDiff };
}

/** The tie's outcome in words, for reports: the decision (or why there was none to make) and the reason. */
export function tieOutcome(plan: MergePlan): { decision: string; reason: string } {
  const tie = plan.tie;
  if (tie.state === 'decided') return { decision: tie.decision, reason: tie.reason };
  if (tie.state === 'base-untied') return { decision: 'base-untied', reason: 'the base stores its own lm_head' };
  return { decision: 'unchanged', reason: 'the adapter does not touch wte or lm_head' };
}
