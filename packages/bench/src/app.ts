/**
 * The merge app's benchmark: the built app (packages/web, served as `npm run app` serves it) in
 * headless Chromium on the same WebGPU adapter as `lorafuse merge --device webgpu`, driven through
 * its file choosers on the GPT-2-124M-shaped checkpoint, timed next to that CLI command on the same
 * inputs. The app's figure runs from the merge click to the downloaded model.safetensors on disk
 * (the page's merge and proof, then Chromium writing the download); its JS heap is sampled
 * throughout. A second figure writes into a chosen directory instead (an origin-private one handed
 * out as the picker's choice: a real picker cannot be driven headless), click to proven and closed.
 * Either output must be byte for byte the CLI's before any figure counts.
 */
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
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
  /** Merge click → proven, model.safetensors and config.json closed in the chosen directory. */
  readonly appDirectoryS?: Summary;
  /** Median app (directory) / median CLI. */
  readonly appDirectoryVsCli?: number;
  /** `lorafuse merge --device webgpu` wall time (its Chromium's start included: the app's page was loaded before the click). */
  readonly cliS?: Summary;
  /** Median app (saved) / median CLI. */
  readonly appVsCli?: number;
  /** Largest JS heap in use seen during a merge (either output) (CDP Runtime.getHeapUsage, sampled every 200 ms), MB. */
  readonly peakJsHeapMB?: Summary;
  /** Largest ArrayBuffer backing store seen in the page's heap, MB, when Chromium reports it. */
  readonly peakBackingStoreMB?: Summary;
  readonly notes: readonly string[];
}

/** The app/CLI ratio the app aims at. */
export const APP_TARGET_RATIO = 2;

const WEB_DIR = (repoRoot: string) => join(repoRoot, 'packages', 'web');

