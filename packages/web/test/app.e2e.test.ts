/**
 * The merge app end to end: its server started as `npm run app` starts it, real headless Chromium
 * (WebGPU on SwiftShader, as the CLI's webgpu device runs), files chosen through the file choosers,
 * the merge run and proven in the page, and the downloaded model.safetensors and config.json
 * compared byte for byte with `lorafuse merge --device webgpu` on the same inputs. The chosen-directory
 * output is driven through an origin-private directory handed out as the picker's choice: the files
 * written there must be the CLI's, and a write that fails midway must leave nothing there. The picture
 * of ΔW is drawn (a heatmap that changes with the tensor picked, the wheel and a drag) and its
 * per-layer norms equal ‖s·B·A‖_F computed on the CPU from the adapter file. Bad inputs show the CLI's
 * message in the page.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer, { type Browser, type ElementHandle, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memorySource, readSafetensorsHeader } from '@lorafuse/core';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter, safetensorsBytes, torchSaveBytes, type FixtureTensor } from '@lorafuse/core/testing';
import { CHROMIUM_WEBGPU_ARGS, findChromium } from '@lorafuse/runner';
import { startAppServer } from '../scripts/start-app-server.mjs';

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

function runCli(args: readonly string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stderr }));
  });
}

/** An output directory for the app: a directory of the origin-private file system, given by a stubbed `showDirectoryPicker`. */
interface PickedOutput {
  readonly dir: string;
  /** Writes ending past this many bytes of a file fail as a full disk fails them. */
  readonly failAfterBytes?: number;
}

/**
 * Makes `window.showDirectoryPicker` answer with the origin-private directory `dir` (created), or a
 * wrapper of it whose files' writes fail past `failAfterBytes`, as a full disk would fail them.
 */
async function stubDirectoryPicker(page: Page, output: PickedOutput): Promise<void> {
  await page.evaluateOnNewDocument((dirName: string, failAfter: number | null) => {
    (window as unknown as { showDirectoryPicker: () => Promise<unknown> }).showDirectoryPicker = async () => {
      const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle(dirName, { create: true });
      if (failAfter === null) return dir;
      return {
        kind: 'directory',
        name: dir.name,
        removeEntry: (name: string) => dir.removeEntry(name),
        getFileHandle: async (name: string, options?: FileSystemGetFileOptions) => {
          const file = await dir.getFileHandle(name, options);
          return {
            kind: 'file',
            name: file.name,
            getFile: () => file.getFile(),
            createWritable: async (o?: FileSystemCreateWritableOptions) => {
              const w = await file.createWritable(o);
              return {
                write: async (arg: { type: 'write'; position: number; data: Uint8Array | Blob }) => {
                  // Copied tensors arrive as Blobs (slices of the picked file), merged ones as bytes.
                  const length = arg.data instanceof Blob ? arg.data.size : arg.data.byteLength;
                  if (arg.position + length > failAfter) throw new DOMException('the quota is exceeded', 'QuotaExceededError');
                  await w.write(arg as WriteParams);
                },
                close: () => w.close(),
                abort: () => w.abort(),
              };
            },
          };
        },
      };
    };
  }, output.dir, output.failAfterBytes ?? null);
}

