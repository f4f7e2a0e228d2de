/** Programmatic entry points of the lorafuse CLI (used by the benchmarks and tests). */
export { runCli, commands } from './main.js';
export { runMerge, type MergeOptions, type MergeReport } from './commands/merge.js';
export type { MergeExecutor } from './devices/index.js';
