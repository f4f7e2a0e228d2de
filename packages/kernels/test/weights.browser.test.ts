/**
 * The app-facing weight kernels (merge, unmerge, swap, rebuild, DoRA, inspect on app-owned bindings) in
 * real headless Chromium against their CPU twins. No adapter fails the file (beforeAll throws).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundlePage, startBrowserRunner, type BrowserRunner } from '@lorafuse/runner';
import type { CheckResult } from '../src/testing/index.js';

let runner: BrowserRunner;
let workDir: string;
let results: CheckResult[] = [];

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'lorafuse-weights-test-'));
  const bundle = await bundlePage(fileURLToPath(new URL('./weights.page.ts', import.meta.url)), join(workDir, 'page.js'));
  runner = await startBrowserRunner({ pageBundlePath: bundle, timeoutMs: 240_000 });
  results = await runner.call<CheckResult[]>('weightChecks');
}, 300_000);

afterAll(async () => {
  await runner?.close();
  if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
});

describe('weight kernels in Chromium vs their CPU twins', () => {
  it("ran every check", () => {
    expect(results.length).toBeGreaterThan(20);
    expect(results.map((r) => r.name)).toEqual(expect.arrayContaining([expect.stringMatching(/^merge f16 out-in 17x300 r256/), expect.stringMatching(/^rebuild bf16 in-out 29x40 r2 chunked/), expect.stringMatching(/^refuses misaligned W offset/), expect.stringMatching(/^mergeDora bf16 in-out 500x5 r1\+r1 \(segments across chunks\) chunked/), expect.stringMatching(/^mergeDora f32 out-in 9x11 r2 with a zero-norm row/), expect.stringMatching(/^refuses three DoRA terms/)]));
  });

  it('every kernel agrees with its twin, leaves the bytes around W alone, and refuses bad bindings by code', () => {
    const bad = results.filter((r) => r.violations > 0).map((r) => `${r.name}: ${r.violations}/${r.elements} off, max ${r.maxAbs}`);
    expect(bad).toEqual([]);
  });
});
