/**
 * The browser runner against real headless Chromium. A missing WebGPU adapter fails these tests
 * (startBrowserRunner throws in beforeAll); it never skips them.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBrowserRunner, type BrowserRunner } from './browser-runner.js';
import { bundlePage } from './bundle.js';
import { RunnerError } from './errors.js';

let dir: string;
let bundle: string;
let runner: BrowserRunner;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lorafuse-runner-test-'));
  bundle = await bundlePage(fileURLToPath(new URL('./browser-runner.test-page.ts', import.meta.url)), join(dir, 'page.js'));
  runner = await startBrowserRunner({ pageBundlePath: bundle });
});

afterAll(async () => {
  await runner?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('startBrowserRunner', () => {
  it('reports Chromium and a WebGPU adapter with the raised device limits', () => {
    expect(runner.chromiumVersion).toMatch(/\d+\.\d+\.\d+/);
    expect(existsSync(runner.chromiumPath)).toBe(true);
    const info = runner.adapterInfo;
    expect(typeof info.vendor).toBe('string');
    expect(typeof info.isFallbackAdapter).toBe('boolean');
    expect(Array.isArray(info.features)).toBe(true);
    expect(info.limits['maxStorageBufferBindingSize']).toBeGreaterThanOrEqual(128 * 1024 * 1024);
    // The device got the adapter's own maximum, not the 128 MiB default.
    expect(info.deviceLimits['maxStorageBufferBindingSize']).toBe(info.limits['maxStorageBufferBindingSize']);
    expect(info.deviceLimits['maxBufferSize']).toBe(info.limits['maxBufferSize']);
    expect(info.deviceLimits['maxComputeWorkgroupStorageSize']).toBe(info.limits['maxComputeWorkgroupStorageSize']);
  });

  it('calls page functions with small JSON and returns their results', async () => {
    expect(await runner.call('echo', { n: 1, s: 'x', list: [1, 2] })).toEqual({ echoed: { n: 1, s: 'x', list: [1, 2] } });
  });

  it('moves bytes over HTTP both ways and runs WebGPU work in the page', async () => {
    const words = Uint32Array.from({ length: 100_000 }, (_, i) => i * 3);
    const input = new Uint8Array(words.buffer);
    const inUrl = runner.server.offerBytes('inc-in', input);
    const output = runner.server.expectUpload('inc-out', input.byteLength);
    expect(await runner.call('incrementOnGpu', { inUrl, outUrl: runner.server.uploadUrl('inc-out') })).toEqual({ bytes: input.byteLength });
    const result = new Uint32Array((await output).buffer);
    expect(result[0]).toBe(1);
    expect(result[99_999]).toBe(99_999 * 3 + 1);
    runner.server.withdraw('inc-in');
  });

  it('passes page errors through with their message', async () => {
    await expect(runner.call('throws', { message: 'boom from the page' })).rejects.toThrow(/boom from the page/);
    await expect(runner.call('noSuchFunction')).rejects.toThrow(/no function lorafuse\.noSuchFunction/);
  });

  it('PAGE_TRANSFER_FAILED, in one line, when a page transfer fails at the network level; the runner stays usable', async () => {
    for (const fn of ['postNowhere', 'fetchNowhere']) {
      const err = await runner.call(fn).then(() => undefined, (e: unknown) => e);
      expect(err, fn).toMatchObject({ code: 'PAGE_TRANSFER_FAILED', kind: 'environment' });
      expect((err as Error).message, fn).toMatch(/^The runner page lost its connection to lorafuse: the (upload of 8 bytes|download) failed \(Failed to fetch\)\.$/);
    }
    expect(await runner.call('echo', 3)).toEqual({ echoed: 3 });
  });

  it('the page starts once: a second startPage throws and the page keeps its device', async () => {
    expect(await runner.call('startAgain')).toMatch(/already called/);
    expect(await runner.call('echo', 2)).toEqual({ echoed: 2 });
  });

  it('PAGE_TIMEOUT when a call does not finish in time; the runner stays usable', async () => {
    const err = await runner.call('neverResolves', null, { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunnerError);
    expect((err as RunnerError).code).toBe('PAGE_TIMEOUT');
    expect(await runner.call('echo', 1)).toEqual({ echoed: 1 });
  });
});

describe('runner failures and cleanup', () => {
  it('DEVICE_LOST after the device is lost; close() is idempotent and removes the profile', async () => {
    const r = await startBrowserRunner({ pageBundlePath: bundle });
    expect(existsSync(r.userDataDir)).toBe(true);
    await r.call('loseDevice');
    await new Promise((resolve) => setTimeout(resolve, 200));
    await expect(r.call('echo', 1)).rejects.toMatchObject({ code: 'DEVICE_LOST' });
    await Promise.all([r.close(), r.close()]);
    await r.close();
    expect(r.closed).toBe(true);
    expect(existsSync(r.userDataDir)).toBe(false);
    expect(existsSync(dirname(r.userDataDir)), 'the scratch directory that holds the profile and Chromium\'s TMPDIR').toBe(false);
    await expect(fetch(r.server.pageUrl)).rejects.toThrow();
    await expect(r.call('echo', 1)).rejects.toThrow(/closed/);
  });

  it('PAGE_CRASHED when the renderer crashes', async () => {
    const r = await startBrowserRunner({ pageBundlePath: bundle });
    try {
      const pending = r.call('neverResolves', null, { timeoutMs: 30_000 });
      await r.page.goto('chrome://crash').catch(() => {});
      await expect(pending).rejects.toMatchObject({ code: 'PAGE_CRASHED' });
      await expect(r.call('echo', 1)).rejects.toMatchObject({ code: 'PAGE_CRASHED' });
    } finally {
      await r.close();
    }
  });

  it('NO_WEBGPU_ADAPTER (a failure, not a skip) when Chromium has no WebGPU adapter', async () => {
    const err = await startBrowserRunner({ pageBundlePath: bundle, baseArgs: ['--no-sandbox'], webgpuAdapter: 'auto', onLog: () => {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunnerError);
    expect((err as RunnerError).code).toBe('NO_WEBGPU_ADAPTER');
    expect((err as RunnerError).kind).toBe('environment');
  });

  it('PAGE_TIMEOUT at startup when the page bundle does not load the runtime', async () => {
    const plain = join(dir, 'plain.js');
    await writeFile(plain, 'globalThis.loaded = true;\n');
    const err = await startBrowserRunner({ pageBundlePath: plain, startupTimeoutMs: 3_000 }).catch((e: unknown) => e);
    expect((err as RunnerError).code).toBe('PAGE_TIMEOUT');
    expect((err as RunnerError).hint).toMatch(/@lorafuse\/runner\/page/);
  });

  it('BROWSER_LAUNCH_FAILED at once, naming --version, for an executable that is not Chromium', async () => {
    // Prints no version and, launched as a browser, would never answer: only the version check can end the wait.
    const fake = join(dir, 'not-chromium.sh');
    await writeFile(fake, '#!/bin/sh\nif [ "$1" = "--version" ]; then exit 3; fi\nexec sleep 600\n', { mode: 0o755 });
    const started = Date.now();
    const err = await startBrowserRunner({ pageBundlePath: bundle, chromiumPath: fake, startupTimeoutMs: 60_000, handleProcessExit: false }).catch((e: unknown) => e);
    expect((err as RunnerError).code).toBe('BROWSER_LAUNCH_FAILED');
    expect((err as RunnerError).message).toMatch(/--version/);
    expect(Date.now() - started, 'ended by the version check, not the 60 s startup limit').toBeLessThan(30_000);
    const { execFileSync } = await import('node:child_process');
    expect(() => execFileSync('pgrep', ['-f', fake]), 'the launched fake is killed').toThrow();
  });

  it("BROWSER_LAUNCH_FAILED naming TMPDIR when Chromium's profile cannot be made there", async () => {
    const before = process.env['TMPDIR'];
    const missing = join(dir, 'no-such-dir');
    process.env['TMPDIR'] = missing;
    try {
      const err = await startBrowserRunner({ pageBundlePath: bundle, handleProcessExit: false }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'BROWSER_LAUNCH_FAILED', subject: missing });
      expect((err as RunnerError).message).toMatch(/profile in .*no-such-dir: ENOENT/);
      expect((err as RunnerError).hint).toMatch(/TMPDIR/);
    } finally {
      if (before === undefined) delete process.env['TMPDIR'];
      else process.env['TMPDIR'] = before;
    }
  });

  it('BROWSER_NOT_FOUND when CHROME_PATH names nothing executable', async () => {
    const err = await startBrowserRunner({ pageBundlePath: bundle, env: { CHROME_PATH: join(dir, 'no-chrome') } }).catch((e: unknown) => e);
    expect((err as RunnerError).code).toBe('BROWSER_NOT_FOUND');
  });
});
