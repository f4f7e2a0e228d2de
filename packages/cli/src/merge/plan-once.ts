/**
 * Step 2 of a merge: the plan, made once, and the doctor's checks run on it. An error finding stops
 * the merge here, before anything is written; warnings and notes go into the report.
 */
import { diagnose, InputError, LorafuseError, tryPlanMerge, type Finding, type MergePlan, type PlanMergeOptions } from '@lorafuse/core';
import type { MergeInputs } from './open-inputs.js';

/** The plan and the doctor's findings the plan does not already carry. */
export interface PlannedMerge {
  readonly plan: MergePlan;
  readonly doctorNotes: readonly Finding[];
}

/** Plans the merge; throws the doctor's error findings as one `InputError`. */
export function planOnce(inputs: MergeInputs, options: PlanMergeOptions): PlannedMerge {
  const planned = tryPlanMerge({ ...inputs.planInput, options });
  const findings = diagnose(inputs.planInput, planned);
  const errors = findings.filter((f) => f.severity === 'error');
  if (errors.length > 0) {
    const first = errors[0]!;
    throw new InputError(first.code, errors.length === 1 ? first.message : `${errors.length} problems: ${errors.map((e) => e.message).join('; ')}`, {
      ...(first.fix ? { hint: first.fix } : {}),
      ...(first.subject ? { subject: first.subject } : {}),
    });
  }
  // Without an error finding the plan exists (a refusal is an error finding).
  if (planned instanceof LorafuseError) throw planned;
  const planCodes = new Set(planned.findings.map((f) => f.code));
  return { plan: planned, doctorNotes: findings.filter((f) => !planCodes.has(f.code)) };
}
