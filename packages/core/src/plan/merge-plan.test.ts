import { describe, expect, it } from 'vitest';
import { InputError } from '../errors.js';
import { memorySource } from '../io.js';
import { parseAdapterConfig } from '../peft/adapter-config.js';
import { readSafetensorsHeader } from '../safetensors/header.js';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter, type AdapterFixtureOptions, type Gpt2FixtureOptions } from '../testing/fixtures.js';
import { planMerge, type MergePlan } from './merge-plan.js';

async function plan(baseOpts: Gpt2FixtureOptions, adapterOpts: AdapterFixtureOptions): Promise<MergePlan> {
  const base = await makeGpt2Checkpoint(baseOpts);
  const adapter = await makeLoraAdapter(adapterOpts);
  return planMerge({
    base: { label: 'base', config: base.config, files: [await readSafetensorsHeader(memorySource('base/model.safetensors', base.files['model.safetensors']!))] },
    adapter: {
      label: 'adapter',
      config: parseAdapterConfig(new TextDecoder().decode(adapter.files['adapter_config.json']), 'adapter/adapter_config.json'),
      file: await readSafetensorsHeader(memorySource('adapter/adapter_model.safetensors', adapter.files['adapter_model.safetensors']!)),
    },
  });
}

async function planError(baseOpts: Gpt2FixtureOptions, adapterOpts: AdapterFixtureOptions): Promise<InputError> {
  try {
    await plan(baseOpts, adapterOpts);
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    return e as InputError;
  }
  throw new Error('expected planMerge to refuse');
}

