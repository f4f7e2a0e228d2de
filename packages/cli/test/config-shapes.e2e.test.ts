/** A config.json that disagrees with the tensors: merge refuses the base (exit 2), verify fails an output (exit 1). */
import { existsSync } from 'node:fs';
import { cp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter } from '@lorafuse/core/testing';
import { removeDir, runLorafuse, tempDir, writeDir } from './helpers.js';

let work: string;
let base: Awaited<ReturnType<typeof makeGpt2Checkpoint>>;
let adapterDir: string;
beforeAll(async () => {
  work = await tempDir('lorafuse-config-shapes-');
  base = await makeGpt2Checkpoint({ seed: 8, nEmbd: 16, nLayer: 2, nHead: 2, vocabSize: 30, nPositions: 8 });
  adapterDir = await writeDir(join(work, 'adapter'), (await makeLoraAdapter({ seed: 9, modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2) })).files);
});
afterAll(async () => {
  await removeDir(work);
});

describe('config.json against the tensors', () => {
  for (const [field, value] of [['n_layer', 3], ['n_embd', 32], ['vocab_size', 31]] as const) {
    it(`a base whose config says ${field}: ${value}: exit 2 naming the field, nothing written`, async () => {
      const dir = await writeDir(join(work, `base-${field}`), { ...base.files, 'config.json': JSON.stringify({ ...base.config, [field]: value }) });
      const out = join(work, `out-${field}`);
      const r = await runLorafuse(['merge', dir, adapterDir, '--out', out, '--device', 'cpu', '--json']);
      expect(r.code, r.stderr).toBe(2);
      const doc = JSON.parse(r.stdout);
      expect(doc.error).toMatchObject({ code: 'BASE_CONFIG_MISMATCH', subject: field });
      expect(doc.error.message).toContain(`${field}: ${value}`);
      expect(existsSync(out)).toBe(false);
    });
  }

  it('verify fails (exit 1) on an output whose config.json no longer describes its tensors', async () => {
    const baseDir = await writeDir(join(work, 'base'), base.files);
    const out = join(work, 'out');
    expect((await runLorafuse(['merge', baseDir, adapterDir, '--out', out, '--device', 'cpu'])).code).toBe(0);
    const broken = join(work, 'out-broken');
    await cp(out, broken, { recursive: true });
    await writeFile(join(broken, 'config.json'), JSON.stringify({ ...base.config, n_layer: 3 }));
    const v = await runLorafuse(['verify', broken, '--base', baseDir, '--adapter', adapterDir]);
    expect(v.code, v.stdout + v.stderr).toBe(1);
    expect(v.stdout).toMatch(/FAIL config\.json.*n_layer: 3.*cannot load/);
  });
});
