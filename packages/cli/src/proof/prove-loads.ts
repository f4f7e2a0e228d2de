/**
 * The proof of `lorafuse merge` and `lorafuse verify`: core's `proveLoads` (shared with the browser
 * app) with Node's hashing and chunked byte comparison of files.
 */
import { proveLoads as proveLoadsWith, type ProveInput, type VerifyReport } from '@lorafuse/core';
import { byteRangesEqual } from '../fs/byte-ranges.js';
import { digestRange } from './digest.js';

export type { Intended } from '@lorafuse/core';

/** Emulates both transformers versions' loads and checks every parameter; never throws for a mismatch (the report says). */
export function proveLoads(input: Omit<ProveInput, 'digestRange' | 'rangesEqual'>): Promise<VerifyReport> {
  return proveLoadsWith({ ...input, digestRange, rangesEqual: byteRangesEqual });
}
