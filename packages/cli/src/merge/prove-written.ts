/**
 * Step 5 of a merge: re-open the file just written, check its header against the plan, and prove
 * that what transformers v4 and v5 load from it is byte for byte what was meant (the same proof
 * `lorafuse verify` runs). The weights' fsync runs meanwhile; both finish before anything is renamed.
 */
import { readSafetensorsHeader, TIED_INPUT_WEIGHT, TIED_OUTPUT_WEIGHT, VerificationError, type ByteSource, type MergePlan, type VerifyReport } from '@lorafuse/core';
import { openFileSource } from '../fs/file-source.js';
import { proveLoads, type Intended } from '../proof/prove-loads.js';

/** What the proof of a written checkpoint needs. */
export interface ProveWrittenInput {
  /** The written model.safetensors (its temporary path). */
  readonly path: string;
  readonly config: Record<string, unknown>;
  readonly plan: MergePlan;
  readonly intents: ReadonlyMap<string, Intended>;
  /** lm_head's intent when the tie step computed it (stored, or loaded through the tie). */
  readonly lmHeadIntent: Intended | undefined;
  /** The input files the copied tensors came from. */
  readonly inputOf: (file: string) => ByteSource;
}

/** Proves the written file; throws `VerificationError` (exit 1) on any mismatch. */
export async function proveWritten(input: ProveWrittenInput): Promise<VerifyReport> {
  const { plan } = input;
  const source = await openFileSource(input.path);
  try {
    const header = await readSafetensorsHeader(source);
    const problems: string[] = [];
    for (const t of plan.tensors) {
      const got = header.byName.get(t.name);
      if (!got) problems.push(`"${t.name}" is missing`);
      else if (got.dtype !== t.dtype || got.shape.join(',') !== t.shape.join(',')) problems.push(`"${t.name}" is ${got.dtype} [${got.shape.join(', ')}], planned ${t.dtype} [${t.shape.join(', ')}]`);
    }
    if (header.tensors.length !== plan.tensors.length) problems.push(`${header.tensors.length} tensors written, ${plan.tensors.length} planned`);
    if (problems.length > 0) {
      throw new VerificationError('OUTPUT_HEADER_MISMATCH', `the written model.safetensors does not match the plan: ${problems.slice(0, 5).join('; ')}`, { subject: 'model.safetensors' });
    }
    // A tied lm_head is meant to be the computed head, else (tie untouched) the effective wte.
    const tiedHead = input.lmHeadIntent ?? input.intents.get(TIED_INPUT_WEIGHT);
    const forcedLoss = plan.findings.some((f) => f.code === 'TIE_KEPT_FORCED');
    const report = await proveLoads({
      config: input.config,
      headers: [header],
      sourceOf: (file) => (file === header.label ? source : input.inputOf(file)),
      intendedOf: (name) => {
        if (name === TIED_OUTPUT_WEIGHT && !input.intents.has(TIED_OUTPUT_WEIGHT)) return forcedLoss ? { kind: 'accept-any', reason: 'the user kept the tie with --force' } : tiedHead;
        return input.intents.get(name);
      },
      meantBy: 'the merge',
      concurrency: 4,
    });
    if (!report.ok) {
      const f = report.failures[0]!;
      throw new VerificationError('MERGE_VERIFY_FAILED', `verification of the written checkpoint failed: ${f.name}: ${f.detail} (transformers ${f.versions.join(', ')})${report.failures.length > 1 ? `; and ${report.failures.length - 1} more` : ''}`, {
        subject: f.name,
        hint: 'Nothing was written. This is a bug in lorafuse: please report it with the inputs.',
      });
    }
    return report;
  } finally {
    await source.close();
  }
}
