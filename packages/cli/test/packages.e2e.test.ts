/**
 * The publishable packages as a user gets them: `npm pack` of @lorafuse/errors, kernels and core,
 * installed from the tarballs into a scratch project outside the workspace; each README's example
 * typechecked there with only the installed packages (so the types must bring `@webgpu/types`
 * themselves), bundled with esbuild for the browser (so no Node-only code may be reachable) and run:
 * kernels' and core's in headless Chromium, with their numbers checked against the CPU reference.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeGpt2Checkpoint, makeLoraAdapter, gpt2LoraModules } from '@lorafuse/core/testing';
import { loraMergeRef } from '@lorafuse/kernels/reference';
import { startBrowserRunner, type BrowserRunner } from '@lorafuse/runner';
import { tempDir } from './helpers.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const PACKAGES = ['errors', 'kernels', 'core'] as const;
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

let scratch: string;
let runner: BrowserRunner | undefined;

/** The first ```ts block of a package's README, exactly as a user would copy it. */
async function readmeExample(pkg: string): Promise<string> {
  const readme = await readFile(join(ROOT, 'packages', pkg, 'README.md'), 'utf8');
  const match = /```ts\n([\s\S]*?)```/.exec(readme);
  if (!match) throw new Error(`packages/${pkg}/README.md has no \`\`\`ts example`);
  return match[1]!;
}

beforeAll(async () => {
  scratch = await tempDir('lorafuse-packages-');
  const tarballs = join(scratch, 'tarballs');
  await mkdir(tarballs);
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', tarballs, ...PACKAGES.flatMap((p) => ['--workspace', `packages/${p}`])], { cwd: ROOT, maxBuffer: 1 << 26 });
  const packed = (JSON.parse(stdout) as Array<{ filename: string }>).map((p) => join(tarballs, p.filename));
  const app = join(scratch, 'app');
  await mkdir(join(app, 'src'), { recursive: true });
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'scratch-app', private: true, type: 'module' }));
  await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', ...packed], { cwd: app, maxBuffer: 1 << 26 });
  for (const pkg of PACKAGES) await writeFile(join(app, 'src', `${pkg}-example.ts`), await readmeExample(pkg));
  // The page (lorafuse's test runner page, from the workspace) calls the examples on its device.
  await writeFile(
    join(app, 'src', 'page.ts'),
    [
      "import { getDevice, registerPageApi, startPage } from '@lorafuse/runner/page';",
      "import { mergeExample } from './kernels-example.js';",
      "import { planInMemory } from './core-example.js';",
      "import './errors-example.js';",
      'startPage({ requestDevice: (adapter) => adapter.requestDevice() });',
      'const bytes = (b64: string) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));',
      'registerPageApi({',
      '  async examples(f: { baseConfig: string; base: string; adapterConfig: string; adapter: string }) {',
      '    const core = await planInMemory({ config: f.baseConfig, weights: bytes(f.base) }, { config: f.adapterConfig, weights: bytes(f.adapter) });',
      '    return { kernels: await mergeExample(await getDevice()), core };',
      '  },',
      '});',
    ].join('\n'),
  );
  await writeFile(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { target: 'es2022', module: 'esnext', moduleResolution: 'bundler', strict: true, noEmit: true, lib: ['es2022', 'dom'], skipLibCheck: false }, include: ['src/*-example.ts'] }));
}, 240_000);

afterAll(async () => {
  await runner?.close();
  if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
});

