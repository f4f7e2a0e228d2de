/**
 * The life of an output directory, done for real with the built CLI: one merge at a time per --out
 * (the second is told who holds it), a killed run's leftovers cleared by the next run, --overwrite
 * replacing only an earlier lorafuse output and listing it, and a failed or interrupted run that
 * leaves an existing output exactly as it was.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter } from '@lorafuse/core/testing';
import { CLI, removeDir, runLorafuse, tempDir, waitFor, writeDir } from './helpers.js';

let work: string;
let baseDir: string;
let adapterDir: string;
let inputDigest: string;
const OUTPUT = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json'];

function digestOf(dir: string): string {
  const h = createHash('sha256');
  for (const f of readdirSync(dir).sort()) h.update(f).update(readFileSync(join(dir, f)));
  return h.digest('hex');
}

function startMerge(out: string, extra: string[] = []) {
  const child = spawn(process.execPath, [CLI, 'merge', baseDir, adapterDir, '--out', out, '--device', 'cpu', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  child.stdout.resume();
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, exit, stderr: () => stderr };
}

/** Whether a run into `parent/out` is writing model.safetensors in its staging directory. */
function midWrite(parent: string): boolean {
  const staging = readdirSync(parent).find((n) => n.startsWith('.out.lorafuse-staging-'));
  if (!staging) return false;
  try {
    return statSync(join(parent, staging, 'model.safetensors')).size > 20_000_000;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  work = await tempDir('lorafuse-output-life-');
  // ~330 MB: a --device cpu merge of ~2 s, long enough to meet it while it writes.
  const base = await makeGpt2Checkpoint({ seed: 61, nEmbd: 768, nLayer: 12, nHead: 12, vocabSize: 1000, nPositions: 128 });
  const adapter = await makeLoraAdapter({ seed: 62, modules: gpt2LoraModules(768, [...Array(12).keys()], ['attn.c_attn', 'mlp.c_fc'], 8) });
  baseDir = await writeDir(join(work, 'base'), { ...base.files, 'tokenizer.json': '{"fake": "tokenizer"}' });
  adapterDir = await writeDir(join(work, 'adapter'), adapter.files);
  inputDigest = digestOf(baseDir) + digestOf(adapterDir);
}, 120_000);
afterAll(async () => {
  expect(digestOf(baseDir) + digestOf(adapterDir)).toBe(inputDigest);
  await removeDir(work);
});

describe('one output directory, one merge at a time', () => {
  it('a second merge into the same --out is refused before it writes anything, naming the first one\'s pid', async () => {
    const parent = join(work, 'concurrent');
    await mkdir(parent);
    const first = startMerge(join(parent, 'out'));
    expect(await waitFor(() => existsSync(join(parent, '.out.lorafuse-lock')), 30_000)).toBe(true);
    const second = await runLorafuse(['merge', baseDir, adapterDir, '--out', join(parent, 'out'), '--device', 'cpu', '--json']);
    expect(second.code).toBe(2);
    const doc = JSON.parse(second.stdout);
    expect(doc.error).toMatchObject({ code: 'OUT_DIR_IN_USE', kind: 'usage', message: `output directory ${join(parent, 'out')} is in use by another lorafuse (pid ${first.child.pid})` });
    expect(await first.exit, first.stderr()).toBe(0);
    expect(readdirSync(parent)).toEqual(['out']);
    expect(readdirSync(join(parent, 'out')).sort()).toEqual(OUTPUT);
  });

  it('after a SIGKILL mid-write the rerun clears the leftovers, says so in one line, and succeeds', async () => {
    const parent = join(work, 'killed');
    await mkdir(parent);
    const run = startMerge(join(parent, 'out'));
    expect(await waitFor(() => midWrite(parent), 30_000), run.stderr()).toBe(true);
    run.child.kill('SIGKILL');
    await run.exit;
    const left = readdirSync(parent).sort();
    expect(left).toEqual(['.out.lorafuse-lock', expect.stringMatching(/^\.out\.lorafuse-staging-[0-9a-f]+$/)]);
    const again = await runLorafuse(['merge', baseDir, adapterDir, '--out', join(parent, 'out'), '--device', 'cpu']);
    expect(again.code, again.stderr).toBe(0);
    const notes = again.stderr.split('\n').filter((l) => l.startsWith('lorafuse: '));
    expect(notes).toEqual([`lorafuse: removed what an interrupted lorafuse run (pid ${run.child.pid}) left behind: its lock ${join(parent, left[0]!)}, ${join(parent, left[1]!)}`]);
    expect(readdirSync(parent)).toEqual(['out']);
    expect(readdirSync(join(parent, 'out')).sort()).toEqual(OUTPUT);
  });
});

describe('--overwrite and an existing output', () => {
  let parent: string;
  let out: string;
  let earlier: string;
  beforeAll(async () => {
    parent = join(work, 'existing');
    out = join(parent, 'out');
    await mkdir(parent);
    const r = await runLorafuse(['merge', baseDir, adapterDir, '--out', out, '--device', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    earlier = digestOf(out);
  });

  it('a run that fails (a full disk) leaves the earlier output exactly as it was', async () => {
    const r = await runLorafuse(['merge', baseDir, adapterDir, '--out', out, '--device', 'cpu', '--overwrite'], { LORAFUSE_FAULT_ENOSPC_AFTER_BYTES: '50000000' });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/no space left/);
    expect(digestOf(out)).toBe(earlier);
    expect(readdirSync(parent)).toEqual(['out']);
  });

  it('a run stopped by SIGTERM mid-write leaves the earlier output exactly as it was', async () => {
    const run = startMerge(out, ['--overwrite']);
    expect(await waitFor(() => midWrite(parent), 30_000), run.stderr()).toBe(true);
    run.child.kill('SIGTERM');
    expect(await run.exit, run.stderr()).toBe(143);
    expect(digestOf(out)).toBe(earlier);
    expect(readdirSync(parent)).toEqual(['out']);
  });

  it('refuses a directory holding a hidden file lorafuse did not write, naming it, and changes nothing', async () => {
    await writeFile(join(out, '.keep-me'), 'not lorafuse\'s');
    const r = await runLorafuse(['merge', baseDir, adapterDir, '--out', out, '--device', 'cpu', '--overwrite']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/holds files lorafuse did not write: \.keep-me\n.*--overwrite replaces only an earlier output/);
    expect(readFileSync(join(out, '.keep-me'), 'utf8')).toBe('not lorafuse\'s');
    expect(readdirSync(out).filter((n) => n !== '.keep-me').sort()).toEqual(OUTPUT);
    await removeDir(join(out, '.keep-me'));
    expect(digestOf(out)).toBe(earlier);
  });

  it('replaces an earlier output and lists what it replaced, in --json and in words', async () => {
    const json = await runLorafuse(['merge', baseDir, adapterDir, '--out', out, '--device', 'cpu', '--overwrite', '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout).replaced).toEqual(OUTPUT);
    // A shard of some earlier sharded output is lorafuse's too: replaced (removed) and listed.
    await writeFile(join(out, 'model-00002-of-00002.safetensors'), 'an earlier shard');
    const human = await runLorafuse(['merge', baseDir, adapterDir, '--out', out, '--device', 'cpu', '--overwrite']);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^ {2}replaced the earlier output's config\.json, generation_config\.json, model-00002-of-00002\.safetensors, model\.safetensors, tokenizer\.json$/m);
    expect(readdirSync(out).sort()).toEqual(OUTPUT);
    expect(readdirSync(parent)).toEqual(['out']);
  });
});
