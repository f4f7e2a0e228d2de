/**
 * A merge's plan, made once, with the doctor's checks run on it: an error finding stops the merge
 * before anything is written; warnings and notes go into the report. The CLI's merge and the browser
 * app both start here, so a bad input gets the same message in either.
 */
import { InputError, LorafuseError } from '../errors.js';
import { tryPlanMerge } from '../plan/plan-merge.js';
import type { Finding, MergePlan, PlanMergeInput, PlanMergeOptions } from '../plan/types.js';
import { diagnose } from './diagnose.js';

/** The plan and the doctor's findings the plan does not already carry. */
export interface CheckedPlan {
  readonly plan: MergePlan;
  readonly doctorNotes: readonly Finding[];
}

/** Plans the merge; throws the doctor's error findings as one `InputError`. */
export function planChecked(input: Omit<PlanMergeInput, 'options'>, options: PlanMergeOptions): CheckedPlan {
  const planned = tryPlanMerge({ ...input, options });
  const findings = diagnose(input, planned);
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
