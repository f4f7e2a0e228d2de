/**
 * DoRA adapters through the built CLI: merged on every device against an independent reference
 * written from PEFT's formula, proven by `verify` and `verify --behaviour`, and the DoRA tensors that
 * disagree with use_dora refused by `merge` and reported by `doctor`.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter, safetensorsBytes } from '@lorafuse/core/testing';
import { expectedMerge, readCheckpoint, removeDir, runLorafuse, tempDir, worstViolation, writeDir, type ReadBack } from './helpers.js';

const E = 16;
const V = 50;
let work: string;
let baseDir: string;
let adapterDir: string;

beforeAll(async () => {
  work = await tempDir('lorafuse-dora-');
  const base = await makeGpt2Checkpoint({ seed: 11, nEmbd: E, vocabSize: V });
  const adapter = await makeLoraAdapter({
    seed: 12,
    dora: true,
    modules: [...gpt2LoraModules(E, [0, 1], ['attn.c_attn', 'mlp.c_fc'], 3), { module: 'lm_head', inFeatures: E, outFeatures: V, rank: 2 }],
    config: { target_modules: ['c_attn', 'c_fc', 'lm_head'], r: 3, lora_alpha: 6, rank_pattern: { lm_head: 2 } },
  });
  baseDir = await writeDir(join(work, 'base'), base.files);
  adapterDir = await writeDir(join(work, 'adapter'), adapter.files);
});
afterAll(async () => {
  await removeDir(work);
});

/** PEFT's DoRA merge in f64: V = W + s·ΔW, then every output feature scaled to m / ‖V_feature‖. */
function expectedDora(base: ReadBack, adapter: ReadBack, weight: string, module: string, conv1d: boolean, scale: number): Float64Array {
  const key = (s: string) => `base_model.model.${module}.${s}`;
  const t = base.header.byName.get(weight)!;
  const rank = adapter.header.byName.get(key('lora_A.weight'))!.shape[0]!;
  const v = expectedMerge(base.f32(weight), adapter.f32(key('lora_A.weight')), adapter.f32(key('lora_B.weight')), rank, t.shape, conv1d, scale);
  const m = adapter.f32(key('lora_magnitude_vector'));
  const [rows, cols] = t.shape as [number, number];
  const features = conv1d ? cols : rows;
  const len = conv1d ? rows : cols;
  const at = (j: number, i: number) => (conv1d ? i * cols + j : j * cols + i);
  for (let j = 0; j < features; j++) {
    let ss = 0;
    for (let i = 0; i < len; i++) ss += v[at(j, i)]! ** 2;
    for (let i = 0; i < len; i++) v[at(j, i)] = (m[j]! / Math.sqrt(ss)) * v[at(j, i)]!;
  }
  return v;
}

async function checkDoraOutput(out: string, tol: number) {
  const base = await readCheckpoint(join(baseDir, 'model.safetensors'));
  const adapter = await readCheckpoint(join(adapterDir, 'adapter_model.safetensors'));
  const merged = await readCheckpoint(join(out, 'model.safetensors'));
  for (const l of [0, 1]) {
    for (const leaf of ['attn.c_attn', 'mlp.c_fc']) {
      const name = `transformer.h.${l}.${leaf}.weight`;
      expect(worstViolation(merged.f32(name), expectedDora(base, adapter, name, `transformer.h.${l}.${leaf}`, true, 2), tol, tol), name).toBeLessThanOrEqual(0);
    }
  }
  // lm_head (rank 2 by rank_pattern, so scale 6/2): a Linear [vocab, n_embd], norms per row, on the
  // tied base's matrix; wte stays the base.
  const headExpected = expectedDora({ ...base, header: { ...base.header, byName: new Map([...base.header.byName, ['lm_head.weight', base.header.byName.get('transformer.wte.weight')!]]) }, f32: (n) => base.f32(n === 'lm_head.weight' ? 'transformer.wte.weight' : n) }, adapter, 'lm_head.weight', 'lm_head', false, 6 / 2);
  expect(worstViolation(merged.f32('lm_head.weight'), headExpected, tol, tol)).toBeLessThanOrEqual(0);
  expect(Buffer.from(merged.raw('transformer.wte.weight')).equals(Buffer.from(base.raw('transformer.wte.weight')))).toBe(true);
  return merged;
}

