/**
 * The merge app end to end: its server started as `npm run app` starts it, real headless Chromium
 * (WebGPU on SwiftShader, as the CLI's webgpu device runs), files chosen through the file choosers,
 * the merge run and proven in the page, and the downloaded model.safetensors and config.json
 * compared byte for byte with `lorafuse merge --device webgpu` on the same inputs. Bad inputs show
 * the CLI's message in the page.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer, { type Browser, type ElementHandle, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter } from '@lorafuse/core/testing';
import { CHROMIUM_WEBGPU_ARGS, findChromium } from '@lorafuse/runner';

const SERVE = fileURLToPath(new URL('../scripts/serve.mjs', import.meta.url));
const CLI = fileURLToPath(new URL('../../cli/bin/lorafuse.js', import.meta.url));
const E = 16;
const V = 50;

let work: string;
let server: ChildProcess;
let url: string;
let browser: Browser;

async function writeDir(dir: string, files: Record<string, Uint8Array | string>): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const [name, bytes] of Object.entries(files)) await writeFile(join(dir, name), bytes);
  return dir;
}

/** Starts the app's server on a free port (built already: `npm test` builds every package first) and returns its URL. */
function startServer(): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SERVE, '--port', '0', '--no-build'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /http:\/\/127\.0\.0\.1:\d+\//.exec(out);
      if (m) resolve({ child, url: m[0] });
    });
    child.stderr!.on('data', (d) => (out += d));
    child.on('exit', (code) => reject(new Error(`the app server exited (${code}): ${out}`)));
  });
}

function runCli(args: readonly string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stderr }));
  });
}

/** Opens the app with downloads going to `downloads`, chooses the files and clicks merge. */
async function mergeInApp(baseFiles: readonly string[], adapterFiles: readonly string[], downloads: string): Promise<Page> {
  const page = await browser.newPage();
  const cdp = await page.createCDPSession();
  await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads });
  await page.goto(url);
  const base = (await page.$('[data-testid="base-files"]')) as ElementHandle<HTMLInputElement>;
  await base.uploadFile(...baseFiles);
  const adapter = (await page.$('[data-testid="adapter-files"]')) as ElementHandle<HTMLInputElement>;
  await adapter.uploadFile(...adapterFiles);
  await page.click('[data-testid="merge"]');
  await page.waitForFunction(() => {
    const status = document.querySelector('[data-testid="status"]')!.textContent ?? '';
    return /verified$/.test(status) || status === 'failed';
  }, { timeout: 120_000 });
  return page;
}

/** Waits until `name` is fully downloaded into `dir` (Chromium writes a .crdownload first). */
async function downloaded(dir: string, name: string): Promise<Uint8Array> {
  for (let i = 0; i < 300; i++) {
    const names = await readdir(dir);
    if (names.includes(name) && !names.some((n) => n.endsWith('.crdownload'))) return new Uint8Array(await readFile(join(dir, name)));
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} was not downloaded into ${dir} (there: ${(await readdir(dir)).join(', ')})`);
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'lorafuse-app-'));
  ({ child: server, url } = await startServer());
  browser = await puppeteer.launch({ executablePath: findChromium().path, headless: true, args: [...CHROMIUM_WEBGPU_ARGS, '--use-webgpu-adapter=swiftshader'] });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  server?.kill();
  await rm(work, { recursive: true, force: true });
});

describe('the merge app in headless Chromium', () => {
  it('merges on WebGPU, shows findings, plan and proof, and saves the bytes `lorafuse merge --device webgpu` writes', async () => {
    const base = await makeGpt2Checkpoint({ seed: 21, nEmbd: E, vocabSize: V });
    // lm_head is trained: the tie must be settled (untied) and config.json changes.
    const adapter = await makeLoraAdapter({
      seed: 22,
      modules: [...gpt2LoraModules(E, [0, 1], ['attn.c_attn', 'mlp.c_fc'], 4), { module: 'lm_head', inFeatures: E, outFeatures: V, rank: 2 }],
      config: { target_modules: ['c_attn', 'c_fc', 'lm_head'], r: 4, lora_alpha: 8, rank_pattern: { lm_head: 2 } },
    });
    const baseDir = await writeDir(join(work, 'base'), base.files);
    const adapterDir = await writeDir(join(work, 'adapter'), adapter.files);
    const cliOut = join(work, 'cli-out');
    const cli = await runCli(['merge', baseDir, adapterDir, '--out', cliOut, '--device', 'webgpu']);
    expect(cli.code, cli.stderr).toBe(0);

    const downloads = await mkdtemp(join(work, 'downloads-'));
    const page = await mergeInApp(Object.keys(base.files).map((n) => join(baseDir, n)), Object.keys(adapter.files).map((n) => join(adapterDir, n)), downloads);
    const text = (id: string) => page.$eval(`[data-testid="${id}"]`, (el) => el.textContent ?? '');
    expect(await text('error')).toBe('');
    expect(await text('status')).toMatch(/ verified$/);
    const plan = await text('plan');
    expect(plan).toContain('tensors: 5 merged');
    expect(plan).toContain('tie: untie');
    expect(plan).toContain('config.json: tie_word_embeddings');
    expect(await text('proof')).toContain('transformers v4');

    await page.click('[data-testid="download-model"]');
    await page.click('[data-testid="download-config"]');
    const model = await downloaded(downloads, 'model.safetensors');
    const config = await downloaded(downloads, 'config.json');
    expect(Buffer.from(model).equals(await readFile(join(cliOut, 'model.safetensors')))).toBe(true);
    expect(Buffer.from(config).equals(await readFile(join(cliOut, 'config.json')))).toBe(true);
    await page.close();
  }, 240_000);

  it('shows the CLI\'s message for a bad adapter, and offers nothing', async () => {
    const base = await makeGpt2Checkpoint({ seed: 23, nEmbd: E, vocabSize: V });
    const adapter = await makeLoraAdapter({ seed: 24, modules: gpt2LoraModules(E, [0], ['attn.c_attn'], 2), config: { target_modules: ['c_attn'], r: 0, lora_alpha: 4 } });
    const baseDir = await writeDir(join(work, 'bad-base'), base.files);
    const adapterDir = await writeDir(join(work, 'bad-adapter'), adapter.files);
    const cli = await runCli(['merge', baseDir, adapterDir, '--out', join(work, 'bad-out'), '--device', 'cpu']);
    expect(cli.code).toBe(2);
    expect(existsSync(join(work, 'bad-out'))).toBe(false);

    const downloads = await mkdtemp(join(work, 'downloads-'));
    const page = await mergeInApp(Object.keys(base.files).map((n) => join(baseDir, n)), Object.keys(adapter.files).map((n) => join(adapterDir, n)), downloads);
    const error = await page.$eval('[data-testid="error"]', (el) => el.textContent ?? '');
    expect(await page.$eval('[data-testid="status"]', (el) => el.textContent)).toBe('failed');
    // The same message as the CLI's, the picked file named where the CLI names the path.
    const cliMessage = /lorafuse: (?:error: )?(.*)/.exec(cli.stderr)![1]!.replaceAll(`${adapterDir}/`, 'adapter/');
    expect(error.split('\n')[0]).toBe(cliMessage);
    expect(error).toContain('"r"');
    expect(await page.$eval('[data-testid="download-model"]', (el) => (el as HTMLElement).hidden)).toBe(true);
    await page.close();
  }, 120_000);
});
