/**
 * Faults, done for real: a full disk, Ctrl-C, and a browser killed mid-merge each leave no output,
 * byte-identical inputs and no Chromium behind; a second run then succeeds.
 */
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter, safetensorsBytes } from '@lorafuse/core/testing';
import { CLI, chromiumUnder, removeDir, runLorafuse, tempDir, waitFor, writeDir } from './helpers.js';

let work: string;
let baseDir: string;
let adapterDir: string;
let inputDigest: string;
let base: Awaited<ReturnType<typeof makeGpt2Checkpoint>>;

function digestDir(...dirs: string[]): string {
  const h = createHash('sha256');
  for (const d of dirs) for (const f of readdirSync(d).sort()) h.update(f).update(readFileSync(join(d, f)));
  return h.digest('hex');
}

/** Starts a WebGPU merge in its own TMPDIR and returns the child, its output, and its exit. */
function startMerge(out: string, tmp: string) {
  const child = spawn(process.execPath, [CLI, 'merge', baseDir, adapterDir, '--out', out, '--device', 'webgpu'], { env: { ...process.env, TMPDIR: tmp }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exit = new Promise<number | null>((resolve) => child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : null))));
  return { child, exit, stderr: () => stderr };
}

/** A process's command line ('' once it is gone). */
function commandLineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

/** The run's exit code, or a failure that shows its stderr and the processes still about after `ms`. */
async function exitWithin(run: ReturnType<typeof startMerge>, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), ms)));
  const code = await Promise.race([run.exit, late]);
  clearTimeout(timer);
  if (code !== 'late') return code;
  const ps = execFileSync('ps', ['-eo', 'pid,ppid,etime,args'], { encoding: 'utf8' }).split('\n').filter((l) => /lorafuse|chromium/.test(l)).join('\n');
  run.child.kill('SIGKILL');
  throw new Error(`the merge had not ended ${ms} ms after the fault; its stderr: ${run.stderr()}\nprocesses:\n${ps}`);
}

