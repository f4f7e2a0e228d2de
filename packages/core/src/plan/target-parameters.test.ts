import { describe, expect, it } from 'vitest';
import { InputError } from '../errors.js';
import { makeGpt2Checkpoint, makeLoraAdapter, type AdapterFixtureOptions } from '../testing/fixtures.js';
import { planInputOf } from '../testing/plan-input.js';
import { planMerge } from './plan-merge.js';
import type { MergePlan } from './types.js';

async function plan(adapterOpts: AdapterFixtureOptions): Promise<MergePlan> {
  const base = await makeGpt2Checkpoint({ nEmbd: 16, nLayer: 2, nHead: 2, vocabSize: 30 });
  const adapter = await makeLoraAdapter(adapterOpts);
  return planMerge(await planInputOf(base, [adapter]));
}

describe('target_parameters (PEFT ParamWrapper)', () => {
  it('lays scale·B·A on the Conv1D weight as stored (A [r, shape[1]], B [shape[0], r]), patterns against the parameter name', async () => {
    const p = await plan({
      // PEFT: in = shape[1], out = shape[0] of the stored [16, 48] c_attn weight and the square [16, 16] attn.c_proj.
      modules: [
        { module: 'transformer.h.0.attn.c_attn', inFeatures: 48, outFeatures: 16, rank: 2 },
        { module: 'transformer.h.1.attn.c_proj', inFeatures: 16, outFeatures: 16, rank: 4 },
      ],
      config: { target_modules: [], target_parameters: ['attn.c_attn.weight', 'attn.c_proj.weight'], r: 2, lora_alpha: 4, rank_pattern: { 'attn.c_proj.weight': 4 }, alpha_pattern: { 'h.1.attn.c_proj.weight': 2 } },
    });
    const byName = new Map(p.tensors.map((t) => [t.name, t.source]));
    const attn = byName.get('transformer.h.0.attn.c_attn.weight')!;
    if (attn.kind !== 'merge') throw new Error('c_attn should merge');
    expect(attn.deltas[0]).toMatchObject({ orientation: 'linear', rows: 16, cols: 48, rank: 2, scale: 2 });
    const proj = byName.get('transformer.h.1.attn.c_proj.weight')!;
    if (proj.kind !== 'merge') throw new Error('c_proj should merge');
    expect(proj.deltas[0]).toMatchObject({ orientation: 'linear', rank: 4, alpha: 2, scale: 0.5 });
    expect(p.findings.map((f) => f.code)).not.toContain('FAN_IN_FAN_OUT_IGNORED');
  });

  it('refuses module-style factors on a wrapped parameter (shapes of the transposed layout), and wrapped embeddings, by name', async () => {
    const wrong = await plan({ modules: [{ module: 'transformer.h.0.attn.c_attn', inFeatures: 16, outFeatures: 48, rank: 2 }], config: { target_modules: [], target_parameters: ['attn.c_attn.weight'] } }).catch((e: unknown) => e);
    expect((wrong as InputError).code).toBe('ADAPTER_BASE_SHAPE_MISMATCH');
    const wte = await plan({ modules: [{ module: 'transformer.wte', inFeatures: 16, outFeatures: 30, rank: 2 }], config: { target_modules: [], target_parameters: ['transformer.wte.weight'] } }).catch((e: unknown) => e);
    expect(wte).toBeInstanceOf(InputError);
    expect(wte).toMatchObject({ code: 'ADAPTER_UNSUPPORTED', subject: 'target_parameters' });
    expect((wte as InputError).message).toMatch(/"transformer\.wte\.weight", the input embedding/);
  });
});
