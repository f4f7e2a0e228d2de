/**
 * NaN/Inf produced by a merge stop it — counted on what is written, so an F16/BF16 result that is finite
 * in f32 but overflows when rounded is caught too — and `--allow-nonfinite` output passes
 * `lorafuse verify --allow-nonfinite`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countNonFiniteEncoded } from '@lorafuse/core';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter } from '@lorafuse/core/testing';
import { readCheckpoint, removeDir, runLorafuse, tempDir, writeDir } from './helpers.js';

let work: string;
beforeAll(async () => {
  work = await tempDir('lorafuse-nonfinite-');
});
afterAll(async () => {
  await removeDir(work);
});

/** A base of `dtype` and an adapter whose scale (alpha / r) makes |ΔW| ~ 1e6: finite in f32, beyond F16's 65504. */
async function overflowCase(name: string, dtype: 'F16' | 'BF16' | 'F32', alpha: number) {
  const dir = join(work, name);
  const base = await makeGpt2Checkpoint({ seed: 3, nEmbd: 16, nLayer: 1, nHead: 2, vocabSize: 40, nPositions: 16, dtype });
  const adapter = await makeLoraAdapter({ seed: 4, modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 4), config: { lora_alpha: alpha, r: 4 } });
  await writeDir(join(dir, 'base'), base.files);
  await writeDir(join(dir, 'adapter'), adapter.files);
  return { baseDir: join(dir, 'base'), adapterDir: join(dir, 'adapter'), out: join(dir, 'out') };
}

describe('non-finite merge results', () => {
  for (const device of ['cpu', 'dawn'] as const) {
    it(`an F16 base that overflows only when rounded: exit 2 naming the tensor, nothing written (--device ${device})`, async () => {
      const c = await overflowCase(`f16-${device}`, 'F16', 4e6);
      const r = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', c.out, '--device', device, '--json']);
      expect(r.code, r.stderr).toBe(2);
      const doc = JSON.parse(r.stdout);
      expect(doc.error.code).toBe('MERGE_NONFINITE');
      expect(doc.error.message).toMatch(/transformer\.h\.0\.attn\.c_attn\.weight.*NaN\/Inf value\(s\) once rounded to F16/);
      expect(existsSync(c.out)).toBe(false);
    });
  }

  it('an F32 base stays finite at the same scale, so it merges', async () => {
    const c = await overflowCase('f32', 'F32', 4e6);
    const r = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', c.out, '--device', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
  });

  it('--allow-nonfinite writes the Inf values, and lorafuse verify --allow-nonfinite accepts its own output', async () => {
    const c = await overflowCase('f16-allowed', 'F16', 4e6);
    const r = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', c.out, '--device', 'cpu', '--allow-nonfinite']);
    expect(r.code, r.stderr).toBe(0);
    const out = await readCheckpoint(join(c.out, 'model.safetensors'));
    expect(countNonFiniteEncoded('F16', out.raw('transformer.h.0.attn.c_attn.weight'))).toBeGreaterThan(0);
    const v = await runLorafuse(['verify', c.out, '--base', c.baseDir, '--adapter', c.adapterDir, '--allow-nonfinite']);
    expect(v.code, v.stdout + v.stderr).toBe(0);
  });
});
