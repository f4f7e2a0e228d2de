/**
 * Several adapters in one merge, end to end on the built CLI: the merged weights against an
 * independent f64 reference of W + Σ wᵢ·sᵢ·BᵢAᵢ, verify (weights and --behaviour) on the result,
 * the doctor, and the refusals (exit 2, nothing written).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter, type AdapterFixtureOptions } from '@lorafuse/core/testing';
import { expectedMerge, readCheckpoint, removeDir, runLorafuse, tempDir, worstViolation, writeDir } from './helpers.js';

let work: string;
beforeAll(async () => {
  work = await tempDir();
});
afterAll(async () => {
  await removeDir(work);
});

let counter = 0;
async function makeCase(adapters: readonly AdapterFixtureOptions[]) {
  const dir = join(work, `case${++counter}`);
  const base = await makeGpt2Checkpoint({ seed: 1 });
  await writeDir(join(dir, 'base'), base.files);
  const adapterDirs: string[] = [];
  for (const [i, opts] of adapters.entries()) {
    const a = await makeLoraAdapter({ seed: 20 + i, ...opts });
    adapterDirs.push(await writeDir(join(dir, `a${i + 1}`), a.files));
  }
  return { dir, baseDir: join(dir, 'base'), adapterDirs, out: join(dir, 'out') };
}

const lnF = (fill: number) => ({ name: 'transformer.ln_f.weight', shape: [16], values: new Float32Array(16).fill(fill) });

describe('lorafuse merge with several adapters', () => {
  it('merges W + Σ wᵢ·sᵢ·BᵢAᵢ (overlapping modules, different ranks, a negative weight), reports it, and verify/doctor agree', async () => {
    const c = await makeCase([
      { modules: gpt2LoraModules(16, [0, 1], ['attn.c_attn'], 2), config: { r: 2, lora_alpha: 4 } },
      { modules: gpt2LoraModules(16, [0], ['attn.c_attn', 'mlp.c_fc'], 4), config: { r: 4, lora_alpha: 2, modules_to_save: ['ln_f'] }, extraTensors: [lnF(1.5)] },
      { modules: gpt2LoraModules(16, [1], ['attn.c_attn'], 3), config: { r: 3, lora_alpha: 3 } },
    ]);
    const weights = [1, 0.5, -2];
    const run = await runLorafuse(['merge', c.baseDir, ...c.adapterDirs, '--out', c.out, '--device', 'cpu', `--weights=${weights.join(',')}`, '--json']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.adapters).toEqual(c.adapterDirs.map((dir, i) => ({ dir, weight: weights[i] })));
    expect(report.adapter).toBe(c.adapterDirs[0]);
    expect(report.combination.peftEquivalent).toMatch(/add_weighted_adapter\(adapters, weights, combination_type="cat"\)/);
    expect(report.loraModules.map((m: { module: string; adapter: string; scale: number }) => [m.module, m.adapter, m.scale]).sort()).toEqual([
      ['transformer.h.0.attn.c_attn', c.adapterDirs[0], 2],
      ['transformer.h.0.attn.c_attn', c.adapterDirs[1], 0.25],
      ['transformer.h.0.mlp.c_fc', c.adapterDirs[1], 0.25],
      ['transformer.h.1.attn.c_attn', c.adapterDirs[0], 2],
      ['transformer.h.1.attn.c_attn', c.adapterDirs[2], -2],
    ].sort());
    expect(report.findings.map((f: { code: string }) => f.code)).toEqual(expect.arrayContaining(['ADAPTERS_COMBINED', 'ADAPTERS_SHARE_MODULE']));
    expect(report.tensors).toMatchObject({ merged: 3, replaced: 1 });

    const base = await readCheckpoint(join(c.baseDir, 'model.safetensors'));
    const out = await readCheckpoint(join(c.out, 'model.safetensors'));
    const adapters = await Promise.all(c.adapterDirs.map((d) => readCheckpoint(join(d, 'adapter_model.safetensors'))));
    const scales = [2, 0.5 * 0.5, -2 * 1];
    for (const name of ['transformer.h.0.attn.c_attn.weight', 'transformer.h.1.attn.c_attn.weight', 'transformer.h.0.mlp.c_fc.weight']) {
      const t = base.header.byName.get(name)!;
      const module = `base_model.model.${name.replace(/\.weight$/, '')}`;
      const expected = new Float64Array(base.f32(name));
      adapters.forEach((a, i) => {
        const at = a.header.byName.get(`${module}.lora_A.weight`);
        if (!at) return;
        const delta = expectedMerge(new Float32Array(expected.length), a.f32(`${module}.lora_A.weight`), a.f32(`${module}.lora_B.weight`), at.shape[0]!, t.shape, true, scales[i]!);
        for (let k = 0; k < expected.length; k++) expected[k] = expected[k]! + delta[k]!;
      });
      expect(worstViolation(out.f32(name), expected, 1e-6, 1e-5), name).toBeLessThanOrEqual(0);
    }
    expect([...out.f32('transformer.ln_f.weight')]).toEqual(new Array(16).fill(1.5));
    expect(Buffer.from(out.raw('transformer.h.1.mlp.c_fc.weight')).equals(Buffer.from(base.raw('transformer.h.1.mlp.c_fc.weight')))).toBe(true);

    const adapterArgs = c.adapterDirs.flatMap((d) => ['--adapter', d]);
    const verified = await runLorafuse(['verify', c.out, '--base', c.baseDir, ...adapterArgs, `--weights=${weights.join(',')}`, '--behaviour', '--tokens', '3', '--json']);
    expect(verified.code, verified.stderr).toBe(0);
    const v = JSON.parse(verified.stdout);
    expect(v.adapters).toEqual(report.adapters);
    expect(v.behaviour.ok).toBe(true);
    // The same adapters with other weights are another model: verify fails on weights and on behaviour.
    const wrong = await runLorafuse(['verify', c.out, '--base', c.baseDir, ...adapterArgs, '--weights', '1,0.5,2', '--behaviour', '--tokens', '2']);
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toMatch(/FAIL transformer\.h\.1\.attn\.c_attn\.weight/);
    expect(wrong.stdout).toMatch(/behaves DIFFERENTLY/);
    // Only the first adapter is not what was merged either.
    expect((await runLorafuse(['verify', c.out, '--base', c.baseDir, '--adapter', c.adapterDirs[0]!])).code).toBe(1);

    const doctor = await runLorafuse(['doctor', c.baseDir, ...c.adapterDirs, '--json']);
    expect(doctor.code).toBe(0);
    const notes = JSON.parse(doctor.stdout).findings;
    expect(notes.find((f: { code: string }) => f.code === 'ADAPTERS_SHARE_MODULE').message).toMatch(/r=2.*r=4/);
  });

  it('--device dawn adds the weighted deltas of several adapters on the WGSL kernels; the output verifies', async () => {
    const c = await makeCase([
      { modules: gpt2LoraModules(16, [0, 1], ['attn.c_attn'], 2), config: { r: 2, lora_alpha: 4 } },
      { modules: gpt2LoraModules(16, [0], ['attn.c_attn', 'mlp.c_proj'], 8), config: { r: 8, lora_alpha: 4 } },
    ]);
    const run = await runLorafuse(['merge', c.baseDir, ...c.adapterDirs, '--out', c.out, '--device', 'dawn', '--weights=-0.5,2', '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).device).toBe('dawn');
    const args = ['verify', c.out, '--base', c.baseDir, ...c.adapterDirs.flatMap((d) => ['--adapter', d])];
    expect((await runLorafuse([...args, '--weights=-0.5,2'])).code).toBe(0);
    expect((await runLorafuse([...args, '--weights=0.5,2'])).code).toBe(1);
  });

  it('DoRA among several adapters: applied in order, the same bytes on every device, reported, and verify --behaviour agrees', async () => {
    const c = await makeCase([
      { modules: gpt2LoraModules(16, [0, 1], ['attn.c_attn'], 2), config: { r: 2, lora_alpha: 4 } },
      { modules: gpt2LoraModules(16, [0], ['attn.c_attn', 'mlp.c_fc'], 2), config: { r: 2, lora_alpha: 4 }, dora: true },
      { modules: gpt2LoraModules(16, [0, 1], ['attn.c_attn'], 4), config: { r: 4, lora_alpha: 4 }, dora: true },
    ]);
    const weights = '--weights=1,0.5,-1';
    const outs: Record<string, Awaited<ReturnType<typeof readCheckpoint>>> = {};
    for (const device of ['cpu', 'dawn'] as const) {
      const out = `${c.out}-${device}`;
      const run = await runLorafuse(['merge', c.baseDir, ...c.adapterDirs, '--out', out, '--device', device, weights, '--json']);
      expect(run.code, run.stderr).toBe(0);
      const report = JSON.parse(run.stdout);
      expect(report.combination.formula).toMatch(/a DoRA adapter trains a weight, the adapters apply in order/);
      expect(report.loraModules.filter((m: { dora: boolean }) => m.dora).map((m: { module: string; adapter: string }) => `${m.module} ${m.adapter.slice(-2)}`).sort()).toEqual(
        ['transformer.h.0.attn.c_attn a2', 'transformer.h.0.attn.c_attn a3', 'transformer.h.0.mlp.c_fc a2', 'transformer.h.1.attn.c_attn a3'],
      );
      outs[device] = await readCheckpoint(join(out, 'model.safetensors'));
    }
    // The weights DoRA trains among several adapters are computed adapter by adapter by one CPU step on every device.
    for (const name of ['transformer.h.0.attn.c_attn.weight', 'transformer.h.1.attn.c_attn.weight']) {
      expect(new Uint32Array(outs.dawn!.f32(name).buffer), name).toEqual(new Uint32Array(outs.cpu!.f32(name).buffer));
    }
    // The unmerged forward pass (PEFT's run-time DoRA, not the merge code) agrees; with other weights it does not.
    const args = ['verify', `${c.out}-cpu`, '--base', c.baseDir, ...c.adapterDirs.flatMap((d) => ['--adapter', d]), '--behaviour', '--device', 'cpu'];
    const verified = await runLorafuse([...args, weights, '--json']);
    expect(verified.code, verified.stderr).toBe(0);
    expect(JSON.parse(verified.stdout).behaviour.ok).toBe(true);
    expect((await runLorafuse([...args, '--weights=1,0.5,1'])).code).toBe(1);
  });

  it('the human report lists each adapter with its weight and what the merge equals in PEFT', async () => {
    const c = await makeCase([{ modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2) }, { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2) }]);
    const run = await runLorafuse(['merge', c.baseDir, ...c.adapterDirs, '--out', c.out, '--device', 'cpu', '--weights', '0.5,0']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`adapter 1: ${c.adapterDirs[0]}, weight 0.5`);
    expect(run.stdout).toContain(`adapter 2: ${c.adapterDirs[1]}, weight 0`);
    expect(run.stdout).toMatch(/equivalent to: PEFT's add_weighted_adapter/);
  });

  it('refuses two adapters replacing one tensor with different values: exit 2, both named, nothing written; identical values merge', async () => {
    const c = await makeCase([
      { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2), config: { modules_to_save: ['ln_f'] }, extraTensors: [lnF(1.5)] },
      { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2), config: { modules_to_save: ['ln_f'] }, extraTensors: [lnF(2.5)] },
    ]);
    const run = await runLorafuse(['merge', c.baseDir, ...c.adapterDirs, '--out', c.out, '--device', 'cpu']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`adapters ${c.adapterDirs[0]} and ${c.adapterDirs[1]} both change "transformer.ln_f.weight" with different values`);
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(c.out)).toBe(false);
    const doctor = await runLorafuse(['doctor', c.baseDir, ...c.adapterDirs]);
    expect(doctor.code).toBe(2);
    expect(doctor.stdout).toMatch(/error\s+ADAPTER_CONFLICT: .*transformer\.ln_f\.weight/);

    const same = await makeCase([
      { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2), config: { modules_to_save: ['ln_f'] }, extraTensors: [lnF(1.5)] },
      { modules: gpt2LoraModules(16, [1], ['attn.c_attn'], 2), config: { modules_to_save: ['ln_f'] }, extraTensors: [lnF(1.5)] },
    ]);
    const ok = await runLorafuse(['merge', same.baseDir, ...same.adapterDirs, '--out', same.out, '--device', 'cpu']);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('refuses one adapter\'s LoRA on a module another saves whole, before writing', async () => {
    const c = await makeCase([
      { modules: [], config: { modules_to_save: ['lm_head'] }, extraTensors: [{ name: 'lm_head.weight', shape: [50, 16], values: new Float32Array(800).fill(0.1) }] },
      { modules: [{ module: 'lm_head', inFeatures: 16, outFeatures: 50, rank: 2 }], config: { target_modules: ['lm_head'] } },
    ]);
    const run = await runLorafuse(['merge', c.baseDir, ...c.adapterDirs, '--out', c.out, '--device', 'cpu', '--json']);
    expect(run.code).toBe(2);
    expect(JSON.parse(run.stdout)).toMatchObject({ ok: false, exitCode: 2, error: { code: 'ADAPTER_CONFLICT', subject: 'lm_head.weight' } });
    expect(existsSync(c.out)).toBe(false);
  });

  it('unties a tied base when one of the adapters trains lm_head, and the untied output verifies', async () => {
    const c = await makeCase([
      { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2) },
      { modules: [{ module: 'lm_head', inFeatures: 16, outFeatures: 50, rank: 2 }], config: { target_modules: ['lm_head'] } },
    ]);
    const run = await runLorafuse(['merge', c.baseDir, ...c.adapterDirs, '--out', c.out, '--device', 'cpu', '--weights', '1,-0.5', '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).tie.decision).toBe('untie');
    const out = await readCheckpoint(join(c.out, 'model.safetensors'));
    expect(out.header.byName.has('lm_head.weight')).toBe(true);
    const verified = await runLorafuse(['verify', c.out, '--base', c.baseDir, ...c.adapterDirs.flatMap((d) => ['--adapter', d]), '--weights', '1,-0.5']);
    expect(verified.code, verified.stdout).toBe(0);
    expect(verified.stdout).toContain(`loads as base + 1 × ${c.adapterDirs[0]} + -0.5 × ${c.adapterDirs[1]}`);
  });

  it('--weights must give one finite number per adapter (exit 2)', async () => {
    const c = await makeCase([{ modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2) }, { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2) }]);
    const count = await runLorafuse(['merge', c.baseDir, ...c.adapterDirs, '--out', c.out, '--weights', '1']);
    expect(count.code).toBe(2);
    expect(count.stderr).toMatch(/--weights gives 1 weight\(s\) for 2 adapter\(s\)/);
    const bad = await runLorafuse(['merge', c.baseDir, ...c.adapterDirs, '--out', c.out, '--weights', '1,x']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/got "x"/);
    const verifyCount = await runLorafuse(['verify', c.out, '--base', c.baseDir, '--adapter', c.adapterDirs[0]!, '--weights', '1,1']);
    expect(verifyCount.code).toBe(2);
    expect(existsSync(c.out)).toBe(false);
  });
});
