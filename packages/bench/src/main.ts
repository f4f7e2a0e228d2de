#!/usr/bin/env node
// `npm run bench [-- --quick]`: runs every benchmark and writes results/latest.json, results/latest.svg
// and the README's "Benchmarks" section.
import { parseBenchArgs, runBench, type BenchOptions } from './run.js';

let options: BenchOptions | undefined;
try {
  options = parseBenchArgs(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`[bench] ${(e as Error).message}\n`);
  process.exitCode = 2;
}
if (options) {
  try {
    process.exitCode = await runBench(options);
  } catch (e) {
    process.stderr.write(`[bench] ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  }
}
