/**
 * Signals at any moment of a merge: a sweep of signal times over a whole `--device cpu` merge (the
 * copy of unchanged tensors included), each with SIGINT, SIGTERM or SIGHUP (plus SIGQUIT and
 * SIGUSR2), and a few on `--device webgpu`, one with a browser that no longer answers. Every run
 * exits 128 + the signal's number without a stack trace, leaves nothing beside --out (no staging
 * directory, temporary file or lock), no Chromium or profile, and the inputs as they were.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter, safetensorsBytes } from '@lorafuse/core/testing';
import { CLI, chromiumUnder, removeDir, tempDir, waitFor, writeDir } from './helpers.js';

let work: string;
let baseDir: string;
/** The same tensors under a longer header: its merge streams every byte instead of copying the file. */
let streamedBaseDir: string;
/** LoRA on every Conv1D weight: nearly every byte is merged (and streamed). */
let adapterDir: string;
/** LoRA on attn.c_attn only: three quarters of the bytes are unchanged (the OS copies them from `baseDir`). */
let attnAdapterDir: string;
let inputStamp: string;
let inputDigest: string;
/** Wall time of an uninterrupted merge, to spread the signal times over. */
let mergeMs: number;
const OUTPUT = ['config.json', 'generation_config.json', 'model.safetensors'];

/** Names, sizes, inodes and mtimes of the inputs: cheap enough to check after every run. */
function stampOf(...dirs: string[]): string {
  return dirs.flatMap((d) => readdirSync(d).sort().map((f) => {
    const s = statSync(join(d, f));
    return `${d}/${f}:${s.size}:${s.ino}:${s.mtimeMs}`;
  })).join('\n');
}

function digestOf(...dirs: string[]): string {
  const h = createHash('sha256');
  for (const d of dirs) for (const f of readdirSync(d).sort()) h.update(f).update(readFileSync(join(d, f)));
  return h.digest('hex');
}

interface Run {
  readonly pid: number;
  kill(signal: NodeJS.Signals): void;
  /** Exit code; a process a signal ended before it handled any counts as 128 + its number, as in a shell. */
  readonly exit: Promise<number>;
  stdout(): string;
  stderr(): string;
}