/** Starts the built app's server on a free port (packages/web's own starter, shared with its tests). */
async function startAppServer(repoRoot: string): Promise<{ child: ChildProcess; url: string }> {
  const starter = (await import(pathToFileURL(join(WEB_DIR(repoRoot), 'scripts', 'start-app-server.mjs')).href)) as { startAppServer(): Promise<{ child: ChildProcess; url: string }> };
  return starter.startAppServer();
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Bytes per digest when a file in the page is checked against one on disk (SubtleCrypto hashes whole buffers). */
const SLICE_BYTES = 16 * 2 ** 20;

/** SHA-256 of each {@link SLICE_BYTES} slice of the file at `path`. */
async function sliceDigests(path: string): Promise<string[]> {
  const out: string[] = [];
  for await (const chunk of createReadStream(path, { highWaterMark: SLICE_BYTES })) out.push(createHash('sha256').update(chunk as Buffer).digest('hex'));
  return out;
}

/** Makes the page's `showDirectoryPicker` answer with the origin-private directory `dirName` (created). */
function pickerStub(dirName: string): void {
  (window as unknown as { showDirectoryPicker: () => Promise<FileSystemDirectoryHandle> }).showDirectoryPicker = async () => (await navigator.storage.getDirectory()).getDirectoryHandle(dirName, { create: true });
}

/** In the page: the slice digests of `name` in the origin-private directory `dirName`; then the directory is removed. */
async function opfsSliceDigests(dirName: string, name: string, sliceBytes: number): Promise<string[]> {
  const root = await navigator.storage.getDirectory();
  const file = await (await (await root.getDirectoryHandle(dirName)).getFileHandle(name)).getFile();
  const out: string[] = [];
  for (let at = 0; at < file.size; at += sliceBytes) {
    const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', await file.slice(at, at + sliceBytes).arrayBuffer()));
    out.push(Array.from(hash, (b) => b.toString(16).padStart(2, '0')).join(''));
  }
  await root.removeEntry(dirName, { recursive: true });
  return out;
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

/** What one merge in the app gave. */
interface AppRun {
  readonly mergeS: number;
  /** Downloads only: click to the file on disk. */
  readonly savedS?: number;
  readonly heapMB: number;
  readonly backingMB?: number | undefined;
  /** Downloads: the downloaded file. */
  readonly file?: string;
  /** A chosen directory: the written file's slice digests. */
  readonly digests?: string[];
}

/**
 * One merge in the app, into downloads or into the origin-private directory `opfsDir`: times, heap
 * peaks, and the downloaded file's path or the written file's slice digests.
 */
async function appRun(browser: Browser, url: string, fixture: WrittenFixture, adapterDir: string, target: { downloads: string } | { opfsDir: string }, timeoutMs: number): Promise<AppRun> {
  const page = await browser.newPage();
  try {
    const cdp = await page.createCDPSession();
    if ('downloads' in target) await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: target.downloads });
    else await page.evaluateOnNewDocument(pickerStub, target.opfsDir);
    await page.goto(url);
    if ('opfsDir' in target) {
      await page.click('[data-testid="choose-output"]');
      await page.waitForFunction((name: string) => document.querySelector('[data-testid="output-dir"]')!.textContent!.includes(name), {}, target.opfsDir);
    }
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
    const peaks = { heapMB: heap / 2 ** 20, backingMB: backing > 0 ? backing / 2 ** 20 : undefined };
    if ('opfsDir' in target) return { mergeS, ...peaks, digests: await page.evaluate(opfsSliceDigests, target.opfsDir, 'model.safetensors', SLICE_BYTES) };
    await page.click('[data-testid="download-model"]');
    const file = await waitForDownload(target.downloads, 'model.safetensors', timeoutMs);
    const savedS = (performance.now() - t0) / 1000;
    return { mergeS, savedS, ...peaks, file };
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
  const samples = { merge: [] as number[], saved: [] as number[], directory: [] as number[], cli: [] as number[], heap: [] as number[], backing: [] as number[] };
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
        const r = await appRun(browser, started.url, fixture, adapterDir, { downloads }, timeoutMs);
        const [got, want] = await Promise.all([sha256File(r.file!), sha256File(join(cliOut, 'model.safetensors'))]);
        if (got !== want) return { ...head, skipped: `the app's model.safetensors differs from the CLI's (sha256 ${got.slice(0, 12)}… vs ${want.slice(0, 12)}…)`, notes };
        samples.merge.push(r.mergeS);
        samples.saved.push(r.savedS!);
        samples.heap.push(r.heapMB);
        if (r.backingMB !== undefined) samples.backing.push(r.backingMB);
        log(`app ${adapterId} run ${run + 1}/${runs} app: merged and proven in ${r.mergeS.toFixed(2)} s, saved in ${r.savedS!.toFixed(2)} s, peak JS heap ${r.heapMB.toFixed(0)} MB${r.backingMB !== undefined ? `, ArrayBuffers ${r.backingMB.toFixed(0)} MB` : ''}`);
      } finally {
        await rm(downloads, { recursive: true, force: true });
      }
      const d = await appRun(browser, started.url, fixture, adapterDir, { opfsDir: `lorafuse-bench-${run}` }, timeoutMs);
      const want = await sliceDigests(join(cliOut, 'model.safetensors'));
      if (d.digests!.length !== want.length || d.digests!.some((x, i) => x !== want[i])) return { ...head, skipped: "the model.safetensors the app wrote into the chosen directory differs from the CLI's", notes };
      samples.directory.push(d.mergeS);
      samples.heap.push(d.heapMB);
      if (d.backingMB !== undefined) samples.backing.push(d.backingMB);
      log(`app ${adapterId} run ${run + 1}/${runs} app into a chosen directory: written and proven in ${d.mergeS.toFixed(2)} s, peak JS heap ${d.heapMB.toFixed(0)} MB${d.backingMB !== undefined ? `, ArrayBuffers ${d.backingMB.toFixed(0)} MB` : ''}`);
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
  const directory = summarize(samples.directory, 's');
  const cliS = summarize(samples.cli, 's');
  return {
    ...head,
    appMergeS: summarize(samples.merge, 's'),
    appSavedS: saved,
    appDirectoryS: directory,
    appDirectoryVsCli: ratio(directory.median, cliS.median),
    cliS,
    appVsCli: ratio(saved.median, cliS.median),
    peakJsHeapMB: summarize(samples.heap, 'MB'),
    ...(samples.backing.length > 0 ? { peakBackingStoreMB: summarize(samples.backing, 'MB') } : {}),
    notes,
  };
}