describe('planMerge', () => {
  it('merges Conv1D targets transposed, scales per module, copies everything else', async () => {
    const p = await plan({}, {
      modules: gpt2LoraModules(16, [0, 1], ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'], (m) => (m.endsWith('c_fc') ? 6 : 4)),
      config: { r: 4, lora_alpha: 8, rank_pattern: { c_fc: 6 }, alpha_pattern: { '^transformer.h.1.mlp.c_proj': 3 }, target_modules: ['c_attn', 'c_proj', 'c_fc'] },
    });
    expect(p.summary.merged).toBe(8);
    expect(p.summary.copied).toBe(p.tensors.length - 8);
    const byName = new Map(p.tensors.map((t) => [t.name, t]));
    const attn = byName.get('transformer.h.0.attn.c_attn.weight')!;
    expect(attn.source.kind).toBe('merge');
    if (attn.source.kind !== 'merge') throw new Error();
    expect(attn.source.deltas[0]).toMatchObject({ orientation: 'transposed', rows: 16, cols: 48, rank: 4, alpha: 8, scale: 2 });
    const fc = byName.get('transformer.h.0.mlp.c_fc.weight')!;
    if (fc.source.kind !== 'merge') throw new Error();
    expect(fc.source.deltas[0]).toMatchObject({ rank: 6, scale: 8 / 6 });
    const proj1 = byName.get('transformer.h.1.mlp.c_proj.weight')!;
    if (proj1.source.kind !== 'merge') throw new Error();
    expect(proj1.source.deltas[0]).toMatchObject({ alpha: 3, scale: 3 / 4, rows: 64, cols: 16 });
    expect(byName.get('transformer.wte.weight')!.source.kind).toBe('copy');
    expect(p.outputConfig).toBeNull();
    expect(p.findings.map((f) => f.code)).toContain('FAN_IN_FAN_OUT_IGNORED');
  });

  it('maps adapters without the base_model.model. prefix and bare GPT2Model bases', async () => {
    const p = await plan({ layout: 'bare', withAttnBuffers: true }, { modules: gpt2LoraModules(16, [1], ['attn.c_attn'], 2), withoutPrefix: true });
    const merged = p.tensors.filter((t) => t.source.kind === 'merge').map((t) => t.name);
    expect(merged).toEqual(['h.1.attn.c_attn.weight']);
    expect(p.tensors.some((t) => t.name === 'h.0.attn.bias' && t.source.kind === 'copy')).toBe(true);
  });

  it('merges lm_head as Linear when the base stores it untied', async () => {
    const p = await plan({ untied: true }, { modules: [{ module: 'lm_head', inFeatures: 16, outFeatures: 50, rank: 2 }], config: { target_modules: ['lm_head'] } });
    const head = p.tensors.find((t) => t.name === 'lm_head.weight')!;
    if (head.source.kind !== 'merge') throw new Error('lm_head should merge');
    expect(head.source.deltas[0]).toMatchObject({ orientation: 'linear', rows: 50, cols: 16 });
  });

  it('refuses a delta whose shape disagrees with the base weight, naming both shapes', async () => {
    const e = await planError({ nEmbd: 16 }, { modules: [{ module: 'transformer.h.0.attn.c_attn', inFeatures: 32, outFeatures: 96, rank: 2 }] });
    expect(e.code).toBe('ADAPTER_BASE_SHAPE_MISMATCH');
    expect(e.message).toMatch(/\[32, 96\].*\[16, 48\]/);
  });

  it('refuses LoRA factors for a module the base does not have', async () => {
    const e = await planError({ nLayer: 1 }, { modules: gpt2LoraModules(16, [3], ['attn.c_attn'], 2) });
    expect(e.code).toBe('ADAPTER_TARGET_MISSING');
    expect(e.message).toContain('transformer.h.3.attn.c_attn');
  });

  it('refuses features that are not merged yet, by name, instead of skipping them', async () => {
    expect((await planError({}, { modules: [{ module: 'lm_head', inFeatures: 16, outFeatures: 50, rank: 2 }] })).message).toMatch(/tied lm_head/);
    expect((await planError({}, { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2), config: { use_dora: true } })).message).toMatch(/DoRA/);
    const emb = await planError({}, { modules: [], extraTensors: [{ name: 'transformer.wte.lora_embedding_A', shape: [2, 50], values: new Float32Array(100) }] });
    expect(emb.message).toMatch(/LoRA on an embedding/);
    const mts = await planError({}, { modules: [], extraTensors: [{ name: 'lm_head.weight', shape: [50, 16], values: new Float32Array(800) }] });
    expect(mts.message).toMatch(/lm_head.weight/);
    const bias = await planError({}, { modules: [], extraTensors: [{ name: 'transformer.h.0.attn.c_attn.lora_B.bias', shape: [48], values: new Float32Array(48) }] });
    expect(bias.message).toMatch(/lora_bias/);
  });

  it('refuses an incomplete LoRA pair and A/B rank disagreement', async () => {
    const incomplete = await planError({}, { modules: [], extraTensors: [{ name: 'transformer.h.0.attn.c_attn.lora_A.weight', shape: [2, 16], values: new Float32Array(32) }] });
    expect(incomplete.code).toBe('ADAPTER_LORA_INCOMPLETE');
    const rank = await planError({}, {
      modules: [],
      extraTensors: [
        { name: 'transformer.h.0.attn.c_attn.lora_A.weight', shape: [2, 16], values: new Float32Array(32) },
        { name: 'transformer.h.0.attn.c_attn.lora_B.weight', shape: [48, 3], values: new Float32Array(144) },
      ],
    });
    expect(rank.code).toBe('ADAPTER_LORA_SHAPE');
  });

  it('adds a sequence-classification head from modules_to_save and changes the architecture', async () => {
    const p = await plan({}, {
      modules: gpt2LoraModules(16, [0, 1], ['attn.c_attn'], 2),
      config: { task_type: 'SEQ_CLS', modules_to_save: ['classifier', 'score'] },
      extraTensors: [{ name: 'score.weight', shape: [3, 16], values: new Float32Array(48).fill(0.5) }],
    });
    const score = p.tensors.find((t) => t.name === 'score.weight')!;
    expect(score.source.kind).toBe('replace');
    expect(p.outputConfig?.['architectures']).toEqual(['GPT2ForSequenceClassification']);
    expect(Object.keys(p.outputConfig?.['id2label'] as object)).toHaveLength(3);
  });

  it('replaces trained biases (bias="all") with the adapter tensor', async () => {
    const p = await plan({}, { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2), config: { bias: 'all' }, extraTensors: [{ name: 'transformer.h.0.attn.c_attn.base_layer.bias', shape: [48], values: new Float32Array(48).fill(1) }] });
    const b = p.tensors.find((t) => t.name === 'transformer.h.0.attn.c_attn.bias')!;
    expect(b.source).toMatchObject({ kind: 'replace', reason: 'trained_bias' });
  });
});
