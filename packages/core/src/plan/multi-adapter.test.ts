import { describe, expect, it } from 'vitest';
import { InputError } from '../errors.js';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter, type AdapterFixtureOptions, type Gpt2FixtureOptions } from '../testing/fixtures.js';
import { planInputOf } from '../testing/plan-input.js';
import { planMerge, tryPlanMerge } from './plan-merge.js';
import { resolveTie } from './tie.js';
import type { PlanMergeInput } from './types.js';

async function inputs(baseOpts: Gpt2FixtureOptions, adapters: ReadonlyArray<AdapterFixtureOptions & { weight?: number }>): Promise<PlanMergeInput> {
  const made = [];
  for (const [i, opts] of adapters.entries()) {
    made.push({ files: (await makeLoraAdapter({ seed: 10 + i, ...opts })).files, label: `a${i + 1}`, ...(opts.weight !== undefined ? { weight: opts.weight } : {}) });
  }
  return planInputOf(await makeGpt2Checkpoint(baseOpts), made);
}

function refusal(input: PlanMergeInput): InputError {
  const outcome = tryPlanMerge(input);
  expect(outcome).toBeInstanceOf(InputError);
  return outcome as InputError;
}

const full = (name: string, rows: number, fill: number) => ({ name, shape: [rows, 16], values: new Float32Array(rows * 16).fill(fill) });