beforeAll(async () => {
  work = await tempDir('lorafuse-faults-');
  // Big enough that a WebGPU merge on SwiftShader takes several seconds even with the vec4 kernel and
  // look-ahead: 48 Conv1D tensors of GPT-2-small shapes (up to 2.4M values each), r=16.
  base = await makeGpt2Checkpoint({ seed: 61, nEmbd: 768, nLayer: 12, nHead: 12, vocabSize: 1000, nPositions: 128 });
  const adapter = await makeLoraAdapter({ seed: 62, modules: gpt2LoraModules(768, [...Array(12).keys()], ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'], 16) });
  baseDir = await writeDir(join(work, 'base'), base.files);
  adapterDir = await writeDir(join(work, 'adapter'), adapter.files);
  inputDigest = digestDir(baseDir, adapterDir);
}, 120_000);
afterAll(async () => {
  await removeDir(work);
});

describe('fault suite', () => {
  it('a full disk (ENOSPC) mid-write, or while the OS copies the base: exit 2 naming the cause, nothing left, inputs untouched', async () => {
    // LoRA on attn.c_attn leaves most bytes unchanged: the OS copies the base file. The same
    // tensors under a longer header stream every byte instead.
    const attn = await writeDir(join(work, 'adapter-attn'), (await makeLoraAdapter({ seed: 63, modules: gpt2LoraModules(768, [...Array(12).keys()], ['attn.c_attn'], 8) })).files);
    const streamed = await writeDir(join(work, 'base-streamed'), { 'config.json': readFileSync(join(baseDir, 'config.json')), 'model.safetensors': await safetensorsBytes(base.tensors, { format: 'pt', written_by: 'another tool' }) });
    for (const [dir, name, copiedByOs] of [[baseDir, 'copied', 1], [streamed, 'streamed', 0]] as const) {
      const ok = await runLorafuse(['merge', dir, attn, '--out', join(work, `ok-${name}`), '--device', 'cpu', '--json']);
      expect(ok.code, ok.stderr).toBe(0);
      expect(JSON.parse(ok.stdout).copiedByOs, name).toHaveLength(copiedByOs);
      await removeDir(join(work, `ok-${name}`));
      const out = join(work, `out-enospc-${name}`);
      const r = await runLorafuse(['merge', dir, attn, '--out', out, '--device', 'cpu'], { LORAFUSE_FAULT_ENOSPC_AFTER_BYTES: '3000000' });
      expect(r.code, name).toBe(2);
      expect(r.stderr, name).toMatch(/no space left on the device writing .*model\.safetensors/);
      expect(r.stderr, name).not.toMatch(/\n\s+at |bug in lorafuse/);
      expect(existsSync(out), name).toBe(false);
      expect(readdirSync(work).filter((f) => f.includes('enospc')), name).toEqual([]);
    }
    expect(digestDir(baseDir, adapterDir)).toBe(inputDigest);
  });

  it('SIGINT during a WebGPU merge: exit 130, no output, no Chromium left, inputs untouched', async () => {
    const out = join(work, 'out-sigint');
    const tmp = await tempDir('lorafuse-sigint-tmp-');
    const run = startMerge(out, tmp);
    expect(await waitFor(() => chromiumUnder(tmp).length > 0, 60_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 1500));
    run.child.kill('SIGINT');
    const code = await exitWithin(run, 60_000);
    expect(code, `exit ${code} (0 means the merge finished before the signal); stderr: ${run.stderr()}`).toBe(130);
    expect(run.stderr()).toMatch(/interrupted; removing partial output/);
    expect(existsSync(out)).toBe(false);
    expect(await waitFor(() => chromiumUnder(tmp).length === 0, 10_000)).toBe(true);
    expect(readdirSync(tmp).filter((f) => f.startsWith('lorafuse-chromium-'))).toEqual([]);
    expect(digestDir(baseDir, adapterDir)).toBe(inputDigest);
    await removeDir(tmp);
  }, 180_000);

  it('SIGINT while Chromium is still starting: exit 130, and the starting browser and its profile are gone too', async () => {
    const out = join(work, 'out-sigint-startup');
    const tmp = await tempDir('lorafuse-sigint-startup-tmp-');
    const run = startMerge(out, tmp);
    expect(await waitFor(() => chromiumUnder(tmp).length > 0, 60_000)).toBe(true);
    run.child.kill('SIGINT');
    expect(await exitWithin(run, 60_000)).toBe(130);
    expect(existsSync(out)).toBe(false);
    expect(await waitFor(() => chromiumUnder(tmp).length === 0, 10_000)).toBe(true);
    expect(readdirSync(tmp).filter((f) => f.startsWith('lorafuse-chromium-'))).toEqual([]);
    await removeDir(tmp);
  }, 120_000);

  it("Chromium's network service killed mid-merge: exit 2 naming the broken connection, not a bug; no output, no Chromium left", async () => {
    const out = join(work, 'out-network');
    const tmp = await tempDir('lorafuse-network-tmp-');
    const run = startMerge(out, tmp);
    const network = () => chromiumUnder(tmp).filter((pid) => /NetworkService/.test(commandLineOf(pid)));
    expect(await waitFor(() => network().length > 0, 60_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 1200));
    for (const pid of network()) process.kill(pid, 'SIGKILL');
    const code = await exitWithin(run, 60_000);
    expect(code, `exit ${code} (0 means the merge finished before the kill); stderr: ${run.stderr()}`).toBe(2);
    expect(run.stderr()).toMatch(/connection|network|Chromium/i);
    expect(run.stderr()).not.toMatch(/\n\s+at |bug in lorafuse|page\.js/);
    expect(existsSync(out)).toBe(false);
    expect(await waitFor(() => chromiumUnder(tmp).length === 0, 10_000)).toBe(true);
    expect(digestDir(baseDir, adapterDir)).toBe(inputDigest);
    await removeDir(tmp);
  }, 180_000);

  it('Chromium killed mid-merge: exit 2 naming the cause, no output, no Chromium left; a second run succeeds', async () => {
    const out = join(work, 'out-kill');
    const tmp = await tempDir('lorafuse-kill-tmp-');
    const run = startMerge(out, tmp);
    expect(await waitFor(() => chromiumUnder(tmp).length > 0, 60_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 800));
    for (const pid of chromiumUnder(tmp)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already exited */
      }
    }
    const code = await exitWithin(run, 60_000);
    expect(code, `exit ${code} (0 means the merge finished before the kill); stderr: ${run.stderr()}`).toBe(2);
    expect(run.stderr()).toMatch(/browser|page|Chromium/i);
    expect(run.stderr()).not.toMatch(/\n\s+at |bug in lorafuse/);
    expect(existsSync(out)).toBe(false);
    expect(await waitFor(() => chromiumUnder(tmp).length === 0, 10_000)).toBe(true);
    expect(digestDir(baseDir, adapterDir)).toBe(inputDigest);
    await removeDir(tmp);

    const again = await runLorafuse(['merge', baseDir, adapterDir, '--out', out, '--device', 'webgpu'], {}, 150_000);
    expect(again.code, `the second run (-1: killed after 150 s); its stderr: ${again.stderr}`).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors']);
  }, 300_000);
});
