/**
 * `@lorafuse/bench`: benchmarks of lorafuse (kernels, transfers, end-to-end merges, the XL size) as a library;
 * `npm run bench` runs {@link runBench} through `dist/main.js`.
 */
export { runBench, parseBenchArgs, BENCH_SECTIONS, type BenchOptions, type BenchSection } from './run.js';
export { writeGpt2Fixture, writeGpt2Base, writeBenchAdapter, BENCH_ADAPTERS, GPT2_124M, GPT2_XL, type WrittenFixture, type WrittenBase, type Gpt2Shape, type BenchAdapterSpec } from './fixture.js';
export { KERNEL_SHAPES, type KernelShape, type KernelResult, type CompareKernelResult } from './kernels.js';
export type { TransferResult } from './transfers.js';
export type { E2eResult, E2eFigures } from './e2e.js';
export type { XlResult } from './xl.js';
export type { FsyncCheck } from './io-floor.js';
export type { BenchResults, TargetCheck } from './report.js';
export { summarize, median, type Summary } from './stats.js';
