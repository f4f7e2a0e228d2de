export * from './types.js';
export { planMerge, tryPlanMerge, type PlanOutcome } from './plan-merge.js';
export { decideTie, resolveTie, compareTiePair, tieOutcome, tieConfigChange, effectiveParameters, type TieInput } from './tie.js';
export { copiedFrom, outputTypeOf } from './tensor-source.js';
export { cloneSourceFor, type CloneSource } from './clone-source.js';
