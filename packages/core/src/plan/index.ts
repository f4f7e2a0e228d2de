export * from './merge-plan.js';
export * from './cpu-merge.js';
export * from './tie-decision.js';
export * from './token-rows.js';