describe('several adapters in one merge', () => {
  it('adds every adapter\'s delta on a shared module, in adapter order, each scale times its weight', async () => {
    const input = await inputs({}, [
      { modules: gpt2LoraModules(16, [0], ['attn.c_attn', 'mlp.c_fc'], 2), config: { r: 2, lora_alpha: 4 } },
      { modules: gpt2LoraModules(16, [0, 1], ['attn.c_attn'], 4), config: { r: 4, lora_alpha: 4 }, weight: 0.5 },
      { modules: gpt2LoraModules(16, [1], ['attn.c_attn'], 2), config: { r: 2, lora_alpha: 2 }, weight: -1 },
    ]);
    const p = planMerge(input);
    expect(p.adapters).toEqual([{ label: 'a1', weight: 1 }, { label: 'a2', weight: 0.5 }, { label: 'a3', weight: -1 }]);
    const byName = new Map(p.tensors.map((t) => [t.name, t.source]));
    const attn0 = byName.get('transformer.h.0.attn.c_attn.weight')!;
    if (attn0.kind !== 'merge') throw new Error('c_attn 0 should merge');
    expect(attn0.deltas.map((d) => [d.adapter, d.rank, d.weight, d.scale])).toEqual([['a1', 2, 1, 2], ['a2', 4, 0.5, 0.5]]);
    expect(attn0.deltas.every((d) => d.a.file !== attn0.base.file)).toBe(true);
    const attn1 = byName.get('transformer.h.1.attn.c_attn.weight')!;
    if (attn1.kind !== 'merge') throw new Error('c_attn 1 should merge');
    expect(attn1.deltas.map((d) => [d.adapter, d.scale])).toEqual([['a2', 0.5], ['a3', -1]]);
    expect(p.summary.merged).toBe(3);
    expect(p.summary.loraModules).toEqual(['transformer.h.0.attn.c_attn', 'transformer.h.0.mlp.c_fc', 'transformer.h.1.attn.c_attn']);
    const combined = p.findings.find((f) => f.code === 'ADAPTERS_COMBINED')!;
    expect(combined.message).toMatch(/a1: 1, a2: 0.5, a3: -1/);
    expect(combined.message).toMatch(/combination_type="cat"/);
    const shared = p.findings.filter((f) => f.code === 'ADAPTERS_SHARE_MODULE').map((f) => f.subject);
    expect(shared).toEqual(['transformer.h.0.attn.c_attn.weight', 'transformer.h.1.attn.c_attn.weight']);
  });

  it('one adapter with weight 1 plans exactly as before (no combination note); a weight alone adds it', async () => {
    const one = planMerge(await inputs({}, [{ modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2) }]));
    expect(one.findings.map((f) => f.code)).not.toContain('ADAPTERS_COMBINED');
    const weighted = planMerge(await inputs({}, [{ modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2), weight: 0 }]));
    expect(weighted.findings.map((f) => f.code)).toContain('ADAPTERS_COMBINED');
    const d = weighted.tensors.find((t) => t.source.kind === 'merge')!.source;
    if (d.kind !== 'merge') throw new Error();
    expect(d.deltas[0]!.scale).toBe(0);
  });

  it('full tensors resolve across adapters: another module is fine, the same one must be byte-identical (checked by the executor)', async () => {
    const p = planMerge(await inputs({}, [
      { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2), config: { modules_to_save: ['ln_f'] }, extraTensors: [{ name: 'transformer.ln_f.weight', shape: [16], values: new Float32Array(16).fill(2) }] },
      { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2), config: { modules_to_save: ['ln_f'] }, extraTensors: [{ name: 'transformer.ln_f.weight', shape: [16], values: new Float32Array(16).fill(2) }] },
    ]));
    expect(p.tensors.find((t) => t.name === 'transformer.ln_f.weight')!.source).toMatchObject({ kind: 'replace', from: { file: 'a1/adapter_model.safetensors' } });
    expect(p.duplicateCopies).toHaveLength(1);
    expect(p.duplicateCopies[0]).toMatchObject({ keptBy: 'a1', duplicateBy: 'a2', kept: { file: 'a1/adapter_model.safetensors' }, duplicate: { file: 'a2/adapter_model.safetensors' } });
  });

  it('refuses two adapters replacing one tensor with tensors of different shapes or dtypes, naming both and the tensor', async () => {
    const e = refusal(await inputs({}, [
      { modules: [], config: { modules_to_save: ['wte', 'lm_head'] }, extraTensors: [full('transformer.wte.weight', 50, 1)] },
      { modules: [], config: { modules_to_save: ['wte'] }, extraTensors: [{ ...full('transformer.wte.weight', 50, 1), dtype: 'F16' }] },
    ]));
    expect(e.code).toBe('ADAPTER_CONFLICT');
    expect(e.message).toMatch(/adapters a1 and a2 both change "transformer\.wte\.weight".*F32 \[50, 16\] and F16 \[50, 16\]/);
    expect(e.subject).toBe('transformer.wte.weight');
  });

  it('refuses one adapter\'s LoRA on a module another replaces (PEFT keeps one active adapter per saved module)', async () => {
    const e = refusal(await inputs({}, [
      { modules: [], config: { modules_to_save: ['lm_head'] }, extraTensors: [full('lm_head.weight', 50, 0.5)] },
      { modules: [{ module: 'lm_head', inFeatures: 16, outFeatures: 50, rank: 2 }], config: { target_modules: ['lm_head'] } },
    ]));
    expect(e.code).toBe('ADAPTER_CONFLICT');
    expect(e.message).toMatch(/a1 replaces it with a full tensor and a2 trains it with LoRA/);
    expect(e.hint).toMatch(/one after the other/);
  });

  it('refuses trainable tokens from two adapters on one embedding at different rows', async () => {
    const rows = (v: number) => ({ name: 'transformer.wte.token_adapter.trainable_tokens_delta', shape: [2, 16], values: new Float32Array(32).fill(v) });
    const e = refusal(await inputs({}, [
      { modules: [], config: { trainable_token_indices: [1, 2] }, extraTensors: [rows(1)] },
      { modules: [], config: { trainable_token_indices: [3, 4] }, extraTensors: [rows(2)] },
    ]));
    expect(e.code).toBe('ADAPTER_CONFLICT');
    expect(e.message).toMatch(/adapters a1 and a2 both change "transformer\.wte\.weight": both train tokens of it .*PEFT activates one adapter's trainable tokens per embedding at a time/);
  });

  it('decides the tie on the combined effect: one adapter\'s trained lm_head unties even if the others leave it alone', async () => {
    const p = planMerge(await inputs({}, [
      { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2) },
      { modules: [], config: { modules_to_save: ['lm_head'] }, extraTensors: [full('lm_head.weight', 50, 0.5)], weight: -1 },
    ]));
    if (p.tie.state !== 'pending') throw new Error('expected pending');
    expect(p.tie.lmHead.source).toMatchObject({ kind: 'replace', from: { file: 'a2/adapter_model.safetensors' } });
    const r = resolveTie(p, { equal: false, differingRows: 50, maxAbsDiff: 1 });
    expect(r.tie).toMatchObject({ decision: 'untie' });
    expect(r.tensors.find((t) => t.name === 'lm_head.weight')!.source.kind).toBe('replace');
  });

  it('validates every adapter against the base, naming the adapter', async () => {
    const e = refusal(await inputs({ nLayer: 1 }, [
      { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2) },
      { modules: gpt2LoraModules(16, [3], ['attn.c_attn'], 2) },
    ]));
    expect(e.code).toBe('ADAPTER_TARGET_MISSING');
    expect(e.message).toMatch(/^a2: /);
    const dora = refusal(await inputs({}, [{ modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2) }, { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2), config: { use_dora: true } }]));
    expect(dora).toMatchObject({ code: 'DORA_MAGNITUDE_MISSING' });
    expect(dora.message).toMatch(/^a2: /);
    const nan = refusal(await inputs({}, [{ modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2), weight: Number.NaN }]));
    expect(nan.code).toBe('ADAPTER_WEIGHT_INVALID');
  });

  it('DoRA among several adapters: each DoRA step is kept with its adapter, in order, on the modules it trains', async () => {
    const p = planMerge(await inputs({}, [
      { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2), config: { r: 2, lora_alpha: 4 } },
      { modules: gpt2LoraModules(16, [0, 1], ['attn.c_attn'], 2), config: { r: 2, lora_alpha: 2 }, dora: true, weight: 0.5 },
      { modules: gpt2LoraModules(16, [1], ['attn.c_attn', 'mlp.c_fc'], 2), config: { r: 2, lora_alpha: 2 }, dora: true },
    ]));
    const byName = new Map(p.tensors.map((t) => [t.name, t.source]));
    const attn0 = byName.get('transformer.h.0.attn.c_attn.weight')!;
    const attn1 = byName.get('transformer.h.1.attn.c_attn.weight')!;
    const fc1 = byName.get('transformer.h.1.mlp.c_fc.weight')!;
    if (attn0.kind !== 'merge' || attn1.kind !== 'merge' || fc1.kind !== 'merge') throw new Error('should merge');
    expect(attn0.deltas.map((d) => [d.adapter, d.scale])).toEqual([['a1', 2], ['a2', 0.5]]);
    expect(attn0.dora?.map((s) => [s.adapter, s.featureAxis, s.magnitude.file])).toEqual([['a2', 'column', 'a2/adapter_model.safetensors']]);
    expect(attn1.dora?.map((s) => s.adapter)).toEqual(['a2', 'a3']);
    expect(fc1.dora?.map((s) => s.adapter)).toEqual(['a3']);
  });

  it('refuses a DoRA adapter after one that trained a lora_B bias on the same module (DoRA would rescale that bias)', async () => {
    const bias = { name: 'transformer.h.0.attn.c_attn.lora_B.bias', shape: [48], values: new Float32Array(48).fill(0.5) };
    const lora = { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2), config: { lora_bias: true }, extraTensors: [bias] };
    const dora = { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2), dora: true };
    const e = refusal(await inputs({}, [lora, dora]));
    expect(e).toMatchObject({ code: 'ADAPTER_FEATURE_UNSUPPORTED', subject: 'transformer.h.0.attn.c_attn.bias' });
    expect(e.message).toMatch(/adapter a2 applies DoRA to "transformer\.h\.0\.attn\.c_attn\.weight" after a1 trained a lora_B bias/);
    // The other order is a plain sum on the bias: the DoRA adapter's scaling came before it.
    expect(tryPlanMerge(await inputs({}, [dora, lora]))).not.toBeInstanceOf(InputError);
  });
});
