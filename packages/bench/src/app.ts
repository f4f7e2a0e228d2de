/**
 * The merge app's benchmark: the built app (packages/web, served as `npm run app` serves it) in
 * headless Chromium on the same WebGPU adapter as `lorafuse merge --device webgpu`, driven through
 * its file choosers on the GPT-2-124M-shaped checkpoint, timed next to that CLI command on the same
 * inputs. The app's figure runs from the merge click to the downloaded model.safetensors on disk
 * (the page's merge and proof, then Chromium writing the download); its JS heap is sampled
 * throughout. The download must be byte for byte the CLI's output before any figure counts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import puppeteer, { type Browser, type ElementHandle } from 'puppeteer-core';
import { CHROMIUM_WEBGPU_ARGS, findChromium } from '@lorafuse/runner';
import { commandArgv, lorafuseCommand } from './e2e.js';
import type { WrittenFixture } from './fixture.js';
import { ratio, summarize, type Summary } from './stats.js';
import { failureText, runTimed } from './timed-run.js';

/** What the app benchmark measured (or why it did not). */
export interface AppResult {
  readonly adapter: string;
  readonly runs: number;
  /** Set when the section did not run or failed, with the reason. */
  readonly skipped?: string;
  /** Merge click → status "verified" (merge and proof in the page, the output in Blob parts). */
  readonly appMergeS?: Summary;
  /** Merge click → model.safetensors downloaded to disk: the figure compared with the CLI. */
  readonly appSavedS?: Summary;
  /** `lorafuse merge --device webgpu` wall time (its Chromium's start included: the app's page was loaded before the click). */
  readonly cliS?: Summary;
  /** Median app (saved) / median CLI. */
  readonly appVsCli?: number;
  /** Largest JS heap in use seen during a merge (CDP Runtime.getHeapUsage, sampled every 200 ms), MB. */
  readonly peakJsHeapMB?: Summary;
  /** Largest ArrayBuffer backing store seen in the page's heap, MB, when Chromium reports it. */
  readonly peakBackingStoreMB?: Summary;
  readonly notes: readonly string[];
}

/** The app/CLI ratio the app aims at. */
export const APP_TARGET_RATIO = 2;

const WEB_DIR = (repoRoot: string) => join(repoRoot, 'packages', 'web');

