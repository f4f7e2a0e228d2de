/**
 * The checks of a merge's freshly written weights that every writer of them runs (the CLI on its
 * temporary files, the browser app on the bytes it is about to offer): the headers hold each planned
 * tensor as planned, where it was meant to go; each loaded parameter's intent, the tied lm_head's
 * included; and the one error a failed proof becomes.
 */
import { VerificationError } from '../errors.js';
import { TIED_INPUT_WEIGHT, TIED_OUTPUT_WEIGHT } from '../gpt2/architecture.js';
import type { MergePlan } from '../plan/types.js';
import type { SafetensorsHeader } from '../safetensors/header.js';
import type { Intended } from './prove-loads.js';
import type { VerifyReport } from './verify-load.js';

/** A written weight file: its name in the output and its header read back. */
export interface WrittenWeightFile {
  readonly file: string;
  readonly header: SafetensorsHeader;
}

/**
 * What is wrong with the written headers against the plan (empty: nothing): a tensor missing, of
 * another dtype or shape, in another file than `fileOf` meant, or tensors the plan does not have.
 */
export function writtenHeaderProblems(plan: MergePlan, written: readonly WrittenWeightFile[], fileOf: (name: string) => string | undefined): string[] {
  const problems: string[] = [];
  const stored = new Map(written.flatMap((w) => w.header.tensors.map((t) => [t.name, { t, file: w.file }] as const)));
  for (const t of plan.tensors) {
    const got = stored.get(t.name);
    if (!got) problems.push(`"${t.name}" is missing`);
    else if (got.t.dtype !== t.dtype || got.t.shape.join(',') !== t.shape.join(',')) problems.push(`"${t.name}" is ${got.t.dtype} [${got.t.shape.join(', ')}], planned ${t.dtype} [${t.shape.join(', ')}]`);
    else if (got.file !== fileOf(t.name)) problems.push(`"${t.name}" is in ${got.file}, meant for ${fileOf(t.name)}`);
  }
  const count = written.reduce((n, w) => n + w.header.tensors.length, 0);
  if (count !== plan.tensors.length) problems.push(`${count} tensors written, ${plan.tensors.length} planned`);
  return problems;
}

/** The refusal of written headers that do not match the plan (`what`: the file or files). */
export function headerMismatch(what: string, problems: readonly string[], subject: string): VerificationError {
  return new VerificationError('OUTPUT_HEADER_MISMATCH', `the written ${what} does not match the plan: ${problems.slice(0, 5).join('; ')}`, { subject });
}

/**
 * What the merge meant each loaded parameter (canonical name) to be: its recorded intent; for a
 * tied lm_head that is not stored, the computed head when the tie step computed it, else the
 * effective wte — or anything, when the user kept a lossy tie by force.
 */
export function mergeIntentOf(plan: MergePlan, intents: ReadonlyMap<string, Intended>, lmHeadIntent: Intended | undefined, forcedReason: string): (name: string) => Intended | undefined {
  const tiedHead = lmHeadIntent ?? intents.get(TIED_INPUT_WEIGHT);
  const forcedLoss = plan.findings.some((f) => f.code === 'TIE_KEPT_FORCED');
  return (name) => {
    if (name === TIED_OUTPUT_WEIGHT && !intents.has(TIED_OUTPUT_WEIGHT)) return forcedLoss ? { kind: 'accept-any', reason: forcedReason } : tiedHead;
    return intents.get(name);
  };
}

/** The error of a failed proof of a merge's output (`what`: "the written checkpoint"; `hint`: what happened to it). */
export function proofFailure(report: VerifyReport, what: string, hint: string): VerificationError {
  const f = report.failures[0]!;
  return new VerificationError('MERGE_VERIFY_FAILED', `verification of ${what} failed: ${f.name}: ${f.detail} (transformers ${f.versions.join(', ')})${report.failures.length > 1 ? `; and ${report.failures.length - 1} more` : ''}`, {
    subject: f.name,
    hint,
  });
}
