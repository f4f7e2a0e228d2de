/**
 * Step 2 of a merge: the plan, made once, and the doctor's checks run on it (core's `planChecked`,
 * which the browser app shares). An error finding stops the merge here, before anything is written.
 */
import { planChecked, type CheckedPlan, type PlanMergeOptions } from '@lorafuse/core';
import type { MergeInputs } from './open-inputs.js';

/** The plan and the doctor's findings the plan does not already carry. */
export type PlannedMerge = CheckedPlan;

/** Plans the merge; throws the doctor's error findings as one `InputError`. */
export function planOnce(inputs: MergeInputs, options: PlanMergeOptions): PlannedMerge {
  return planChecked(inputs.planInput, options);
}