describe('lorafuse merge: DoRA', () => {
  it('--device cpu: Conv1D columns and the tied lm_head rows scaled to their magnitudes; the tie is undone; verify passes', async () => {
    const out = join(work, 'out-cpu');
    const r = await runLorafuse(['merge', baseDir, adapterDir, '--out', out, '--device', 'cpu', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.loraModules).toHaveLength(5);
    expect(report.loraModules.every((m: { dora: boolean }) => m.dora)).toBe(true);
    expect(report.tie.decision).toBe('untie');
    expect(report.tie.reason).toMatch(/lm_head: DoRA/);
    await checkDoraOutput(out, 1e-5);
    const human = await runLorafuse(['merge', baseDir, adapterDir, '--out', join(work, 'out-cpu-human'), '--device', 'cpu']);
    expect(human.stdout).toMatch(/\(DoRA\)/);

    const v = await runLorafuse(['verify', out, '--base', baseDir, '--adapter', adapterDir, '--json']);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    const b = await runLorafuse(['verify', out, '--base', baseDir, '--adapter', adapterDir, '--behaviour', '--json']);
    expect(b.code, b.stdout + b.stderr).toBe(0);
    expect(JSON.parse(b.stdout).behaviour.ok).toBe(true);
  });

  it('verify and verify --behaviour catch a merge that left out the DoRA scaling', async () => {
    const out = join(work, 'out-cpu');
    const base = await readCheckpoint(join(baseDir, 'model.safetensors'));
    const adapter = await readCheckpoint(join(adapterDir, 'adapter_model.safetensors'));
    const merged = await readCheckpoint(join(out, 'model.safetensors'));
    const name = 'transformer.h.1.mlp.c_fc.weight';
    const key = (s: string) => `base_model.model.transformer.h.1.mlp.c_fc.${s}`;
    const plain = expectedMerge(base.f32(name), adapter.f32(key('lora_A.weight')), adapter.f32(key('lora_B.weight')), 3, base.header.byName.get(name)!.shape, true, 2);
    const tensors = merged.header.tensors.map((t) => ({ name: t.name, shape: t.shape, values: t.name === name ? Float32Array.from(plain) : merged.f32(t.name) }));
    const wrong = await writeDir(join(work, 'wrong'), { 'model.safetensors': await safetensorsBytes(tensors), 'config.json': await readFile(join(out, 'config.json')) });
    const v = await runLorafuse(['verify', wrong, '--base', baseDir, '--adapter', adapterDir]);
    expect(v.code).toBe(1);
    expect(v.stdout).toContain(name);
    const b = await runLorafuse(['verify', wrong, '--base', baseDir, '--adapter', adapterDir, '--behaviour', '--json']);
    expect(b.code).toBe(1);
    expect(JSON.parse(b.stdout).behaviour.ok).toBe(false);
  });

  it('the WGSL forward pass applies DoRA (its factors folded into the weights): the CPU reference\'s logits on Dawn and in Chromium', async () => {
    const ids = ['--ids', '1,2,49,0,7'];
    const cpu = await runLorafuse(['logits', baseDir, '--adapter', adapterDir, ...ids, '--json']);
    expect(cpu.code, cpu.stderr).toBe(0);
    const want = (JSON.parse(cpu.stdout) as { logits: number[][] }).logits.flat();
    // Plain LoRA (the same factors, no DoRA step) is another model by far more than the tolerance.
    const plainAdapter = await writeDir(join(work, 'adapter-plain'), {
      'adapter_model.safetensors': await readFile(join(adapterDir, 'adapter_model.safetensors')),
      'adapter_config.json': JSON.stringify({ ...JSON.parse(await readFile(join(adapterDir, 'adapter_config.json'), 'utf8')), use_dora: false }),
    });
    const plain = await runLorafuse(['logits', baseDir, '--adapter', plainAdapter, ...ids, '--json']);
    expect(plain.code, plain.stderr).toBe(0);
    const plainLogits = (JSON.parse(plain.stdout) as { logits: number[][] }).logits.flat();
    expect(Math.max(...want.map((v, i) => Math.abs(v - plainLogits[i]!)))).toBeGreaterThan(1e-2);
    for (const device of ['dawn', 'webgpu']) {
      const r = await runLorafuse(['logits', baseDir, '--adapter', adapterDir, ...ids, '--device', device, '--json']);
      expect(r.code, r.stderr).toBe(0);
      const got = (JSON.parse(r.stdout) as { logits: number[][] }).logits.flat();
      expect(got).toHaveLength(want.length);
      expect(worstViolation(got, want, 1e-4, 1e-4), device).toBeLessThanOrEqual(0);
    }
    const b = await runLorafuse(['verify', join(work, 'out-cpu'), '--base', baseDir, '--adapter', adapterDir, '--behaviour', '--device', 'dawn', '--json']);
    expect(b.code, b.stdout + b.stderr).toBe(0);
    expect(JSON.parse(b.stdout).behaviour.ok).toBe(true);
  }, 180_000);

  for (const device of ['webgpu', 'dawn'] as const) {
    it(`--device ${device}: the same DoRA merge (GPU LoRA sum, the same DoRA step)`, async () => {
      const out = join(work, `out-${device}`);
      const r = await runLorafuse(['merge', baseDir, adapterDir, '--out', out, '--device', device, '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).device).toBe(device);
      await checkDoraOutput(out, 1e-5);
    }, 120_000);
  }
});

describe('DoRA tensors that disagree with use_dora', () => {
  it('use_dora without magnitude vectors: doctor lists them, merge refuses naming one, nothing written', async () => {
    const cfg = JSON.parse(await readFile(join(adapterDir, 'adapter_config.json'), 'utf8'));
    const plain = await makeLoraAdapter({ seed: 12, modules: gpt2LoraModules(E, [0, 1], ['attn.c_attn'], 3), config: { ...cfg, target_modules: ['c_attn'] } });
    const dir = await writeDir(join(work, 'no-magnitudes'), plain.files);
    const d = await runLorafuse(['doctor', baseDir, dir, '--json']);
    expect(d.code).toBe(2);
    const finding = JSON.parse(d.stdout).findings.find((f: { code: string }) => f.code === 'DORA_MAGNITUDE_MISSING');
    expect(finding.message).toMatch(/2 of 2 LoRA module\(s\)/);
    expect(finding.message).toContain('transformer.h.1.attn.c_attn.lora_magnitude_vector');
    expect(JSON.parse(d.stdout).findings.filter((f: { code: string }) => f.code === 'DORA_MAGNITUDE_MISSING')).toHaveLength(1);
    const out = join(work, 'o-missing');
    const m = await runLorafuse(['merge', baseDir, dir, '--out', out, '--device', 'cpu']);
    expect(m.code).toBe(2);
    expect(m.stderr).toContain('base_model.model.transformer.h.0.attn.c_attn.lora_magnitude_vector');
    expect(existsSync(out)).toBe(false);
  });

  it('magnitude vectors without use_dora: doctor reports them, merge refuses naming one', async () => {
    const cfg = JSON.parse(await readFile(join(adapterDir, 'adapter_config.json'), 'utf8'));
    const dir = await writeDir(join(work, 'stray'), { 'adapter_config.json': JSON.stringify({ ...cfg, use_dora: false }), 'adapter_model.safetensors': await readFile(join(adapterDir, 'adapter_model.safetensors')) });
    const d = await runLorafuse(['doctor', baseDir, dir]);
    expect(d.code).toBe(2);
    expect(d.stdout).toMatch(/DORA_WITHOUT_USE_DORA/);
    const m = await runLorafuse(['merge', baseDir, dir, '--out', join(work, 'o-stray'), '--device', 'cpu']);
    expect(m.code).toBe(2);
    expect(m.stderr).toMatch(/lora_magnitude_vector/);
    expect(m.stderr).toMatch(/use_dora/);
  });
});