/** Starts the built app's server on a free port. */
function startAppServer(repoRoot: string): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(WEB_DIR(repoRoot), 'scripts', 'serve.mjs'), '--port', '0', '--no-build'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /http:\/\/127\.0\.0\.1:\d+\//.exec(out);
      if (m) resolve({ child, url: m[0] });
    });
    child.stderr!.on('data', (d) => (out += d));
    child.on('exit', (code) => reject(new Error(`the app server exited (${code}): ${out.trim()}`)));
  });
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function waitForDownload(dir: string, name: string, timeoutMs: number): Promise<string> {
  const until = performance.now() + timeoutMs;
  while (performance.now() < until) {
    const names = await readdir(dir);
    if (names.includes(name) && !names.some((n) => n.endsWith('.crdownload'))) return join(dir, name);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${name} was not downloaded within ${timeoutMs / 1000} s`);
}

/** One merge in the app: times, heap peaks, and the downloaded file's path. */
async function appRun(browser: Browser, url: string, fixture: WrittenFixture, adapterDir: string, downloads: string, timeoutMs: number) {
  const page = await browser.newPage();
  try {
    const cdp = await page.createCDPSession();
    await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads });
    await page.goto(url);
    const base = (await page.$('[data-testid="base-files"]')) as ElementHandle<HTMLInputElement>;
    await base.uploadFile(join(fixture.baseDir, 'config.json'), join(fixture.baseDir, 'model.safetensors'));
    const adapter = (await page.$('[data-testid="adapter-files"]')) as ElementHandle<HTMLInputElement>;
    await adapter.uploadFile(join(adapterDir, 'adapter_config.json'), join(adapterDir, 'adapter_model.safetensors'));
    let heap = 0;
    let backing = 0;
    let sampling = true;
    const sample = async () => {
      const u = (await cdp.send('Runtime.getHeapUsage')) as { usedSize: number; backingStorageSize?: number };
      heap = Math.max(heap, u.usedSize);
      if (u.backingStorageSize !== undefined) backing = Math.max(backing, u.backingStorageSize);
    };
    const sampler = (async () => {
      while (sampling) {
        await sample().catch(() => undefined);
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const t0 = performance.now();
    await page.click('[data-testid="merge"]');
    await page.waitForFunction(() => /verified$|^failed$/.test(document.querySelector('[data-testid="status"]')!.textContent ?? ''), { timeout: timeoutMs, polling: 100 });
    const mergeS = (performance.now() - t0) / 1000;
    sampling = false;
    await sampler;
    const status = await page.$eval('[data-testid="status"]', (el) => el.textContent ?? '');
    if (status === 'failed') throw new Error(`the app failed: ${await page.$eval('[data-testid="error"]', (el) => el.textContent ?? '')}`);
    await page.click('[data-testid="download-model"]');
    const file = await waitForDownload(downloads, 'model.safetensors', timeoutMs);
    const savedS = (performance.now() - t0) / 1000;
    return { mergeS, savedS, heapMB: heap / 2 ** 20, backingMB: backing > 0 ? backing / 2 ** 20 : undefined, file };
  } finally {
    await page.close();
  }
}

/**
 * Runs the app and `lorafuse merge --device webgpu` `runs` times each, interleaved, on `adapterId`
 * of `fixture`. Never throws: a failure is the result's `skipped`.
 */
export async function benchApp(options: { repoRoot: string; workDir: string; fixture: WrittenFixture; adapterId: string; runs: number; timeoutMs?: number; log: (line: string) => void }): Promise<AppResult> {
  const { repoRoot, workDir, fixture, adapterId, runs, log } = options;
  const timeoutMs = options.timeoutMs ?? 1_800_000;
  const head = { adapter: adapterId, runs };
  const notes = [
    'The app is timed from the merge click (its page loaded, the files chosen) to model.safetensors downloaded to disk; the CLI from process start to exit, its Chromium start and fsync included.',
    'Heap: V8 JS heap in use (Runtime.getHeapUsage); Blob parts and ArrayBuffer backing stores live outside it.',
  ];
  if (!existsSync(join(WEB_DIR(repoRoot), 'dist', 'app.js'))) return { ...head, skipped: 'the app is not built (packages/web/dist/app.js is missing: npm run build)', notes };
  const adapterDir = fixture.adapterDirs[adapterId]!;
  const cli = lorafuseCommand(repoRoot, 'webgpu');
  const cliOut = join(workDir, 'app-cli-out');
  let server: ChildProcess | undefined;
  let browser: Browser | undefined;
  const samples = { merge: [] as number[], saved: [] as number[], cli: [] as number[], heap: [] as number[], backing: [] as number[] };
  try {
    const started = await startAppServer(repoRoot);
    server = started.child;
    browser = await puppeteer.launch({ executablePath: findChromium().path, headless: true, args: [...CHROMIUM_WEBGPU_ARGS, '--use-webgpu-adapter=swiftshader'], protocolTimeout: timeoutMs });
    for (let run = 0; run < runs; run++) {
      await rm(cliOut, { recursive: true, force: true });
      const c = await runTimed(commandArgv(cli, { base: fixture.baseDir, adapter: adapterDir, out: cliOut }), workDir);
      if (c.code !== 0) return { ...head, skipped: `lorafuse merge --device webgpu failed: ${failureText(c)}`, notes };
      samples.cli.push(c.wallS);
      log(`app ${adapterId} run ${run + 1}/${runs} lorafuse-webgpu: ${c.wallS.toFixed(2)} s`);
      const downloads = await mkdtemp(join(workDir, 'app-downloads-'));
      try {
        const r = await appRun(browser, started.url, fixture, adapterDir, downloads, timeoutMs);
        const [got, want] = await Promise.all([sha256File(r.file), sha256File(join(cliOut, 'model.safetensors'))]);
        if (got !== want) return { ...head, skipped: `the app's model.safetensors differs from the CLI's (sha256 ${got.slice(0, 12)}… vs ${want.slice(0, 12)}…)`, notes };
        samples.merge.push(r.mergeS);
        samples.saved.push(r.savedS);
        samples.heap.push(r.heapMB);
        if (r.backingMB !== undefined) samples.backing.push(r.backingMB);
        log(`app ${adapterId} run ${run + 1}/${runs} app: merged and proven in ${r.mergeS.toFixed(2)} s, saved in ${r.savedS.toFixed(2)} s, peak JS heap ${r.heapMB.toFixed(0)} MB`);
      } finally {
        await rm(downloads, { recursive: true, force: true });
      }
    }
  } catch (e) {
    log(`app: FAILED ${(e as Error).message}`);
    return { ...head, skipped: `failed: ${(e as Error).message.slice(0, 300)}`, notes };
  } finally {
    await browser?.close().catch(() => undefined);
    server?.kill();
    await rm(cliOut, { recursive: true, force: true });
  }
  const saved = summarize(samples.saved, 's');
  const cliS = summarize(samples.cli, 's');
  return {
    ...head,
    appMergeS: summarize(samples.merge, 's'),
    appSavedS: saved,
    cliS,
    appVsCli: ratio(saved.median, cliS.median),
    peakJsHeapMB: summarize(samples.heap, 'MB'),
    ...(samples.backing.length > 0 ? { peakBackingStoreMB: summarize(samples.backing, 'MB') } : {}),
    notes,
  };
}
