/**
 * Inputs laid out as a Hugging Face cache: every file of a snapshot is a relative symbolic link into
 * the repository's blobs/ folder. merge, verify, inspect and diff take such snapshots as they take
 * plain directories; the output holds regular files with the targets' bytes; the cache is untouched.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter } from '@lorafuse/core/testing';
import { removeDir, runLorafuse, tempDir, writeDir } from './helpers.js';

let work: string;
let baseSnap: string;
let adapterSnap: string;
let plainBase: string;
let cacheDigest: string;
const TOKENIZER = '{"fake": "tokenizer from the cache"}';

/** Writes `files` as the HF cache does: blobs/<sha256> plus snapshots/<rev>/<name> -> ../../blobs/<sha256>. */
async function cacheRepo(root: string, files: Record<string, Uint8Array | string>): Promise<string> {
  const snap = join(root, 'snapshots', '0123456789abcdef0123456789abcdef01234567');
  await mkdir(join(root, 'blobs'), { recursive: true });
  await mkdir(join(root, 'refs'), { recursive: true });
  await mkdir(snap, { recursive: true });
  await writeFile(join(root, 'refs', 'main'), '0123456789abcdef0123456789abcdef01234567');
  for (const [name, bytes] of Object.entries(files)) {
    const sha = createHash('sha256').update(bytes).digest('hex');
    await writeFile(join(root, 'blobs', sha), bytes);
    await symlink(join('..', '..', 'blobs', sha), join(snap, name));
  }
  return snap;
}

/** Every path under `dir` with its link target or content hash. */
function treeDigest(dir: string): string {
  const h = createHash('sha256');
  const walk = (d: string): void => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      const s = lstatSync(p);
      h.update(p);
      if (s.isSymbolicLink()) h.update(`-> ${readlinkSync(p)}`);
      else if (s.isDirectory()) walk(p);
      else h.update(readFileSync(p));
    }
  };
  walk(dir);
  return h.digest('hex');
}

beforeAll(async () => {
  work = await tempDir('lorafuse-hf-cache-');
  const base = await makeGpt2Checkpoint({ seed: 71 });
  const adapter = await makeLoraAdapter({ seed: 72, modules: gpt2LoraModules(16, [0, 1], ['attn.c_attn', 'mlp.c_proj'], 4) });
  baseSnap = await cacheRepo(join(work, 'hub', 'models--acme--gpt2-tiny'), { ...base.files, 'tokenizer.json': TOKENIZER });
  adapterSnap = await cacheRepo(join(work, 'hub', 'models--acme--gpt2-tiny-lora'), adapter.files);
  plainBase = await writeDir(join(work, 'plain-base'), { ...base.files, 'tokenizer.json': TOKENIZER });
  cacheDigest = treeDigest(join(work, 'hub'));
});
afterAll(async () => {
  await removeDir(work);
});

describe('a Hugging Face cache snapshot as input', () => {
  it('merge: symlinked weights count as present, the output holds regular files with the targets\' bytes; verify accepts it', async () => {
    const out = join(work, 'out');
    const r = await runLorafuse(['merge', baseSnap, adapterSnap, '--out', out, '--device', 'cpu', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ ok: true, tensors: { merged: 4 } });
    expect(report.filesCopied.sort()).toEqual(['generation_config.json', 'tokenizer.json']);
    expect(readdirSync(out).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json']);
    for (const n of readdirSync(out)) expect(lstatSync(join(out, n)).isFile(), `${n} is a regular file`).toBe(true);
    expect(await readFile(join(out, 'tokenizer.json'), 'utf8')).toBe(TOKENIZER);
    expect(await readFile(join(out, 'generation_config.json'))).toEqual(await readFile(join(baseSnap, 'generation_config.json')));

    const v = await runLorafuse(['verify', out, '--base', baseSnap, '--adapter', adapterSnap, '--device', 'cpu']);
    expect(v.code, v.stderr + v.stdout).toBe(0);
    // The same merge from a plain copy of the base gives the same bytes.
    const plainOut = join(work, 'plain-out');
    expect((await runLorafuse(['merge', plainBase, adapterSnap, '--out', plainOut, '--device', 'cpu'])).code).toBe(0);
    expect(await readFile(join(out, 'model.safetensors'))).toEqual(await readFile(join(plainOut, 'model.safetensors')));
    expect(treeDigest(join(work, 'hub'))).toBe(cacheDigest);
  });

  it('inspect reads a snapshot checkpoint and a snapshot adapter', async () => {
    const ck = await runLorafuse(['inspect', baseSnap, '--json']);
    expect(ck.code, ck.stderr).toBe(0);
    expect(JSON.parse(ck.stdout)).toMatchObject({ kind: 'checkpoint', files: ['model.safetensors'] });
    const ad = await runLorafuse(['inspect', adapterSnap, '--json']);
    expect(ad.code, ad.stderr).toBe(0);
    expect(JSON.parse(ad.stdout)).toMatchObject({ kind: 'adapter' });
  });

  it('diff compares a snapshot with a plain copy (equal) and with the merged output (differs)', async () => {
    const same = await runLorafuse(['diff', baseSnap, plainBase, '--device', 'cpu']);
    expect(same.code, same.stderr).toBe(0);
    expect(same.stdout).toMatch(/^equal: /m);
    const merged = await runLorafuse(['diff', baseSnap, join(work, 'out'), '--device', 'cpu']);
    expect(merged.code, merged.stderr).toBe(1);
    const adapterVsItself = await runLorafuse(['diff', adapterSnap, adapterSnap, '--device', 'cpu']);
    expect(adapterVsItself.code, adapterVsItself.stderr).toBe(0);
  });

  it('a link to nothing (an interrupted download) is named, not silently dropped', async () => {
    const snap = await cacheRepo(join(work, 'hub', 'models--acme--broken'), { 'config.json': await readFile(join(baseSnap, 'config.json')), 'model.safetensors': await readFile(join(baseSnap, 'model.safetensors')) });
    await symlink(join('..', '..', 'blobs', 'f'.repeat(64)), join(snap, 'tokenizer.json'));
    const r = await runLorafuse(['merge', snap, adapterSnap, '--out', join(work, 'out-broken'), '--device', 'cpu']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/tokenizer\.json is a symbolic link to .*f{64}, which does not exist/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(readdirSync(work)).not.toContain('out-broken');
  });
});