/** The names in the origin-private directory `dir`, and the bytes of each file there. */
async function opfsFiles(page: Page, dir: string): Promise<Record<string, Uint8Array>> {
  const files = await page.evaluate(async (dirName: string) => {
    const handle = await (await navigator.storage.getDirectory()).getDirectoryHandle(dirName);
    const out: Record<string, number[]> = {};
    for await (const [name, entry] of (handle as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries()) {
      out[name] = entry.kind === 'file' ? Array.from(new Uint8Array(await (await (entry as FileSystemFileHandle).getFile()).arrayBuffer())) : [];
    }
    return out;
  }, dir);
  return Object.fromEntries(Object.entries(files).map(([name, bytes]) => [name, new Uint8Array(bytes)]));
}

/** More of what a merge in the app can be given: adapters after the first, each adapter's weight, the plan options. */
interface AppChoices {
  readonly moreAdapters?: readonly (readonly string[])[];
  /** As typed into the fields (a string may be what a person mistypes). */
  readonly weights?: readonly (number | string)[];
  readonly tie?: 'auto' | 'untie' | 'keep';
  readonly padTokenId?: number | string;
  readonly allowNonFinite?: boolean;
}

/** Opens the app with downloads going to `downloads` (or its output directory `output` chosen), chooses the files and clicks merge. */
async function mergeInApp(baseFiles: readonly string[], adapterFiles: readonly string[], downloads: string, output?: PickedOutput, choices: AppChoices = {}): Promise<Page> {
  const page = await browser.newPage();
  const cdp = await page.createCDPSession();
  await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads });
  if (output) await stubDirectoryPicker(page, output);
  await page.goto(url);
  if (output) {
    await page.click('[data-testid="choose-output"]');
    await page.waitForFunction((name: string) => document.querySelector('[data-testid="output-dir"]')!.textContent!.includes(name), {}, output.dir);
  }
  const base = (await page.$('[data-testid="base-files"]')) as ElementHandle<HTMLInputElement>;
  await base.uploadFile(...baseFiles);
  const adapter = (await page.$('[data-testid="adapter-files"]')) as ElementHandle<HTMLInputElement>;
  await adapter.uploadFile(...adapterFiles);
  for (const [i, files] of (choices.moreAdapters ?? []).entries()) {
    await page.click('[data-testid="add-adapter"]');
    const more = (await page.waitForSelector(`[data-testid="adapter-files-${i + 2}"]`)) as ElementHandle<HTMLInputElement>;
    await more.uploadFile(...files);
  }
  // Typed as a person types (a number field keeps text that does not parse as its bad input).
  const typeInto = async (testId: string, value: number | string) => {
    await page.$eval(`[data-testid="${testId}"]`, (el) => ((el as HTMLInputElement).value = ''));
    await page.type(`[data-testid="${testId}"]`, String(value));
  };
  for (const [i, w] of (choices.weights ?? []).entries()) await typeInto(i === 0 ? 'adapter-weight' : `adapter-weight-${i + 1}`, w);
  if (choices.tie) await page.select('[data-testid="tie"]', choices.tie);
  if (choices.allowNonFinite) {
    await page.$eval('[data-testid="options"]', (el) => ((el as HTMLDetailsElement).open = true));
    await page.click('[data-testid="allow-nonfinite"]');
  }
  if (choices.padTokenId !== undefined) {
    await page.$eval('[data-testid="options"]', (el) => ((el as HTMLDetailsElement).open = true)); // a person opens the options to reach the field
    await typeInto('pad-token-id', choices.padTokenId);
  }
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

/**
 * ‖s·B·A‖_F of each LoRA module in an adapter_model.safetensors (F32), in f64, keyed by the merged
 * tensor (`<module>.weight`); `scaleOf` gives s per module.
 */
async function cpuDeltaNorms(file: string, scaleOf: (module: string) => number): Promise<Map<string, number>> {
  const header = await readSafetensorsHeader(memorySource(file, new Uint8Array(await readFile(file))));
  const bytes = await readFile(file);
  const values = (name: string) => {
    const t = header.byName.get(name)!;
    return { shape: t.shape, v: new Float32Array(bytes.buffer.slice(bytes.byteOffset + t.fileOffset, bytes.byteOffset + t.fileOffset + t.byteLength)) };
  };
  const norms = new Map<string, number>();
  for (const name of header.byName.keys()) {
    const m = /^base_model\.model\.(.+)\.lora_A\.weight$/.exec(name);
    if (!m) continue;
    const a = values(name);
    const b = values(`base_model.model.${m[1]}.lora_B.weight`);
    const [rank, cols] = a.shape as [number, number];
    const rows = b.shape[0]!;
    const s = scaleOf(m[1]!);
    let sum = 0;
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        let d = 0;
        for (let k = 0; k < rank; k++) d += b.v[i * rank + k]! * a.v[k * cols + j]!;
        sum += (s * d) ** 2;
      }
    }
    norms.set(`${m[1]}.weight`, Math.sqrt(sum));
  }
  return norms;
}

/** The ΔW heatmap's pixels as the page shows them: RGBA of the canvas, via toDataURL. */
async function heatmapPixels(page: Page): Promise<{ colours: number; digest: string }> {
  return page.evaluate(async () => {
    const canvas = document.querySelector<HTMLCanvasElement>('[data-testid="delta-view"]')!;
    const img = new Image();
    img.src = canvas.toDataURL();
    await img.decode();
    const copy = Object.assign(document.createElement('canvas'), { width: canvas.width, height: canvas.height });
    const ctx = copy.getContext('2d')!;
    ctx.drawImage(img, 0, 0);
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    const seen = new Set<number>();
    for (let i = 0; i < data.length; i += 4) seen.add((data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!);
    const digest = await crypto.subtle.digest('SHA-256', data);
    return { colours: seen.size, digest: Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('') };
  });
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'lorafuse-app-'));
  ({ child: server, url } = await startAppServer());
  browser = await puppeteer.launch({ executablePath: findChromium().path, headless: true, args: [...CHROMIUM_WEBGPU_ARGS, '--use-webgpu-adapter=swiftshader'] });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  server?.kill();
  await rm(work, { recursive: true, force: true });
});

