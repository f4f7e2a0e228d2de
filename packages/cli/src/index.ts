/** Programmatic entry points of the lorafuse CLI (used by the benchmarks and tests). */
export { runCli, commands } from './main.js';
export { runMerge, type MergeOptions } from './merge/run-merge.js';
export type { MergeReport } from './merge/report.js';
export type { MergeExecutor } from './devices/index.js';
