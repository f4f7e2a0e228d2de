import { describe, expect, it } from 'vitest';
import { InputError } from '../errors.js';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter, type AdapterFixtureOptions, type Gpt2FixtureOptions } from '../testing/fixtures.js';
import { planInputOf } from '../testing/plan-input.js';
import { planMerge } from './plan-merge.js';
import { resolveTie } from './tie.js';
import type { MergePlan, PlanMergeOptions } from './types.js';

async function plan(baseOpts: Gpt2FixtureOptions, adapterOpts: AdapterFixtureOptions, options?: PlanMergeOptions): Promise<MergePlan> {
  const base = await makeGpt2Checkpoint(baseOpts);
  const adapter = await makeLoraAdapter(adapterOpts);
  return planMerge(await planInputOf(base, [adapter], options));
}

async function planError(baseOpts: Gpt2FixtureOptions, adapterOpts: AdapterFixtureOptions, options?: PlanMergeOptions): Promise<InputError> {
  try {
    await plan(baseOpts, adapterOpts, options);
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

  it('plans DoRA: each module gets its magnitude vector and the axis of its output features', async () => {
    const modules = [...gpt2LoraModules(16, [0], ['attn.c_attn', 'mlp.c_fc'], 2), { module: 'lm_head', inFeatures: 16, outFeatures: 50, rank: 2 }];
    const p = await plan({ untied: true }, { modules, dora: true, config: { target_modules: ['c_attn', 'c_fc', 'lm_head'] } });
    const byName = new Map(p.tensors.map((t) => [t.name, t.source]));
    const attn = byName.get('transformer.h.0.attn.c_attn.weight')!;
    if (attn.kind !== 'merge') throw new Error('not a merge');
    expect(attn.dora).toMatchObject([{ adapter: 'adapter', featureAxis: 'column', magnitude: { name: 'base_model.model.transformer.h.0.attn.c_attn.lora_magnitude_vector', shape: [48] } }]);
    const head = byName.get('lm_head.weight')!;
    if (head.kind !== 'merge') throw new Error('not a merge');
    expect(head.dora).toMatchObject([{ featureAxis: 'row', magnitude: { shape: [50] } }]);
    // Plain LoRA plans no DoRA step.
    const plain = await plan({}, { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2) });
    const source = plain.tensors.find((t) => t.name === 'transformer.h.0.attn.c_attn.weight')!.source;
    expect(source.kind === 'merge' && source.dora).toBe(undefined);
  });

  it('refuses DoRA tensors that do not fit, naming the tensor', async () => {
    const modules = gpt2LoraModules(16, [0], ['attn.c_attn'], 2);
    const missing = await planError({}, { modules, config: { use_dora: true } });
    expect(missing.code).toBe('DORA_MAGNITUDE_MISSING');
    expect(missing.subject).toBe('base_model.model.transformer.h.0.attn.c_attn.lora_magnitude_vector');
    const stray = await planError({}, { modules, dora: true, config: { use_dora: false } });
    expect(stray.code).toBe('DORA_WITHOUT_USE_DORA');
    expect(stray.message).toContain('transformer.h.0.attn.c_attn.lora_magnitude_vector');
    const shape = await planError({}, { modules: [], config: { use_dora: true, target_modules: ['c_attn'] }, extraTensors: [
      { name: 'transformer.h.0.attn.c_attn.lora_A.weight', shape: [2, 16], values: new Float32Array(32) },
      { name: 'transformer.h.0.attn.c_attn.lora_B.weight', shape: [48, 2], values: new Float32Array(96) },
      { name: 'transformer.h.0.attn.c_attn.lora_magnitude_vector', shape: [16], values: new Float32Array(16) },
    ] });
    expect(shape.code).toBe('DORA_MAGNITUDE_SHAPE');
    expect(shape.message).toMatch(/48 output features/);
    const orphan = await planError({}, { modules: [], config: { use_dora: true }, extraTensors: [{ name: 'transformer.h.0.attn.c_attn.lora_magnitude_vector', shape: [48], values: new Float32Array(48) }] });
    expect(orphan.code).toBe('ADAPTER_LORA_INCOMPLETE');
  });

  it('a DoRA lm_head on a tied base leaves wte on the base: the tie is pending on the two matrices', async () => {
    const p = await plan({}, { modules: [{ module: 'lm_head', inFeatures: 16, outFeatures: 50, rank: 2 }], dora: true, config: { target_modules: ['lm_head'] } });
    expect(p.tie.state).toBe('pending');
    if (p.tie.state !== 'pending') throw new Error();
    expect(p.tie.touched).toBe('lm_head: DoRA');
    expect(p.tie.wte.source.kind).toBe('copy');
    expect(p.tie.lmHead.source).toMatchObject({ kind: 'merge', dora: [{ featureAxis: 'row' }] });
  });

  it('refuses features that are not merged yet, by name, instead of skipping them', async () => {
    const bias = await planError({}, { modules: [], config: { lora_bias: true }, extraTensors: [{ name: 'transformer.h.0.attn.c_attn.lora_B.bias', shape: [48], values: new Float32Array(48) }] });
    expect(bias.message).toMatch(/lora_B bias, but module "transformer.h.0.attn.c_attn" has no lora_A\/lora_B/);
    const tokens = await planError({}, { modules: [], extraTensors: [{ name: 'transformer.wte.token_adapter.trainable_tokens_delta', shape: [2, 16], values: new Float32Array(32) }] });
    expect(tokens.code).toBe('ADAPTER_TOKEN_INDICES_MISSING');
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

const differ = { equal: false, differingRows: 50, maxAbsDiff: 0.5 };
const lmHeadLora = { modules: [{ module: 'lm_head', inFeatures: 16, outFeatures: 50, rank: 2 }], config: { target_modules: ['lm_head'] } };

describe('tie decision', () => {
  it('keeps the tie untouched when the adapter leaves wte and lm_head alone', async () => {
    const p = await plan({}, { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2) });
    expect(p.tie.state).toBe('untouched');
    expect(p.tensors.some((t) => t.name === 'lm_head.weight')).toBe(false);
    expect(p.outputConfig).toBeNull();
  });

  it('LoRA on the tied lm_head: lm_head = base wte + delta, wte unchanged, untied when they differ', async () => {
    const p = await plan({}, lmHeadLora);
    expect(p.tie.state).toBe('pending');
    if (p.tie.state !== 'pending') throw new Error();
    expect(p.tie.lmHead.source).toMatchObject({ kind: 'merge', base: { name: 'transformer.wte.weight' }, deltas: [{ orientation: 'linear', rows: 50, cols: 16 }] });
    expect(p.tensors.find((t) => t.name === 'transformer.wte.weight')!.source.kind).toBe('copy');
    const r = resolveTie(p, differ);
    expect(r.tie).toMatchObject({ state: 'decided', decision: 'untie' });
    expect(r.tensors.find((t) => t.name === 'lm_head.weight')!.source.kind).toBe('merge');
    expect(r.outputConfig?.['tie_word_embeddings']).toBe(false);
    expect(r.configChanges.join()).toMatch(/tie_word_embeddings: true → false/);
  });

  it('LoRA on the tied wte: an Embedding delta (B·A)ᵀ on wte, lm_head keeps the base matrix', async () => {
    const p = await plan({}, { modules: [], config: { target_modules: ['wte'] }, extraTensors: [
      { name: 'transformer.wte.lora_embedding_A', shape: [3, 50], values: new Float32Array(150).fill(0.1) },
      { name: 'transformer.wte.lora_embedding_B', shape: [16, 3], values: new Float32Array(48).fill(0.2) },
    ] });
    if (p.tie.state !== 'pending') throw new Error('expected pending');
    const wte = p.tensors.find((t) => t.name === 'transformer.wte.weight')!;
    expect(wte.source).toMatchObject({ kind: 'merge', deltas: [{ orientation: 'transposed', rows: 50, cols: 16, rank: 3 }] });
    expect(p.tie.lmHead.source).toMatchObject({ kind: 'copy', from: { name: 'transformer.wte.weight' } });
  });

  it('resized vocabulary with modules_to_save ["wte", "lm_head"]: vocab_size follows; bitwise-equal matrices keep the tie', async () => {
    const full = new Float32Array(53 * 16).fill(0.25);
    const p = await plan({}, { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2), config: { modules_to_save: ['wte', 'lm_head'] }, extraTensors: [
      { name: 'transformer.wte.weight', shape: [53, 16], values: full },
      { name: 'lm_head.weight', shape: [53, 16], values: full },
    ] });
    expect(p.outputConfig?.['vocab_size']).toBe(53);
    if (p.tie.state !== 'pending') throw new Error('expected pending');
    const kept = resolveTie(p, { equal: true, differingRows: 0, maxAbsDiff: 0 });
    expect(kept.tie).toMatchObject({ decision: 'keep' });
    expect(kept.tensors.some((t) => t.name === 'lm_head.weight')).toBe(false);
    expect(kept.outputConfig?.['tie_word_embeddings']).toBeUndefined();
    const untied = resolveTie(p, differ);
    expect(untied.tensors.find((t) => t.name === 'lm_head.weight')!.shape).toEqual([53, 16]);
  });

  it('refuses a resized wte without a resized lm_head, naming both shapes', async () => {
    const e = await planError({}, { modules: [], config: { modules_to_save: ['wte'] }, extraTensors: [{ name: 'transformer.wte.weight', shape: [56, 16], values: new Float32Array(56 * 16) }] });
    expect(e.code).toBe('TIED_SHAPES_DISAGREE');
    expect(e.message).toMatch(/\[56, 16\].*\[50, 16\]/);
  });

  it('--tie keep is refused when it would lose trained weights, unless --force (which says what is lost)', async () => {
    const p = await plan({}, lmHeadLora, { tie: 'keep' });
    expect(() => resolveTie(p, differ)).toThrow(/--tie keep would discard trained weights: 50 row/);
    const forced = resolveTie(await plan({}, lmHeadLora, { tie: 'keep', force: true }), differ);
    expect(forced.tie).toMatchObject({ decision: 'keep' });
    expect(forced.findings.find((f) => f.code === 'TIE_KEPT_FORCED')?.message).toMatch(/lost: 50 row/);
  });

  it('--tie untie stores both even when the adapter leaves them alone', async () => {
    const p = await plan({}, { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2) }, { tie: 'untie' });
    expect(p.tie).toMatchObject({ state: 'decided', decision: 'untie' });
    expect(p.tensors.find((t) => t.name === 'lm_head.weight')!.source).toMatchObject({ kind: 'copy', from: { name: 'transformer.wte.weight' } });
  });

  it('LoRA on a resized lm_head saved as base_layer: the delta goes onto the adapter\'s base_layer tensor', async () => {
    const p = await plan({}, { modules: [{ module: 'lm_head', inFeatures: 16, outFeatures: 52, rank: 2 }], extraTensors: [
      { name: 'lm_head.base_layer.weight', shape: [52, 16], values: new Float32Array(52 * 16) },
      { name: 'transformer.wte.weight', shape: [52, 16], values: new Float32Array(52 * 16) },
    ] });
    if (p.tie.state !== 'pending') throw new Error('expected pending');
    expect(p.tie.lmHead.source).toMatchObject({ kind: 'merge', base: { name: 'base_model.model.lm_head.base_layer.weight' } });
    expect(p.outputConfig?.['vocab_size']).toBe(52);
  });

  it('refuses a module that is both a LoRA target and a full replacement', async () => {
    const e = await planError({}, { ...lmHeadLora, extraTensors: [{ name: 'lm_head.weight', shape: [50, 16], values: new Float32Array(800) }] });
    expect(e.code).toBe('ADAPTER_CONFLICT');
  });

  it("reads PEFT's save_embedding_layers extras: <m>.modules_to_save.weight is the same trained copy, <m>.original_module.weight is ignored", async () => {
    const trained = new Float32Array(53 * 16).fill(0.5);
    const original = new Float32Array(53 * 16).fill(0.1);
    const p = await plan({}, { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2), config: { modules_to_save: ['wte', 'lm_head'] }, extraTensors: [
      { name: 'transformer.wte.weight', shape: [53, 16], values: trained },
      { name: 'transformer.wte.modules_to_save.weight', shape: [53, 16], values: trained },
      { name: 'transformer.wte.original_module.weight', shape: [53, 16], values: original },
      { name: 'lm_head.weight', shape: [53, 16], values: trained },
      { name: 'lm_head.modules_to_save.weight', shape: [53, 16], values: trained },
      { name: 'lm_head.original_module.weight', shape: [53, 16], values: original },
    ] });
    expect(p.duplicateCopies.map((d) => d.duplicate.name).sort()).toEqual(['base_model.model.lm_head.modules_to_save.weight', 'base_model.model.transformer.wte.modules_to_save.weight']);
    expect(p.findings.map((f) => f.code)).toContain('ORIGINAL_MODULE_IGNORED');
    expect(p.tensors.find((t) => t.name === 'transformer.wte.weight')!.source).toMatchObject({ kind: 'replace', from: { name: 'base_model.model.transformer.wte.weight' } });
    expect(p.outputConfig?.['vocab_size']).toBe(53);
  });

  it('trainable tokens: rows replaced at the config indices, on wte and (tied, as PEFT ties the token adapter) on lm_head', async () => {
    const rows = { name: 'transformer.wte.token_adapter.trainable_tokens_delta', shape: [2, 16], values: new Float32Array(32).fill(0.5) };
    const p = await plan({}, { modules: [], config: { trainable_token_indices: [3, 7] }, extraTensors: [rows] });
    expect(p.tensors.find((t) => t.name === 'transformer.wte.weight')!.source).toMatchObject({ kind: 'rows', indices: [3, 7] });
    if (p.tie.state !== 'pending') throw new Error('expected pending');
    expect(p.tie.lmHead.source).toMatchObject({ kind: 'rows', indices: [3, 7] });
    const bad = await planError({}, { modules: [], config: { trainable_token_indices: [3, 70] }, extraTensors: [rows] });
    expect(bad.code).toBe('ADAPTER_TOKEN_INDICES_INVALID');
    const shape = await planError({}, { modules: [], config: { trainable_token_indices: [3, 7, 9] }, extraTensors: [rows] });
    expect(shape.code).toBe('ADAPTER_BASE_SHAPE_MISMATCH');
  });
});
