/**
 * The forward-pass kernels in real headless Chromium (WebGPU; SwiftShader without a GPU) against
 * their CPU twins: |gpu - ref| <= 1e-5 + 1e-5·|ref| per element (the GPU sums in f32, the twins in
 * f64). No adapter fails the file (beforeAll throws), never a skip.
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
  workDir = await mkdtemp(join(tmpdir(), 'lorafuse-forward-test-'));
  const bundle = await bundlePage(fileURLToPath(new URL('./forward.page.ts', import.meta.url)), join(workDir, 'page.js'));
  runner = await startBrowserRunner({ pageBundlePath: bundle, timeoutMs: 240_000 });
  results = await runner.call<CheckResult[]>('forwardChecks');
}, 300_000);

afterAll(async () => {
  await runner?.close();
  if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
});

describe('forward kernels in Chromium vs their CPU twins', () => {
  it('ran every check', () => {
    expect(results.length).toBeGreaterThan(40);
    expect(results.map((r) => r.name)).toEqual(expect.arrayContaining([expect.stringMatching(/^matmul out-in .* chunked/), expect.stringMatching(/^attention 1 queries after 69/), expect.stringMatching(/^gather rows of a table in 4 chunks/)]));
  });

  it('every kernel agrees with its twin on every shape', () => {
    const bad = results.filter((r) => r.violations > 0).map((r) => `${r.name}: ${r.violations}/${r.elements} off, max |d| ${r.maxAbs}`);
    expect(bad).toEqual([]);
  });
});