/** The picked files and the CLI's output of the case whose lm_head is trained (made once, for the tests that share it). */
interface UntiedCase {
  readonly baseFiles: string[];
  readonly adapterFiles: string[];
  readonly adapterDir: string;
  readonly cliOut: string;
}
let untied: Promise<UntiedCase> | undefined;
function untiedCase(): Promise<UntiedCase> {
  untied ??= (async () => {
    const base = await makeGpt2Checkpoint({ seed: 21, nEmbd: E, vocabSize: V });
    // lm_head is trained: the tie must be settled (untied) and config.json changes.
    const adapter = await makeLoraAdapter({
      seed: 22,
      modules: [...gpt2LoraModules(E, [0, 1], ['attn.c_attn', 'mlp.c_fc'], 4), { module: 'lm_head', inFeatures: E, outFeatures: V, rank: 2 }],
      config: { target_modules: ['c_attn', 'c_fc', 'lm_head'], r: 4, lora_alpha: 8, rank_pattern: { lm_head: 2 } },
    });
    // A tokenizer beside the weights: the output carries it, as `lorafuse merge` copies it.
    const tokenizer = { 'tokenizer.json': new TextEncoder().encode('{"version": "1.0", "model": {"type": "BPE"}}\n'), 'tokenizer_config.json': new TextEncoder().encode('{"model_max_length": 64}\n') };
    const baseDir = await writeDir(join(work, 'base'), { ...base.files, ...tokenizer });
    const adapterDir = await writeDir(join(work, 'adapter'), adapter.files);
    const cliOut = join(work, 'cli-out');
    const cli = await runCli(['merge', baseDir, adapterDir, '--out', cliOut, '--device', 'webgpu']);
    expect(cli.code, cli.stderr).toBe(0);
    return { baseFiles: [...Object.keys(base.files), ...Object.keys(tokenizer)].map((n) => join(baseDir, n)), adapterFiles: Object.keys(adapter.files).map((n) => join(adapterDir, n)), adapterDir, cliOut };
  })();
  return untied;
}

