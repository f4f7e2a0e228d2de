export * from './merge-plan.js';
export * from './cpu-merge.js';