function startMerge(out: string, device: 'cpu' | 'webgpu', tmp?: string, base = baseDir, adapter = adapterDir): Run {
  const child = spawn(process.execPath, [CLI, 'merge', base, adapter, '--out', out, '--device', device, '--json'], {
    env: { ...process.env, ...(tmp ? { TMPDIR: tmp } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exit = new Promise<number>((resolve) => child.on('close', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0))));
  return { pid: child.pid!, kill: (s) => child.kill(s), exit, stdout: () => stdout, stderr: () => stderr };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What every signalled run must satisfy; returns whether the signal ended it (rather than the merge finishing first). */
async function expectCleanEnd(run: Run, signal: NodeJS.Signals, parent: string): Promise<boolean> {
  const code = await run.exit;
  const what = `${signal}: exit ${code}; stderr: ${run.stderr()}`;
  expect(run.stderr(), what).not.toMatch(/\n\s+at |Error:|bug in lorafuse/);
  expect(stampOf(baseDir, streamedBaseDir, adapterDir, attnAdapterDir), 'inputs untouched').toBe(inputStamp);
  if (code === 0) {
    // The merge won the race: then the output must be complete and alone.
    expect(JSON.parse(run.stdout()), what).toMatchObject({ ok: true });
    expect(readdirSync(parent), what).toEqual(['out']);
    expect(readdirSync(join(parent, 'out')).sort(), what).toEqual(OUTPUT);
    return false;
  }
  expect(code, what).toBe(128 + constants.signals[signal]);
  const left = readdirSync(parent);
  // A signal after the commit ends the run with its output complete; before it, nothing is left.
  if (left.length > 0) {
    expect(left, what).toEqual(['out']);
    expect(readdirSync(join(parent, 'out')).sort(), what).toEqual(OUTPUT);
  }
  return true;
}

beforeAll(async () => {
  work = await tempDir('lorafuse-signals-');
  // The fault suite's checkpoint: ~330 MB. The sweep merges LoRA on c_attn into it (~1-2 s on the
  // CPU, most of it copying); the WebGPU runs merge every Conv1D weight (several seconds).
  const base = await makeGpt2Checkpoint({ seed: 61, nEmbd: 768, nLayer: 12, nHead: 12, vocabSize: 1000, nPositions: 128 });
  const adapter = await makeLoraAdapter({ seed: 62, modules: gpt2LoraModules(768, [...Array(12).keys()], ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'], 16) });
  baseDir = await writeDir(join(work, 'base'), base.files);
  streamedBaseDir = await writeDir(join(work, 'base-streamed'), { ...base.files, 'model.safetensors': await safetensorsBytes(base.tensors, { format: 'pt', written_by: 'another tool' }) });
  adapterDir = await writeDir(join(work, 'adapter'), adapter.files);
  attnAdapterDir = await writeDir(join(work, 'adapter-attn'), (await makeLoraAdapter({ seed: 63, modules: gpt2LoraModules(768, [...Array(12).keys()], ['attn.c_attn'], 16) })).files);
  inputStamp = stampOf(baseDir, streamedBaseDir, adapterDir, attnAdapterDir);
  inputDigest = digestOf(baseDir, streamedBaseDir, adapterDir, attnAdapterDir);
  for (const [dir, copiedByOs] of [[streamedBaseDir, 0], [baseDir, 1]] as const) {
    const parent = join(work, 'baseline');
    await mkdir(parent);
    const started = Date.now();
    const run = startMerge(join(parent, 'out'), 'cpu', undefined, dir, attnAdapterDir);
    expect(await run.exit, run.stderr()).toBe(0);
    // Both ways of writing the output are swept: the OS's copy of the base, and streaming.
    expect(JSON.parse(run.stdout()).copiedByOs).toHaveLength(copiedByOs);
    mergeMs = Date.now() - started;
    await removeDir(parent);
  }
}, 180_000);
afterAll(async () => {
  expect(digestOf(baseDir, streamedBaseDir, adapterDir, attnAdapterDir)).toBe(inputDigest);
  await removeDir(work);
});

describe('signals during a merge', () => {
  it('a sweep of signal times over a --device cpu merge: every run ends cleanly with 128 + n', async () => {
    const cycle: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    const times = Array.from({ length: 15 }, (_, i) => ({ at: 0.05 + (0.9 * i) / 14, signal: cycle[i % 3]! }));
    times.push({ at: 0.5, signal: 'SIGQUIT' }, { at: 0.7, signal: 'SIGUSR2' });
    let interrupted = 0;
    // The times are fractions of the fastest whole merge seen so far: the first, timed merge may
    // have run beside other test files on a loaded machine, and later ones be quicker.
    let fastestMs = mergeMs;
    for (const [i, t] of times.entries()) {
      const parent = join(work, `sweep-${i}`);
      await mkdir(parent);
      const started = Date.now();
      // Every other run streams the unchanged tensors; the others copy the base file.
      const run = startMerge(join(parent, 'out'), 'cpu', undefined, i % 2 === 0 ? baseDir : streamedBaseDir, attnAdapterDir);
      await sleep(Math.round(fastestMs * t.at));
      run.kill(t.signal);
      if (await expectCleanEnd(run, t.signal, parent)) interrupted++;
      else fastestMs = Math.min(fastestMs, Date.now() - started);
      await removeDir(parent);
    }
    // Most signal times must land inside the merge, or the sweep proves little.
    expect(interrupted, `merge took ${mergeMs} ms, at best ${fastestMs} ms`).toBeGreaterThanOrEqual(12);
  }, 150_000);

  it.each([
    ['SIGINT', 'while Chromium starts', 0],
    ['SIGTERM', 'mid-merge', 1500],
    ['SIGHUP', 'mid-merge', 2500],
  ] as const)('%s %s on --device webgpu: no Chromium, no profile, nothing beside --out', async (signal, _when, afterBrowserMs) => {
    const parent = join(work, `webgpu-${signal}`);
    await mkdir(parent);
    const tmp = await tempDir('lorafuse-signals-tmp-');
    const run = startMerge(join(parent, 'out'), 'webgpu', tmp);
    expect(await waitFor(() => chromiumUnder(tmp).length > 0, 60_000)).toBe(true);
    await sleep(afterBrowserMs);
    run.kill(signal);
    expect(await expectCleanEnd(run, signal, parent), `the merge finished before ${signal}`).toBe(true);
    expect(await waitFor(() => chromiumUnder(tmp).length === 0, 10_000)).toBe(true);
    expect(readdirSync(tmp)).toEqual([]);
    await removeDir(tmp);
    await removeDir(parent);
  }, 90_000);

  it('a browser that no longer answers does not hold up SIGTERM: the cleanup is bounded', async () => {
    const parent = join(work, 'webgpu-stopped-browser');
    await mkdir(parent);
    const tmp = await tempDir('lorafuse-signals-tmp-');
    const run = startMerge(join(parent, 'out'), 'webgpu', tmp);
    expect(await waitFor(() => chromiumUnder(tmp).length > 0, 60_000)).toBe(true);
    await sleep(1500);
    // Stop the browser process itself (lorafuse's direct child): it can no longer answer its close().
    const browser = execFileSync('pgrep', ['-P', String(run.pid)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
    expect(browser.length).toBeGreaterThan(0);
    for (const pid of browser) process.kill(pid, 'SIGSTOP');
    const signalled = Date.now();
    run.kill('SIGTERM');
    try {
      expect(await expectCleanEnd(run, 'SIGTERM', parent)).toBe(true);
      // The cleanup limit (5 s) plus the exit; a close() awaited to the end would take far longer.
      expect(Date.now() - signalled).toBeLessThan(9_000);
      expect(await waitFor(() => chromiumUnder(tmp).length === 0, 10_000)).toBe(true);
      // Chromium's own org.chromium.* scratch directories live in its TMPDIR beside the profile, so they go too.
      expect(readdirSync(tmp)).toEqual([]);
    } finally {
      for (const pid of [...browser, ...chromiumUnder(tmp)]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone, as it should be */
        }
      }
    }
    expect(existsSync(join(parent, 'out'))).toBe(false);
    await removeDir(tmp);
    await removeDir(parent);
  }, 90_000);
});
