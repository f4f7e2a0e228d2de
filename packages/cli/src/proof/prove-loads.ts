/**
 * The proof of `lorafuse merge` and `lorafuse verify`: core's `proveLoads` (shared with the browser
 * app) with Node's hashing and byte comparison of files, on worker threads where the run has them.
 */
import { proveLoads as proveLoadsWith, type ProveInput, type VerifyReport } from '@lorafuse/core';
import { checksHere, type FileChecks } from './file-checks.js';

export type { Intended } from '@lorafuse/core';

/** Emulates both transformers versions' loads and checks every parameter; never throws for a mismatch (the report says). */
export function proveLoads(input: Omit<ProveInput, 'digestRange' | 'rangesEqual'>, checks: FileChecks = checksHere): Promise<VerifyReport> {
  return proveLoadsWith({ ...input, digestRange: checks.digestRange, rangesEqual: checks.rangesEqual });
}