describe('the packages as published', () => {
  it('pack with their README and licence, no private flag, no tests or sources', async () => {
    for (const pkg of PACKAGES) {
      const json = JSON.parse(await readFile(join(scratch, 'app', 'node_modules', '@lorafuse', pkg, 'package.json'), 'utf8')) as Record<string, unknown>;
      expect(json['private'], pkg).toBeUndefined();
      expect(json['license'], pkg).toBe('MIT');
      expect(json['sideEffects'], pkg).toBe(false);
      const { stdout } = await run('find', ['.', '-type', 'f'], { cwd: join(scratch, 'app', 'node_modules', '@lorafuse', pkg) });
      const files = stdout.split('\n').filter(Boolean);
      expect(files, pkg).toEqual(expect.arrayContaining(['./README.md', './LICENSE', './package.json', './dist/index.js', './dist/index.d.ts']));
      expect(files.filter((f) => /\.test\.|\/src\//.test(f)), pkg).toEqual([]);
    }
  });

  it("typecheck README's examples against the installed packages alone (GPU types come with them)", async () => {
    const result = await run(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: join(scratch, 'app') }).catch((e: { stdout: string; stderr: string }) => e);
    expect('stdout' in result ? `${result.stdout}${result.stderr}` : '').toBe('');
  }, 120_000);

  it("bundle for the browser from the installed packages, and the examples' numbers match the CPU reference in Chromium", async () => {
    const app = join(scratch, 'app');
    const out = join(app, 'dist', 'page.js');
    const result = await build({
      entryPoints: [join(app, 'src', 'page.ts')],
      absWorkingDir: app,
      // Only the runner page comes from the workspace; the examples' imports resolve in the scratch project first.
      nodePaths: [join(ROOT, 'node_modules')],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      outfile: out,
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile.inputs);
    const published = /@lorafuse\/(errors|kernels|core)\/|packages\/(errors|kernels|core)\//;
    expect(inputs.filter((p) => published.test(p)).length).toBeGreaterThan(5);
    expect(inputs.filter((p) => published.test(p) && !p.startsWith('node_modules/@lorafuse/'))).toEqual([]);
    expect(relative(ROOT, app).startsWith('..')).toBe(true);

    const base = await makeGpt2Checkpoint({ nEmbd: 8, nLayer: 1, nHead: 2, vocabSize: 20, nPositions: 8 });
    const modules = gpt2LoraModules(8, [0], ['attn.c_attn'], 2);
    const adapter = await makeLoraAdapter({ modules, config: { target_modules: ['c_attn'], r: 2, lora_alpha: 4 } });
    const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
    const text = (bytes: Uint8Array | undefined) => new TextDecoder().decode(bytes);
    const fixture = { baseConfig: text(base.files['config.json']), base: b64(base.files['model.safetensors']!), adapterConfig: text(adapter.files['adapter_config.json']), adapter: b64(adapter.files['adapter_model.safetensors']!) };
    runner = await startBrowserRunner({ pageBundlePath: out, timeoutMs: 120_000 });
    const results = await runner.call<{ kernels: { merged: number[]; cpu: number[]; restored: number[]; nonFinite: number }; core: { tensor: string; tie: string; summary: { merged: number }; values: number[] } }>('examples', fixture);

    expect(results.kernels.merged).toEqual([2, 2, 2, 6, 5, 4]);
    expect(results.kernels.cpu).toEqual(results.kernels.merged);
    expect(results.kernels.restored).toEqual([1, 2, 3, 4, 5, 6]);
    expect(results.kernels.nonFinite).toBe(0);

    expect(results.core).toMatchObject({ tensor: 'transformer.h.0.attn.c_attn.weight', tie: 'untouched', summary: { merged: 1 } });
    const w = base.tensors.find((t) => t.name === 'transformer.h.0.attn.c_attn.weight')!;
    const a = adapter.tensors.find((t) => t.name.endsWith('c_attn.lora_A.weight'))!;
    const b = adapter.tensors.find((t) => t.name.endsWith('c_attn.lora_B.weight'))!;
    const want = loraMergeRef({ w: w.values, a: a.values, b: b.values, rows: 8, cols: 24, rank: 2, orientation: 'transposed', scale: 2 });
    expect(results.core.values).toEqual(Array.from(want.subarray(0, 8)));
  }, 180_000);
});
