import { describe, expect, it } from 'vitest';
import { InputError } from '../errors.js';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter, type AdapterFixtureOptions } from '../testing/fixtures.js';
import { planInputOf } from '../testing/plan-input.js';
import { planMerge } from './plan-merge.js';
import type { MergePlan, PlanMergeOptions } from './types.js';

async function plan(adapterOpts: AdapterFixtureOptions, options?: PlanMergeOptions): Promise<MergePlan> {
  const base = await makeGpt2Checkpoint({ nEmbd: 16, nLayer: 2, nHead: 2, vocabSize: 30 });
  const adapter = await makeLoraAdapter(adapterOpts);
  return planMerge(await planInputOf(base, [adapter], options));
}

const vec = (n: number, v = 0.5) => new Float32Array(n).fill(v);
const loraBias = (module: string, n: number) => ({ name: `${module}.lora_B.bias`, shape: [n], values: vec(n) });

describe('lora_bias', () => {
  it('adds scale·lora_B.bias to the module bias, starting from a saved trained bias when there is one', async () => {
    const p = await plan({
      modules: gpt2LoraModules(16, [0], ['attn.c_attn', 'mlp.c_fc'], 2),
      config: { lora_bias: true, lora_alpha: 8, r: 2, bias: 'lora_only', target_modules: ['c_attn', 'c_fc'] },
      extraTensors: [
        loraBias('transformer.h.0.attn.c_attn', 48),
        loraBias('transformer.h.0.mlp.c_fc', 64),
        { name: 'transformer.h.0.mlp.c_fc.base_layer.bias', shape: [64], values: vec(64, 1) },
      ],
    });
    const byName = new Map(p.tensors.map((t) => [t.name, t]));
    const attn = byName.get('transformer.h.0.attn.c_attn.bias')!.source;
    expect(attn.kind).toBe('bias');
    if (attn.kind !== 'bias') throw new Error();
    expect(attn.base.file).toBe('base/model.safetensors');
    expect(attn.terms).toMatchObject([{ modulePath: 'transformer.h.0.attn.c_attn', scale: 4 }]);
    const fc = byName.get('transformer.h.0.mlp.c_fc.bias')!.source;
    if (fc.kind !== 'bias') throw new Error('c_fc bias should take its lora_B bias');
    expect(fc.base.name).toBe('base_model.model.transformer.h.0.mlp.c_fc.base_layer.bias');
    expect(p.summary.merged).toBe(4);
    expect(p.findings.map((f) => f.code)).toContain('LORA_BIAS_MERGED');
  });

  it('refuses a lora_B bias on lm_head, which has no bias, naming the module', async () => {
    const err = await plan({
      modules: [{ module: 'lm_head', inFeatures: 16, outFeatures: 30, rank: 2 }],
      config: { lora_bias: true, target_modules: ['lm_head'] },
      extraTensors: [loraBias('lm_head', 30)],
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).code).toBe('LORA_BIAS_WITHOUT_BASE_BIAS');
    expect((err as InputError).message).toMatch(/"lm_head" has no bias/);
  });

  it('refuses a lora_B bias that does not fit the module bias', async () => {
    const err = await plan({ modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2), config: { lora_bias: true }, extraTensors: [loraBias('transformer.h.0.attn.c_attn', 47)] }).catch((e: unknown) => e);
    expect((err as InputError).code).toBe('ADAPTER_BASE_SHAPE_MISMATCH');
  });

  it('refuses a lora_B bias without the module\'s LoRA weights', async () => {
    const err = await plan({ modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2), config: { lora_bias: true }, extraTensors: [loraBias('transformer.h.1.attn.c_attn', 48)] }).catch((e: unknown) => e);
    expect((err as InputError).code).toBe('ADAPTER_LORA_INCOMPLETE');
  });

  it('ignores lora_B biases when the config says lora_bias: false, as PEFT does; --follow tensors merges them', async () => {
    const opts = { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2), extraTensors: [loraBias('transformer.h.0.attn.c_attn', 48)] };
    const p = await plan(opts);
    expect(p.tensors.find((t) => t.name === 'transformer.h.0.attn.c_attn.bias')!.source.kind).toBe('copy');
    expect(p.findings.find((f) => f.code === 'LORA_BIAS_IGNORED')).toMatchObject({ severity: 'warning', subject: 'lora_bias' });
    const t = await plan(opts, { follow: 'tensors' });
    expect(t.tensors.find((x) => x.name === 'transformer.h.0.attn.c_attn.bias')!.source.kind).toBe('bias');
  });
});