describe('the merge app in headless Chromium', () => {
  it('merges several adapters with their weights and the chosen options, as `lorafuse merge --weights ... --tie ... --pad-token-id ...` does', async () => {
    const base = await makeGpt2Checkpoint({ seed: 31, nEmbd: E, vocabSize: V });
    const first = await makeLoraAdapter({ seed: 32, modules: gpt2LoraModules(E, [0, 1], ['attn.c_attn'], 4), config: { target_modules: ['c_attn'], r: 4, lora_alpha: 8 } });
    const second = await makeLoraAdapter({ seed: 33, modules: gpt2LoraModules(E, [1], ['attn.c_attn', 'mlp.c_proj'], 2), config: { target_modules: ['c_attn', 'c_proj'], r: 2, lora_alpha: 2 } });
    const baseDir = await writeDir(join(work, 'multi-base'), base.files);
    const firstDir = await writeDir(join(work, 'multi-a1'), first.files);
    const secondDir = await writeDir(join(work, 'multi-a2'), second.files);
    const cliOut = join(work, 'multi-cli-out');
    const cli = await runCli(['merge', baseDir, firstDir, secondDir, '--weights', '1,-0.5', '--tie', 'untie', '--pad-token-id', '7', '--out', cliOut, '--device', 'webgpu']);
    expect(cli.code, cli.stderr).toBe(0);
    const downloads = await mkdtemp(join(work, 'downloads-'));
    const filesIn = (dir: string, files: Record<string, unknown>) => Object.keys(files).map((n) => join(dir, n));
    const page = await mergeInApp(filesIn(baseDir, base.files), filesIn(firstDir, first.files), downloads, undefined, { moreAdapters: [filesIn(secondDir, second.files)], weights: [1, -0.5], tie: 'untie', padTokenId: 7 });
    const text = (id: string) => page.$eval(`[data-testid="${id}"]`, (el) => el.textContent ?? '');
    expect(await text('error')).toBe('');
    expect(await text('status')).toMatch(/ verified$/);
    expect(await text('plan')).toContain('tie: untie');
    await page.click('[data-testid="download-model"]');
    await page.click('[data-testid="download-config"]');
    expect(Buffer.from(await downloaded(downloads, 'model.safetensors')).equals(await readFile(join(cliOut, 'model.safetensors')))).toBe(true);
    const config = await downloaded(downloads, 'config.json');
    expect(Buffer.from(config).equals(await readFile(join(cliOut, 'config.json')))).toBe(true);
    expect(JSON.parse(new TextDecoder().decode(config))).toMatchObject({ pad_token_id: 7, tie_word_embeddings: false });
    await page.close();
  }, 180_000);

  it.each([
    // '1e' does not parse: the field reads '' and must not count as the default weight 1.
    { what: 'a weight that does not parse', choices: { weights: [1, '1e'] }, message: 'the weight of adapter 2 must be a number', hint: 'Example: 1, 0.5 or -1 (a negative weight subtracts the adapter).' },
    { what: 'a pad token id that is not a token id', choices: { padTokenId: '-1' }, message: '--pad-token-id must be a non-negative integer token id, got "-1"', hint: 'Example: 50256 (GPT-2\'s <|endoftext|>).' },
    { what: 'a pad token id that does not parse', choices: { padTokenId: '7e' }, message: '--pad-token-id must be a non-negative integer token id', hint: 'Example: 50256 (GPT-2\'s <|endoftext|>).' },
  ])('refuses $what with a message naming the field, and merges nothing', async ({ choices, message, hint }) => {
    const base = await makeGpt2Checkpoint({ seed: 34, nEmbd: E, vocabSize: V });
    const adapter = await makeLoraAdapter({ seed: 35, modules: gpt2LoraModules(E, [0], ['attn.c_attn'], 2), config: { target_modules: ['c_attn'], r: 2, lora_alpha: 4 } });
    const baseDir = await writeDir(await mkdtemp(join(work, 'usage-base-')), base.files);
    const adapterDir = await writeDir(await mkdtemp(join(work, 'usage-adapter-')), adapter.files);
    const adapterFiles = Object.keys(adapter.files).map((n) => join(adapterDir, n));
    const downloads = await mkdtemp(join(work, 'downloads-'));
    const secondDir = await writeDir(await mkdtemp(join(work, 'usage-adapter-')), adapter.files);
    const more = 'weights' in choices ? { moreAdapters: [Object.keys(adapter.files).map((n) => join(secondDir, n))] } : {};
    const page = await mergeInApp(Object.keys(base.files).map((n) => join(baseDir, n)), adapterFiles, downloads, undefined, { ...more, ...choices });
    expect(await page.$eval('[data-testid="status"]', (el) => el.textContent)).toBe('failed');
    expect((await page.$eval('[data-testid="error"]', (el) => el.textContent ?? '')).split('\n')).toEqual([message, hint]);
    expect(await page.$eval('[data-testid="download-model"]', (el) => (el as HTMLElement).hidden)).toBe(true);
    expect(await page.$eval('[data-testid="plan"]', (el) => el.textContent ?? '')).toBe('');
    await page.close();
  }, 120_000);

  it('an F16 merge that overflows once rounded: refused with the CLI\'s message, and with --allow-nonfinite ticked the bytes `lorafuse merge --allow-nonfinite` writes', async () => {
    const base = await makeGpt2Checkpoint({ seed: 36, nEmbd: E, vocabSize: V, dtype: 'F16' });
    // alpha / r makes |ΔW| ~ 1e6: finite in f32, beyond F16's 65504.
    const adapter = await makeLoraAdapter({ seed: 37, modules: gpt2LoraModules(E, [0], ['attn.c_attn'], 4), config: { target_modules: ['c_attn'], r: 4, lora_alpha: 4e6 } });
    const baseDir = await writeDir(await mkdtemp(join(work, 'inf-base-')), base.files);
    const adapterDir = await writeDir(await mkdtemp(join(work, 'inf-adapter-')), adapter.files);
    const baseFiles = Object.keys(base.files).map((n) => join(baseDir, n));
    const adapterFiles = Object.keys(adapter.files).map((n) => join(adapterDir, n));
    const refused = await runCli(['merge', baseDir, adapterDir, '--out', join(work, 'inf-refused'), '--device', 'webgpu']);
    expect(refused.code).toBe(2);
    let page = await mergeInApp(baseFiles, adapterFiles, await mkdtemp(join(work, 'downloads-')));
    expect(await page.$eval('[data-testid="status"]', (el) => el.textContent)).toBe('failed');
    const error = await page.$eval('[data-testid="error"]', (el) => el.textContent ?? '');
    // The CLI's message, the picked directory named where the CLI names its path.
    expect(error.split('\n')[0]).toBe(/lorafuse: (?:error: )?(.*)/.exec(refused.stderr.replaceAll(adapterDir, 'adapter').split('\n')[0]!)![1]);
    expect(error).toMatch(/transformer\.h\.0\.attn\.c_attn\.weight.*NaN\/Inf value\(s\) once rounded to F16/);
    expect(error).toContain('--allow-nonfinite');
    await page.close();

    const cliOut = join(work, 'inf-cli-out');
    const cli = await runCli(['merge', baseDir, adapterDir, '--out', cliOut, '--device', 'webgpu', '--allow-nonfinite']);
    expect(cli.code, cli.stderr).toBe(0);
    const downloads = await mkdtemp(join(work, 'downloads-'));
    page = await mergeInApp(baseFiles, adapterFiles, downloads, undefined, { allowNonFinite: true });
    expect(await page.$eval('[data-testid="error"]', (el) => el.textContent)).toBe('');
    expect(await page.$eval('[data-testid="status"]', (el) => el.textContent)).toMatch(/ verified$/);
    await page.click('[data-testid="download-model"]');
    expect(Buffer.from(await downloaded(downloads, 'model.safetensors')).equals(await readFile(join(cliOut, 'model.safetensors')))).toBe(true);
    await page.close();
  }, 180_000);

  it('merges on WebGPU, shows findings, plan and proof, and saves the bytes `lorafuse merge --device webgpu` writes', async () => {
    const { baseFiles, adapterFiles, adapterDir, cliOut } = await untiedCase();
    const downloads = await mkdtemp(join(work, 'downloads-'));
    const page = await mergeInApp(baseFiles, adapterFiles, downloads);
    const text = (id: string) => page.$eval(`[data-testid="${id}"]`, (el) => el.textContent ?? '');
    expect(await text('error')).toBe('');
    expect(await text('status')).toMatch(/ verified$/);
    const plan = await text('plan');
    expect(plan).toContain('tensors: 5 merged');
    expect(plan).toContain('tie: untie');
    expect(plan).toContain('config.json: tie_word_embeddings');
    expect(await text('proof')).toContain('transformers v4');

    // The picture of ΔW: a heatmap per merged tensor, and ‖ΔW‖_F per layer and module.
    await page.waitForSelector('[data-testid="delta-view"][data-draws]', { timeout: 60_000 });
    const merged = ['transformer.h.0.attn.c_attn.weight', 'transformer.h.0.mlp.c_fc.weight', 'transformer.h.1.attn.c_attn.weight', 'transformer.h.1.mlp.c_fc.weight', 'lm_head.weight'];
    const options = await page.$$eval('[data-testid="delta-tensor"] option', (os) => os.map((o) => (o as HTMLOptionElement).value));
    expect(options).toEqual(merged);
    const first = await heatmapPixels(page);
    expect(first.colours).toBeGreaterThan(20); // a picture of random factors, not a blank or flat canvas
    const drawsBefore = Number(await page.$eval('[data-testid="delta-view"]', (el) => (el as HTMLElement).dataset['draws']));
    await page.select('[data-testid="delta-tensor"]', 'lm_head.weight');
    await page.waitForFunction((n) => {
      const el = document.querySelector<HTMLElement>('[data-testid="delta-view"]')!;
      return el.dataset['tensor'] === 'lm_head.weight' && Number(el.dataset['draws']) > n;
    }, { timeout: 30_000 }, drawsBefore);
    const second = await heatmapPixels(page);
    expect(second.colours).toBeGreaterThan(20);
    expect(second.digest).not.toBe(first.digest);
    expect(await text('delta-caption')).toContain('lm_head.weight: ΔW [50 × 16]');
    // Wheel zooms about the pointer, a drag pans; each redraws a different picture.
    await page.$eval('[data-testid="delta-view"]', (el) => el.scrollIntoView({ block: 'center' }));
    const box = (await (await page.$('[data-testid="delta-view"]'))!.boundingBox())!;
    const drawn = () => page.$eval('[data-testid="delta-view"]', (el) => Number((el as HTMLElement).dataset['draws']));
    const redrawn = (n: number) => page.waitForFunction((m) => Number(document.querySelector<HTMLElement>('[data-testid="delta-view"]')!.dataset['draws']) > m, { timeout: 30_000 }, n);
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    let n = await drawn();
    await page.mouse.wheel({ deltaY: -600 });
    await redrawn(n);
    expect(Number(await page.$eval('[data-testid="delta-view"]', (el) => (el as HTMLElement).dataset['zoom']))).toBeGreaterThan(2);
    const zoomed = await heatmapPixels(page);
    expect(zoomed.digest).not.toBe(second.digest);
    expect(await text('delta-hover')).toMatch(/^row \d+, column \d+: max \|ΔW\| = \d/);
    n = await drawn();
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 2 + 120, box.y + box.height / 2 + 40, { steps: 4 });
    await page.mouse.up();
    await redrawn(n);
    expect((await heatmapPixels(page)).digest).not.toBe(zoomed.digest);

    const bars = await page.$$eval('[data-testid="layer-norms"] rect[data-tensor]', (rs) => rs.map((r) => [r.getAttribute('data-tensor')!, Number(r.getAttribute('data-norm'))] as const));
    const cpu = await cpuDeltaNorms(join(adapterDir, 'adapter_model.safetensors'), (module) => (module === 'lm_head' ? 8 / 2 : 8 / 4));
    expect(bars.map(([t]) => t).sort()).toEqual([...cpu.keys()].sort());
    for (const [tensor, norm] of bars) {
      // f32 ΔW elements and f32 block sums of squares, summed in f64: a few f32 roundings relative.
      expect(Math.abs(norm - cpu.get(tensor)!), tensor).toBeLessThanOrEqual(1e-5 * cpu.get(tensor)!);
    }

    await page.click('[data-testid="download-model"]');
    await page.click('[data-testid="download-config"]');
    const model = await downloaded(downloads, 'model.safetensors');
    const config = await downloaded(downloads, 'config.json');
    expect(Buffer.from(model).equals(await readFile(join(cliOut, 'model.safetensors')))).toBe(true);
    expect(Buffer.from(config).equals(await readFile(join(cliOut, 'config.json')))).toBe(true);
    // The base's other files, one link each: the files the CLI copied, byte for byte.
    const carried = (await readdir(cliOut)).filter((n) => n !== 'model.safetensors' && n !== 'config.json').sort();
    expect(carried).toEqual(expect.arrayContaining(['generation_config.json', 'tokenizer.json', 'tokenizer_config.json']));
    expect(await page.$$eval('[data-testid="download-carried"] a', (as) => as.map((a) => (a as HTMLAnchorElement).download).sort())).toEqual(carried);
    for (const name of carried) {
      await page.click(`[data-testid="download-carried"] a[download="${name}"]`);
      expect(Buffer.from(await downloaded(downloads, name)).equals(await readFile(join(cliOut, name))), name).toBe(true);
    }
    await page.close();
  }, 240_000);

  it('writes model.safetensors, config.json and the carried files into a chosen directory: the files the CLI writes, and no download offered', async () => {
    const { baseFiles, adapterFiles, cliOut } = await untiedCase();
    const downloads = await mkdtemp(join(work, 'downloads-'));
    const page = await mergeInApp(baseFiles, adapterFiles, downloads, { dir: 'out-chosen' });
    expect(await page.$eval('[data-testid="error"]', (el) => el.textContent)).toBe('');
    expect(await page.$eval('[data-testid="status"]', (el) => el.textContent)).toMatch(/ into out-chosen\/; .* verified$/);
    const files = await opfsFiles(page, 'out-chosen');
    // What the CLI writes, every file of it (the base's tokenizer and generation config carried).
    expect(Object.keys(files).sort()).toEqual((await readdir(cliOut)).sort());
    for (const name of Object.keys(files)) expect(Buffer.from(files[name]!).equals(await readFile(join(cliOut, name))), name).toBe(true);
    expect(await page.$eval('[data-testid="download-model"]', (el) => (el as HTMLElement).hidden)).toBe(true);
    expect(await readdir(downloads)).toEqual([]);
    await page.close();
  }, 240_000);

  it('leaves nothing in the chosen directory when a write fails midway, and says why', async () => {
    const { baseFiles, adapterFiles, cliOut } = await untiedCase();
    const size = (await readFile(join(cliOut, 'model.safetensors'))).byteLength;
    const page = await mergeInApp(baseFiles, adapterFiles, await mkdtemp(join(work, 'downloads-')), { dir: 'out-full', failAfterBytes: Math.floor(size / 2) });
    expect(await page.$eval('[data-testid="status"]', (el) => el.textContent)).toBe('failed');
    const error = await page.$eval('[data-testid="error"]', (el) => el.textContent ?? '');
    expect(error.split('\n')[0]).toBe('no space left writing out-full/model.safetensors');
    expect(error).toContain('nothing was left there');
    expect(await opfsFiles(page, 'out-full')).toEqual({});
    await page.close();
  }, 240_000);

  it('refuses a chosen directory that already holds model.safetensors or a carried file, and leaves them as they were', async () => {
    const { baseFiles, adapterFiles } = await untiedCase();
    const page = await browser.newPage();
    await page.goto(url);
    const earlier = [1, 2, 3, 4];
    await page.evaluate(async (bytes: number[]) => {
      const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('out-taken', { create: true });
      for (const name of ['model.safetensors', 'tokenizer.json']) {
        const w = await (await dir.getFileHandle(name, { create: true })).createWritable();
        await w.write(new Uint8Array(bytes));
        await w.close();
      }
    }, earlier);
    await page.close();
    const merged = await mergeInApp(baseFiles, adapterFiles, await mkdtemp(join(work, 'downloads-')), { dir: 'out-taken' });
    expect(await merged.$eval('[data-testid="status"]', (el) => el.textContent)).toBe('failed');
    const error = await merged.$eval('[data-testid="error"]', (el) => el.textContent ?? '');
    // A carried file counts too: the app never replaces files.
    expect(error.split('\n')[0]).toBe('output directory out-taken already holds model.safetensors and tokenizer.json');
    expect(await opfsFiles(merged, 'out-taken')).toEqual({ 'model.safetensors': new Uint8Array(earlier), 'tokenizer.json': new Uint8Array(earlier) });
    await merged.close();
  }, 240_000);

  it('merges torch.save inputs (pytorch_model.bin, adapter_model.bin) into the bytes the CLI writes from them', async () => {
    const base = await makeGpt2Checkpoint({ seed: 27, nEmbd: E, vocabSize: V });
    const adapter = await makeLoraAdapter({ seed: 28, modules: gpt2LoraModules(E, [0, 1], ['attn.c_attn'], 2), config: { target_modules: ['c_attn'], r: 2, lora_alpha: 4 } });
    const baseDir = await writeDir(join(work, 'bin-base'), { 'config.json': base.files['config.json']!, 'pytorch_model.bin': torchSaveBytes(base.tensors, { archive: 'pytorch_model' }) });
    const adapterDir = await writeDir(join(work, 'bin-adapter'), { 'adapter_config.json': adapter.files['adapter_config.json']!, 'adapter_model.bin': torchSaveBytes(adapter.tensors, { archive: 'adapter_model' }) });
    const cliOut = join(work, 'bin-cli-out');
    const cli = await runCli(['merge', baseDir, adapterDir, '--out', cliOut, '--device', 'webgpu']);
    expect(cli.code, cli.stderr).toBe(0);
    const downloads = await mkdtemp(join(work, 'downloads-'));
    const page = await mergeInApp(['config.json', 'pytorch_model.bin'].map((n) => join(baseDir, n)), ['adapter_config.json', 'adapter_model.bin'].map((n) => join(adapterDir, n)), downloads);
    expect(await page.$eval('[data-testid="error"]', (el) => el.textContent)).toBe('');
    expect(await page.$eval('[data-testid="status"]', (el) => el.textContent)).toMatch(/ verified$/);
    await page.click('[data-testid="download-model"]');
    expect(Buffer.from(await downloaded(downloads, 'model.safetensors')).equals(await readFile(join(cliOut, 'model.safetensors')))).toBe(true);
    // The .bin files are weights, never carried into the output.
    expect(await page.$$eval('[data-testid="download-carried"] a', (as) => as.length)).toBe(0);
    await page.close();
  }, 240_000);

  const shardedFormats = [
    { index: 'model.safetensors.index.json', shard: (i: number) => `model-0000${i}-of-00002.safetensors`, bytes: (ts: readonly FixtureTensor[], _name: string) => safetensorsBytes(ts) },
    { index: 'pytorch_model.bin.index.json', shard: (i: number) => `pytorch_model-0000${i}-of-00002.bin`, bytes: async (ts: readonly FixtureTensor[], name: string) => torchSaveBytes(ts, { archive: name.replace(/\.bin$/, '') }) },
  ];
  it.each(shardedFormats)('merges a sharded base ($index and its shards) into the bytes the CLI writes from it', async ({ index, shard, bytes }) => {
    const base = await makeGpt2Checkpoint({ seed: 25, nEmbd: E, vocabSize: V });
    const adapter = await makeLoraAdapter({ seed: 26, modules: gpt2LoraModules(E, [0, 1], ['attn.c_attn', 'attn.c_proj'], 2), config: { target_modules: ['c_attn', 'c_proj'], r: 2, lora_alpha: 4 } });
    const half = Math.ceil(base.tensors.length / 2);
    const shards = [base.tensors.slice(0, half), base.tensors.slice(half)];
    const names = [shard(1), shard(2)];
    const weightMap = Object.fromEntries(shards.flatMap((ts, i) => ts.map((t) => [t.name, names[i]!])));
    const baseDir = await writeDir(await mkdtemp(join(work, 'sharded-base-')), {
      'config.json': base.files['config.json']!,
      [names[0]!]: await bytes(shards[0]!, names[0]!),
      [names[1]!]: await bytes(shards[1]!, names[1]!),
      [index]: JSON.stringify({ metadata: {}, weight_map: weightMap }),
    });
    const adapterDir = await writeDir(await mkdtemp(join(work, 'sharded-adapter-')), adapter.files);
    const cliOut = join(await mkdtemp(join(work, 'sharded-cli-')), 'out');
    const cli = await runCli(['merge', baseDir, adapterDir, '--out', cliOut, '--device', 'webgpu']);
    expect(cli.code, cli.stderr).toBe(0);

    const downloads = await mkdtemp(join(work, 'downloads-'));
    const page = await mergeInApp([...names, 'config.json', index].map((n) => join(baseDir, n)), Object.keys(adapter.files).map((n) => join(adapterDir, n)), downloads);
    expect(await page.$eval('[data-testid="error"]', (el) => el.textContent)).toBe('');
    expect(await page.$eval('[data-testid="status"]', (el) => el.textContent)).toMatch(/ verified$/);
    await page.click('[data-testid="download-model"]');
    await page.click('[data-testid="download-config"]');
    expect(Buffer.from(await downloaded(downloads, 'model.safetensors')).equals(await readFile(join(cliOut, 'model.safetensors')))).toBe(true);
    expect(Buffer.from(await downloaded(downloads, 'config.json')).equals(await readFile(join(cliOut, 'config.json')))).toBe(true);
    // Neither the index nor the shards are carried into the output.
    expect(await page.$$eval('[data-testid="download-carried"] a', (as) => as.length)).toBe(0);
    await page.close();
  }, 240_000);

  const badAdapters = [
    { what: 'r: 0 in adapter_config.json', modules: gpt2LoraModules(E, [0], ['attn.c_attn'], 2), config: { target_modules: ['c_attn'], r: 0, lora_alpha: 4 }, mentions: '"r"' },
    { what: 'a lora_A of the wrong shape', modules: [{ module: 'transformer.h.0.attn.c_attn', inFeatures: E + 1, outFeatures: 3 * E, rank: 2 }], config: { target_modules: ['c_attn'], r: 2, lora_alpha: 4 }, mentions: 'lora_A' },
  ];
  it.each(badAdapters)('shows the CLI\'s message and hint for $what, and offers nothing', async ({ modules, config, mentions }) => {
    const base = await makeGpt2Checkpoint({ seed: 23, nEmbd: E, vocabSize: V });
    const adapter = await makeLoraAdapter({ seed: 24, modules, config });
    const baseDir = await writeDir(await mkdtemp(join(work, 'bad-base-')), base.files);
    const adapterDir = await writeDir(await mkdtemp(join(work, 'bad-adapter-')), adapter.files);
    const out = join(work, `bad-out-${mentions}`);
    const cli = await runCli(['merge', baseDir, adapterDir, '--out', out, '--device', 'cpu']);
    expect(cli.code).toBe(2);
    expect(existsSync(out)).toBe(false);

    const downloads = await mkdtemp(join(work, 'downloads-'));
    const page = await mergeInApp(Object.keys(base.files).map((n) => join(baseDir, n)), Object.keys(adapter.files).map((n) => join(adapterDir, n)), downloads);
    const error = await page.$eval('[data-testid="error"]', (el) => el.textContent ?? '');
    expect(await page.$eval('[data-testid="status"]', (el) => el.textContent)).toBe('failed');
    // The CLI's message and hint, the picked directories named where the CLI names their paths.
    const [message, hint] = cli.stderr.replaceAll(adapterDir, 'adapter').replaceAll(baseDir, 'base').split('\n');
    expect(error.split('\n')[0]).toBe(/lorafuse: (?:error: )?(.*)/.exec(message!)![1]);
    expect(hint).toContain('what to do: ');
    expect(error.split('\n')[1]).toBe(hint!.slice(hint!.indexOf('what to do: ') + 'what to do: '.length));
    expect(error).toContain(mentions);
    expect(await page.$eval('[data-testid="download-model"]', (el) => (el as HTMLElement).hidden)).toBe(true);
    expect(await page.$eval('[data-testid="delta-pictures"]', (el) => (el as HTMLElement).hidden)).toBe(true);
    await page.close();
  }, 120_000);
});
