/**
 * adapter_config.json that disagrees with the adapter's tensors: merge and verify stop with an error
 * naming the tensors and the field (nothing written), doctor reports it, and --follow config|tensors
 * chooses a side explicitly.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter } from '@lorafuse/core/testing';
import { readCheckpoint, removeDir, runLorafuse, tempDir, writeDir } from './helpers.js';

let work: string;
let baseDir: string;
let adapterDir: string;
beforeAll(async () => {
  work = await tempDir('lorafuse-agreement-');
  const base = await makeGpt2Checkpoint({ seed: 5, nEmbd: 16, nLayer: 2, nHead: 2, vocabSize: 30, nPositions: 8 });
  // Tensors for both layers, but the config selects layer 0 only: PEFT's unmerged model ignores layer 1's.
  const adapter = await makeLoraAdapter({ seed: 6, modules: gpt2LoraModules(16, [0, 1], ['attn.c_attn'], 2), config: { target_modules: ['c_attn'], layers_to_transform: [0], layers_pattern: 'h' } });
  baseDir = await writeDir(join(work, 'base'), base.files);
  adapterDir = await writeDir(join(work, 'adapter'), adapter.files);
});
afterAll(async () => {
  await removeDir(work);
});

describe('config and tensors disagree', () => {
  it('merge stops before writing, naming the tensor and the field; doctor reports the same error', async () => {
    const out = join(work, 'out-refused');
    const r = await runLorafuse(['merge', baseDir, adapterDir, '--out', out, '--device', 'cpu']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/transformer\.h\.1\.attn\.c_attn.*layers_to_transform \[0\]/);
    expect(r.stderr).toMatch(/--follow config/);
    expect(existsSync(out)).toBe(false);
    const d = await runLorafuse(['doctor', baseDir, adapterDir, '--json']);
    expect(d.code).toBe(2);
    expect(JSON.parse(d.stdout).findings.find((f: { code: string }) => f.code === 'ADAPTER_CONFIG_DISAGREES')).toMatchObject({ severity: 'error', subject: 'layers_to_transform' });
  });

  it('--follow config merges what PEFT applies (layer 1 unchanged); --follow tensors merges both and warns; verify follows the same rule', async () => {
    const base = await readCheckpoint(join(baseDir, 'model.safetensors'));
    const outConfig = join(work, 'out-config');
    const c = await runLorafuse(['merge', baseDir, adapterDir, '--out', outConfig, '--device', 'cpu', '--follow', 'config', '--json']);
    expect(c.code, c.stderr).toBe(0);
    expect(JSON.parse(c.stdout).tensors.merged).toBe(1);
    const merged = await readCheckpoint(join(outConfig, 'model.safetensors'));
    expect(merged.raw('transformer.h.1.attn.c_attn.weight')).toEqual(base.raw('transformer.h.1.attn.c_attn.weight'));
    expect(merged.raw('transformer.h.0.attn.c_attn.weight')).not.toEqual(base.raw('transformer.h.0.attn.c_attn.weight'));

    const outTensors = join(work, 'out-tensors');
    const t = await runLorafuse(['merge', baseDir, adapterDir, '--out', outTensors, '--device', 'cpu', '--follow', 'tensors', '--json']);
    expect(t.code, t.stderr).toBe(0);
    const doc = JSON.parse(t.stdout);
    expect(doc.tensors.merged).toBe(2);
    expect(doc.findings.find((f: { code: string }) => f.code === 'ADAPTER_CONFIG_DISAGREES')?.severity).toBe('warning');

    expect((await runLorafuse(['verify', outConfig, '--base', baseDir, '--adapter', adapterDir])).code).toBe(2);
    expect((await runLorafuse(['verify', outConfig, '--base', baseDir, '--adapter', adapterDir, '--follow', 'config'])).code).toBe(0);
    expect((await runLorafuse(['verify', outTensors, '--base', baseDir, '--adapter', adapterDir, '--follow', 'config'])).code).toBe(1);
    expect((await runLorafuse(['merge', baseDir, adapterDir, '--out', join(work, 'x'), '--follow', 'both'])).stderr).toMatch(/--follow must be one of config, tensors/);
  });
});
