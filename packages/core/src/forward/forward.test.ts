import { describe, expect, it } from 'vitest';
import { parseAdapterConfig } from '../peft/adapter-config.js';
import { SeededRandom } from '../testing/random.js';
import { defaultLoraConfig } from '../testing/fixtures.js';
import { buildGpt2Model, type ParamTable, type ParamValues } from './build-model.js';
import type { Gpt2Model, LoraTerm } from './gpt2-model.js';
import { foldDora } from './dora.js';
import { forwardConfigOf } from './forward-config.js';
import { cpuLogitsRunner } from './logits-runner.js';
import { emptyKvCache, forwardGpt2, pooledPosition } from './run-forward.js';
import { applyAdapterUnmerged, type AdapterTensorValues } from './unmerged-adapter.js';
import { compareLogits, checkBehaviour, BEHAVIOUR_TOLERANCE } from './behaviour.js';
import { defaultProbes, positionsCovered } from './probes.js';

const E = 8;
const V = 20;
const P = 12;
const config = { n_embd: E, n_head: 2, n_layer: 2, n_positions: P, vocab_size: V };

function randomParams(seed: number, extra: Record<string, readonly number[]> = {}): Map<string, ParamValues> {
  const rng = new SeededRandom(seed);
  const shapes: Record<string, readonly number[]> = {
    'transformer.wte.weight': [V, E],
    'transformer.wpe.weight': [P, E],
    'transformer.ln_f.weight': [E],
    'transformer.ln_f.bias': [E],
    ...extra,
  };
  for (let l = 0; l < 2; l++) {
    const p = `transformer.h.${l}`;
    Object.assign(shapes, {
      [`${p}.ln_1.weight`]: [E], [`${p}.ln_1.bias`]: [E], [`${p}.ln_2.weight`]: [E], [`${p}.ln_2.bias`]: [E],
      [`${p}.attn.c_attn.weight`]: [E, 3 * E], [`${p}.attn.c_attn.bias`]: [3 * E],
      [`${p}.attn.c_proj.weight`]: [E, E], [`${p}.attn.c_proj.bias`]: [E],
      [`${p}.mlp.c_fc.weight`]: [E, 4 * E], [`${p}.mlp.c_fc.bias`]: [4 * E],
      [`${p}.mlp.c_proj.weight`]: [4 * E, E], [`${p}.mlp.c_proj.bias`]: [E],
    });
  }
  const params = new Map<string, ParamValues>();
  for (const [name, shape] of Object.entries(shapes)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const values = rng.normalArray(n, 0.5);
    if (/ln_\d\.weight$|ln_f\.weight$/.test(name)) values.forEach((v, i) => (values[i] = 1 + v * 0.1));
    params.set(name, { shape, values });
  }
  params.set('lm_head.weight', params.get('transformer.wte.weight')!);
  return params;
}

/**
 * The WGSL forward pass runs DoRA folded into the weights: the same logits, no magnitude vectors
 * left, and the LoRA products still separate terms (the factors are not merged into W).
 */
function expectDoraFolded(m: Gpt2Model, ids: readonly number[], logits: Float32Array): void {
  const folded = foldDora(m);
  const units = (x: Gpt2Model) => [...x.blocks.flatMap((b) => [b.attn, b.attnProj, b.fc, b.proj]), x.head, x.wte];
  expect(units(folded).flatMap((u) => u.lora).some((t) => t.magnitude !== undefined)).toBe(false);
  expect(units(folded).map((u) => u.lora.length)).toEqual(units(m).map((u) => u.lora.length));
  expect(units(m).flatMap((u) => u.lora).some((t) => t.magnitude !== undefined)).toBe(true);
  expect(compareLogits(ids, logits, forwardGpt2(folded, ids), V, { atol: 1e-5, rtol: 1e-5 }).violations).toBe(0);
  // Folding is what applies the scaling: the same model with the magnitudes only dropped differs.
  const dropped: Gpt2Model = { ...m, wte: { ...m.wte, lora: m.wte.lora.map(({ magnitude: _m, ...t }) => t) }, blocks: m.blocks.map((b) => ({ ...b, attn: { ...b.attn, lora: b.attn.lora.map(({ magnitude: _m, ...t }) => t) } })), head: { ...m.head, lora: m.head.lora.map(({ magnitude: _m, ...t }) => t) } };
  expect(compareLogits(ids, logits, forwardGpt2(dropped, ids), V, { atol: 1e-5, rtol: 1e-5 }).violations).toBeGreaterThan(0);
  expect(foldDora(folded)).toBe(folded);
}

const model = (params: ParamTable, cfg: Record<string, unknown> = config) => buildGpt2Model({ config: forwardConfigOf(cfg, 'config.json'), params, label: 'test' });

describe('forwardGpt2', () => {
  it('decoding one token at a time with the cache gives the logits of the whole sequence', () => {
    const m = model(randomParams(1));
    const ids = [3, 7, 1, 19, 0, 5];
    const full = forwardGpt2(m, ids);
    const cache = emptyKvCache(m);
    const first = forwardGpt2(m, ids.slice(0, 2), cache);
    const steps = [first, ...ids.slice(2).map((id) => forwardGpt2(m, [id], cache))];
    const joined = Float32Array.from(steps.flatMap((s) => Array.from(s)));
    expect(joined.length).toBe(full.length);
    joined.forEach((v, i) => expect(v).toBeCloseTo(full[i]!, 5));
  });

  it('is causal: a later token does not change earlier logits', () => {
    const m = model(randomParams(2));
    const a = forwardGpt2(m, [1, 2, 3]);
    const b = forwardGpt2(m, [1, 2, 9]);
    expect(Array.from(a.subarray(0, 2 * V))).toEqual(Array.from(b.subarray(0, 2 * V)));
    expect(Array.from(a.subarray(2 * V))).not.toEqual(Array.from(b.subarray(2 * V)));
  });

  it('refuses ids outside the vocabulary and sequences longer than n_positions, naming the field', () => {
    const m = model(randomParams(3));
    expect(() => forwardGpt2(m, [V])).toThrow(expect.objectContaining({ code: 'TOKEN_ID_OUT_OF_RANGE', subject: 'vocab_size' }));
    expect(() => forwardGpt2(m, new Array(P + 1).fill(0))).toThrow(expect.objectContaining({ code: 'SEQUENCE_TOO_LONG', subject: 'n_positions' }));
    expect(() => forwardGpt2(m, [])).toThrow(expect.objectContaining({ code: 'EMPTY_SEQUENCE' }));
  });

  it('greedy decoding picks the argmax each step and stops at the stop id', async () => {
    const m = model(randomParams(4));
    const r = cpuLogitsRunner(m);
    const got = await r.greedy([1, 2], 5);
    expect(got).toHaveLength(5);
    const logits = forwardGpt2(m, [1, 2, ...got.slice(0, 4)]);
    got.forEach((id, i) => {
      const row = Array.from(logits.subarray((1 + i) * V, (2 + i) * V));
      expect(id).toBe(row.indexOf(Math.max(...row)));
    });
    expect(await r.greedy([1, 2], 5, got[1])).toEqual(got.slice(0, 2));
    // n_positions bounds the continuation.
    expect((await r.greedy(new Array(P - 2).fill(1), 10)).length).toBe(2);
  });
});

describe('forwardConfigOf', () => {
  it('refuses by field what the forward pass does not implement', () => {
    const bad = (c: Record<string, unknown>, field: string) => expect(() => forwardConfigOf({ ...config, ...c }, 'config.json')).toThrow(expect.objectContaining({ code: 'FORWARD_CONFIG_UNSUPPORTED', subject: field }));
    bad({ activation_function: 'tanh' }, 'activation_function');
    bad({ n_head: 3 }, 'n_head');
    bad({ architectures: ['GPT2Model'] }, 'architectures');
    bad({ add_cross_attention: true }, 'add_cross_attention');
    bad({ layer_norm_epsilon: -1 }, 'layer_norm_epsilon');
    bad({ scale_attn_weights: 'yes' }, 'scale_attn_weights');
  });

  it('takes GPT2Config defaults for absent fields', () => {
    const c = forwardConfigOf({}, 'config.json');
    expect(c).toMatchObject({ nLayer: 12, nEmbd: 768, nHead: 12, nInner: 3072, nPositions: 1024, vocabSize: 50257, eps: 1e-5, activation: 'gelu_new', scaleAttnWeights: true, head: 'lm_head' });
  });

  it('names a tensor whose shape does not fit the config', () => {
    const params = randomParams(5);
    params.set('transformer.h.1.mlp.c_fc.weight', { shape: [E, 3 * E], values: new Float32Array(3 * E * E) });
    expect(() => model(params)).toThrow(expect.objectContaining({ code: 'FORWARD_WEIGHT_SHAPE', subject: 'transformer.h.1.mlp.c_fc.weight' }));
    const incomplete = randomParams(5);
    incomplete.delete('transformer.ln_f.bias');
    expect(() => model(incomplete)).toThrow(expect.objectContaining({ code: 'FORWARD_WEIGHT_MISSING' }));
  });
});

/** W + scale·(B·A) laid onto a stored weight: transposed for Conv1D [in, out] and embedding tables. */
function mergedByHand(w: Float32Array, a: Float32Array, b: Float32Array, rank: number, outDim: number, inDim: number, scale: number, storedInOut: boolean): Float32Array {
  const m = w.slice();
  for (let o = 0; o < outDim; o++) {
    for (let i = 0; i < inDim; i++) {
      let s = 0;
      for (let r = 0; r < rank; r++) s += b[o * rank + r]! * a[r * inDim + i]!;
      const at = storedInOut ? i * outDim + o : o * inDim + i;
      m[at] = m[at]! + scale * s;
    }
  }
  return m;
}

describe('applyAdapterUnmerged', () => {
  const rng = new SeededRandom(9);
  const factor = (key: string, shape: number[]): AdapterTensorValues => ({ key, shape, values: rng.normalArray(shape[0]! * shape[1]!, 0.5) });
  const adapterConfig = (fields: Record<string, unknown>) => parseAdapterConfig(JSON.stringify({ ...defaultLoraConfig(), ...fields }));

  it('LoRA applied to activations equals the model with the merged weights (Conv1D, Linear head, embedding)', () => {
    const base = randomParams(10, { 'lm_head.weight': [V, E] });
    base.set('lm_head.weight', { shape: [V, E], values: new SeededRandom(11).normalArray(V * E, 0.5) });
    const r = 3;
    const tensors = [
      factor('base_model.model.transformer.h.1.attn.c_attn.lora_A.weight', [r, E]),
      factor('base_model.model.transformer.h.1.attn.c_attn.lora_B.weight', [3 * E, r]),
      factor('base_model.model.lm_head.lora_A.weight', [r, E]),
      factor('base_model.model.lm_head.lora_B.weight', [V, r]),
      factor('base_model.model.transformer.wte.lora_embedding_A', [r, V]),
      factor('base_model.model.transformer.wte.lora_embedding_B', [E, r]),
    ];
    const cfg = adapterConfig({ r, lora_alpha: 6, target_modules: ['c_attn', 'lm_head', 'wte'] });
    const parts = applyAdapterUnmerged({ base, baseTied: false, baseArchitecture: 'GPT2LMHeadModel', config: cfg, tensors, label: 'adapter' });
    expect(parts.notes).toEqual([]);
    const unmerged = buildGpt2Model({ config: forwardConfigOf({ ...config, tie_word_embeddings: false }, 'c'), params: parts.params, lora: parts.lora, label: 'u' });

    const merged = new Map(base);
    const [a1, b1, a2, b2, a3, b3] = tensors.map((t) => t.values) as Float32Array[];
    merged.set('transformer.h.1.attn.c_attn.weight', { shape: [E, 3 * E], values: mergedByHand(base.get('transformer.h.1.attn.c_attn.weight')!.values, a1!, b1!, r, 3 * E, E, 2, true) });
    merged.set('lm_head.weight', { shape: [V, E], values: mergedByHand(base.get('lm_head.weight')!.values, a2!, b2!, r, V, E, 2, false) });
    merged.set('transformer.wte.weight', { shape: [V, E], values: mergedByHand(base.get('transformer.wte.weight')!.values, a3!, b3!, r, E, V, 2, true) });
    const m = model(merged);
    const ids = [0, 4, 19, 7];
    const a = forwardGpt2(unmerged, ids);
    const b = forwardGpt2(m, ids);
    const cmp = compareLogits(ids, a, b, V, { atol: 1e-4, rtol: 1e-4 });
    expect(cmp.violations).toBe(0);
    // And the adapter matters: without it the logits differ.
    expect(compareLogits(ids, a, forwardGpt2(model(base), ids), V, { atol: 1e-4, rtol: 1e-4 }).violations).toBeGreaterThan(0);
  });

  it('DoRA applied to activations equals the model with DoRA-merged weights (Conv1D, Linear head, embedding)', () => {
    const base = randomParams(20, { 'lm_head.weight': [V, E] });
    base.set('lm_head.weight', { shape: [V, E], values: new SeededRandom(21).normalArray(V * E, 0.5) });
    const r = 2;
    const magnitude = (key: string, n: number): AdapterTensorValues => ({ key, shape: [n], values: Float32Array.from(rng.normalArray(n, 0.5), (v) => 1 + Math.abs(v)) });
    const tensors = [
      factor('base_model.model.transformer.h.0.attn.c_attn.lora_A.weight', [r, E]),
      factor('base_model.model.transformer.h.0.attn.c_attn.lora_B.weight', [3 * E, r]),
      magnitude('base_model.model.transformer.h.0.attn.c_attn.lora_magnitude_vector', 3 * E),
      factor('base_model.model.lm_head.lora_A.weight', [r, E]),
      factor('base_model.model.lm_head.lora_B.weight', [V, r]),
      magnitude('base_model.model.lm_head.lora_magnitude_vector', V),
      factor('base_model.model.transformer.wte.lora_embedding_A', [r, V]),
      factor('base_model.model.transformer.wte.lora_embedding_B', [E, r]),
      magnitude('base_model.model.transformer.wte.lora_magnitude_vector', E),
    ];
    const cfg = adapterConfig({ r, lora_alpha: 3, use_dora: true, target_modules: ['c_attn', 'lm_head', 'wte'] });
    const parts = applyAdapterUnmerged({ base, baseTied: false, baseArchitecture: 'GPT2LMHeadModel', config: cfg, tensors, label: 'adapter' });
    const unmerged = buildGpt2Model({ config: forwardConfigOf({ ...config, tie_word_embeddings: false }, 'c'), params: parts.params, lora: parts.lora, label: 'u' });

    // By hand: W + ΔW, then each output feature scaled to its magnitude.
    const doraByHand = (name: string, i: number, outDim: number, inDim: number, storedInOut: boolean) => {
      const [a, b, m] = [tensors[3 * i]!.values, tensors[3 * i + 1]!.values, tensors[3 * i + 2]!.values];
      const v = mergedByHand(base.get(name)!.values, a, b, r, outDim, inDim, 1.5, storedInOut);
      for (let o = 0; o < outDim; o++) {
        const at = (k: number) => (storedInOut ? k * outDim + o : o * inDim + k);
        let ss = 0;
        for (let k = 0; k < inDim; k++) ss += v[at(k)]! ** 2;
        for (let k = 0; k < inDim; k++) v[at(k)] = (m[o]! / Math.sqrt(ss)) * v[at(k)]!;
      }
      return { shape: base.get(name)!.shape, values: v };
    };
    const merged = new Map(base);
    merged.set('transformer.h.0.attn.c_attn.weight', doraByHand('transformer.h.0.attn.c_attn.weight', 0, 3 * E, E, true));
    merged.set('lm_head.weight', doraByHand('lm_head.weight', 1, V, E, false));
    merged.set('transformer.wte.weight', doraByHand('transformer.wte.weight', 2, E, V, true));
    const ids = [0, 4, 19, 7];
    const a = forwardGpt2(unmerged, ids);
    expect(compareLogits(ids, a, forwardGpt2(model(merged), ids), V, { atol: 1e-4, rtol: 1e-4 }).violations).toBe(0);
    expectDoraFolded(unmerged, ids, a);
    // Plain LoRA (the magnitudes dropped) gives other logits: the DoRA scaling is applied.
    const plain = applyAdapterUnmerged({ base, baseTied: false, baseArchitecture: 'GPT2LMHeadModel', config: adapterConfig({ r, lora_alpha: 3, target_modules: ['c_attn', 'lm_head', 'wte'] }), tensors, label: 'adapter' });
    expect(plain.notes.join(' ')).toMatch(/lora_magnitude_vector: a DoRA magnitude vector, ignored/);
    const plainModel = buildGpt2Model({ config: forwardConfigOf({ ...config, tie_word_embeddings: false }, 'c'), params: plain.params, lora: plain.lora, label: 'p' });
    expect(compareLogits(ids, a, forwardGpt2(plainModel, ids), V, { atol: 1e-4, rtol: 1e-4 }).violations).toBeGreaterThan(0);
  });

  it('several adapters with DoRA among them: each DoRA step rescales the module\'s output so far, as PEFT runs them all active', () => {
    // c_attn of block 0 [E, 3E] trained by three adapters in order: LoRA, DoRA, DoRA.
    const base = randomParams(30);
    const name = 'transformer.h.0.attn.c_attn.weight';
    const r = 2;
    const mag = (key: string) => ({ key, shape: [3 * E], values: Float32Array.from(rng.normalArray(3 * E, 0.5), (v) => 1 + Math.abs(v)) });
    const adapters = [false, true, true].map((dora) => ({
      dora,
      tensors: [
        factor('base_model.model.transformer.h.0.attn.c_attn.lora_A.weight', [r, E]),
        factor('base_model.model.transformer.h.0.attn.c_attn.lora_B.weight', [3 * E, r]),
        ...(dora ? [mag('base_model.model.transformer.h.0.attn.c_attn.lora_magnitude_vector')] : []),
      ],
    }));
    let params: ParamTable = base;
    const lora = new Map<string, LoraTerm[]>();
    for (const [i, ad] of adapters.entries()) {
      const cfg = adapterConfig({ r, lora_alpha: 2, use_dora: ad.dora, target_modules: ['c_attn'] });
      const parts = applyAdapterUnmerged({ base: params, baseTied: true, baseArchitecture: 'GPT2LMHeadModel', config: cfg, tensors: ad.tensors, label: `a${i}`, weight: i === 2 ? -0.5 : 1 });
      params = parts.params;
      for (const [module, terms] of parts.lora) lora.set(module, [...(lora.get(module) ?? []), ...terms]);
    }
    const unmerged = buildGpt2Model({ config: forwardConfigOf(config, 'c'), params, lora, label: 'u' });
    // By hand, from the base: V = W + Δ1, then V = f ⊙ (V + Δᵢ) with f = m / ‖W + Δᵢ‖ per output column.
    const w = base.get(name)!.values;
    const deltaOf = (i: number) => {
      const [a, b] = [adapters[i]!.tensors[0]!.values, adapters[i]!.tensors[1]!.values];
      return mergedByHand(new Float32Array(w.length), a, b, r, 3 * E, E, i === 2 ? -0.5 : 1, true);
    };
    let v = Float64Array.from(w, (x, k) => x + deltaOf(0)[k]!);
    for (const i of [1, 2]) {
      const d = deltaOf(i);
      const m = adapters[i]!.tensors[2]!.values;
      const f = Array.from({ length: 3 * E }, (_, o) => {
        let ss = 0;
        for (let k = 0; k < E; k++) ss += (w[k * 3 * E + o]! + d[k * 3 * E + o]!) ** 2;
        return m[o]! / Math.sqrt(ss);
      });
      v = v.map((x, k) => f[k % (3 * E)]! * (x + d[k]!));
    }
    const merged = new Map(base);
    merged.set(name, { shape: [E, 3 * E], values: Float32Array.from(v) });
    const ids = [0, 4, 19, 7];
    const a = forwardGpt2(unmerged, ids);
    expect(compareLogits(ids, a, forwardGpt2(model(merged), ids), V, { atol: 1e-4, rtol: 1e-4 }).violations).toBe(0);
    expectDoraFolded(unmerged, ids, a);
    // The DoRA steps matter: the plain sum of the three deltas is another model.
    const sumOfDeltas = new Map(base);
    sumOfDeltas.set(name, { shape: [E, 3 * E], values: Float32Array.from(w, (x, k) => x + deltaOf(0)[k]! + deltaOf(1)[k]! + deltaOf(2)[k]!) });
    expect(compareLogits(ids, a, forwardGpt2(model(sumOfDeltas), ids), V, { atol: 1e-4, rtol: 1e-4 }).violations).toBeGreaterThan(0);
  });

  it('DoRA without its magnitude vector is refused, naming the tensor', () => {
    const base = randomParams(22);
    const tensors = [factor('base_model.model.transformer.h.0.attn.c_attn.lora_A.weight', [2, E]), factor('base_model.model.transformer.h.0.attn.c_attn.lora_B.weight', [3 * E, 2])];
    expect(() => applyAdapterUnmerged({ base, baseTied: true, baseArchitecture: 'GPT2LMHeadModel', config: adapterConfig({ r: 2, use_dora: true, target_modules: ['c_attn'] }), tensors, label: 'a' }))
      .toThrow(expect.objectContaining({ code: 'FORWARD_ADAPTER_INCOMPLETE', subject: 'base_model.model.transformer.h.0.attn.c_attn.lora_magnitude_vector' }));
  });

  it('in a tied base, LoRA on wte changes the input side only and a trained wte copy leaves lm_head on the base matrix', () => {
    const base = randomParams(12);
    const r = 2;
    const tensors = [factor('base_model.model.transformer.wte.lora_embedding_A', [r, V]), factor('base_model.model.transformer.wte.lora_embedding_B', [E, r])];
    const parts = applyAdapterUnmerged({ base, baseTied: true, baseArchitecture: 'GPT2LMHeadModel', config: adapterConfig({ r, target_modules: ['wte'] }), tensors, label: 'a' });
    expect(parts.params.get('lm_head.weight')!.values).toBe(base.get('transformer.wte.weight')!.values);
    expect(parts.lora.get('transformer.wte')).toHaveLength(1);
    expect(parts.lora.has('lm_head')).toBe(false);

    const copy = { key: 'base_model.model.transformer.wte.weight', shape: [V, E], values: new Float32Array(V * E).fill(0.25) };
    const saved = applyAdapterUnmerged({ base, baseTied: true, baseArchitecture: 'GPT2LMHeadModel', config: adapterConfig({ modules_to_save: ['wte'], target_modules: ['c_attn'] }), tensors: [copy], label: 'a' });
    expect(saved.params.get('transformer.wte.weight')!.values).toBe(copy.values);
    expect(saved.params.get('lm_head.weight')!.values).toBe(base.get('transformer.wte.weight')!.values);
  });

  it('trainable-token rows replace wte rows, and lm_head rows too when tied', () => {
    const base = randomParams(13);
    const rows = { key: 'base_model.model.transformer.wte.token_adapter.trainable_tokens_delta', shape: [2, E], values: new Float32Array(2 * E).fill(3) };
    const cfg = adapterConfig({ target_modules: ['c_attn'], trainable_token_indices: [4, 17] });
    for (const tied of [true, false]) {
      const parts = applyAdapterUnmerged({ base, baseTied: tied, baseArchitecture: 'GPT2LMHeadModel', config: cfg, tensors: [rows], label: 'a' });
      const wte = parts.params.get('transformer.wte.weight')!.values;
      expect(Array.from(wte.subarray(4 * E, 5 * E))).toEqual(new Array(E).fill(3));
      expect(Array.from(wte.subarray(5 * E, 6 * E))).toEqual(Array.from(base.get('transformer.wte.weight')!.values.subarray(5 * E, 6 * E)));
      const head = parts.params.get('lm_head.weight')!.values;
      expect(head[17 * E]).toBe(tied ? 3 : base.get('lm_head.weight')!.values[17 * E]);
    }
    // lm_head with token rows of its own (the dict form naming both): each wrapped apart, no tying.
    const headRows = { key: 'base_model.model.lm_head.token_adapter.trainable_tokens_delta', shape: [1, E], values: new Float32Array(E).fill(-2) };
    const both = applyAdapterUnmerged({ base, baseTied: true, baseArchitecture: 'GPT2LMHeadModel', config: adapterConfig({ target_modules: ['c_attn'], trainable_token_indices: { wte: [4, 17], lm_head: [9] } }), tensors: [rows, headRows], label: 'a' });
    const head = both.params.get('lm_head.weight')!.values;
    expect(head[9 * E]).toBe(-2);
    expect(head[17 * E]).toBe(base.get('lm_head.weight')!.values[17 * E]);
    expect(both.params.get('transformer.wte.weight')!.values[17 * E]).toBe(3);
    // The base itself is never written to.
    expect(base.get('transformer.wte.weight')!.values[4 * E]).not.toBe(3);
  });

  it('ignores LoRA tensors of modules the config does not select, as PEFT does, and says so', () => {
    const base = randomParams(14);
    const tensors = [factor('base_model.model.transformer.h.0.mlp.c_fc.lora_A.weight', [2, E]), factor('base_model.model.transformer.h.0.mlp.c_fc.lora_B.weight', [4 * E, 2])];
    const parts = applyAdapterUnmerged({ base, baseTied: true, baseArchitecture: 'GPT2LMHeadModel', config: adapterConfig({ r: 2, target_modules: ['c_attn'] }), tensors, label: 'a' });
    expect(parts.lora.size).toBe(0);
    expect(parts.notes[0]).toMatch(/transformer\.h\.0\.mlp\.c_fc: LoRA tensors ignored, as PEFT ignores them \(target_modules/);
  });

  it('lora_bias adds scale·lora_B.bias to the module output; ignored without the flag; refused on a module without a bias', () => {
    const base = randomParams(15);
    const r = 2;
    const tensors = [
      factor('base_model.model.transformer.h.0.attn.c_attn.lora_A.weight', [r, E]),
      factor('base_model.model.transformer.h.0.attn.c_attn.lora_B.weight', [3 * E, r]),
      { key: 'base_model.model.transformer.h.0.attn.c_attn.lora_B.bias', shape: [3 * E], values: new Float32Array(3 * E).fill(0.5) },
    ];
    const withBias = applyAdapterUnmerged({ base, baseTied: true, baseArchitecture: 'GPT2LMHeadModel', config: adapterConfig({ r, lora_alpha: 6, lora_bias: true }), tensors, label: 'a' });
    const b0 = base.get('transformer.h.0.attn.c_attn.bias')!.values;
    const b1 = withBias.params.get('transformer.h.0.attn.c_attn.bias')!.values;
    expect(b1[5]).toBeCloseTo(b0[5]! + 3 * 0.5, 6);
    expect(base.get('transformer.h.0.attn.c_attn.bias')!.values).toBe(b0);
    const without = applyAdapterUnmerged({ base, baseTied: true, baseArchitecture: 'GPT2LMHeadModel', config: adapterConfig({ r }), tensors, label: 'a' });
    expect(without.params.get('transformer.h.0.attn.c_attn.bias')!.values).toBe(b0);
    expect(without.notes.join()).toMatch(/lora_B\.bias tensor\(s\) ignored/);
    const head = [factor('base_model.model.lm_head.lora_A.weight', [r, E]), factor('base_model.model.lm_head.lora_B.weight', [V, r]), { key: 'base_model.model.lm_head.lora_B.bias', shape: [V], values: new Float32Array(V) }];
    expect(() => applyAdapterUnmerged({ base, baseTied: true, baseArchitecture: 'GPT2LMHeadModel', config: adapterConfig({ r, lora_bias: true, target_modules: ['lm_head'] }), tensors: head, label: 'a' })).toThrow(expect.objectContaining({ code: 'LORA_BIAS_WITHOUT_BASE_BIAS', subject: 'lm_head' }));
  });

  it('a target_parameters weight runs as W + scale·B·A in its stored layout, with no activation term', () => {
    const base = randomParams(17);
    const a = factor('base_model.model.transformer.h.0.attn.c_attn.lora_A.weight', [2, 3 * E]);
    const b = factor('base_model.model.transformer.h.0.attn.c_attn.lora_B.weight', [E, 2]);
    const parts = applyAdapterUnmerged({ base, baseTied: true, baseArchitecture: 'GPT2LMHeadModel', config: adapterConfig({ r: 2, lora_alpha: 6, target_modules: [], target_parameters: ['attn.c_attn.weight'] }), tensors: [a, b], label: 'a' });
    expect(parts.lora.size).toBe(0);
    const w0 = base.get('transformer.h.0.attn.c_attn.weight')!.values;
    const w1 = parts.params.get('transformer.h.0.attn.c_attn.weight')!.values;
    const [i, j] = [5, 17];
    const expected = w0[i * 3 * E + j]! + 3 * (b.values[i * 2]! * a.values[j]! + b.values[i * 2 + 1]! * a.values[3 * E + j]!);
    expect(w1[i * 3 * E + j]).toBeCloseTo(expected, 5);
  });

  it('a saved score head makes it a sequence classifier pooled at the last non-pad token', () => {
    const base = randomParams(16);
    const score = { key: 'base_model.model.score.weight', shape: [3, E], values: new SeededRandom(3).normalArray(3 * E, 0.5) };
    const parts = applyAdapterUnmerged({ base, baseTied: true, baseArchitecture: 'GPT2LMHeadModel', config: adapterConfig({ task_type: 'SEQ_CLS', modules_to_save: ['score'] }), tensors: [score], label: 'a' });
    expect(parts.architecture).toBe('GPT2ForSequenceClassification');
    const m = buildGpt2Model({ config: forwardConfigOf({ ...config, pad_token_id: 0 }, 'c', parts.architecture), params: parts.params, label: 'u' });
    expect(m.head.outDim).toBe(3);
    expect(pooledPosition([5, 6, 0, 0], 0)).toBe(1);
    expect(pooledPosition([5, 6, 0, 0], null)).toBe(3);
    expect(pooledPosition([0, 0], 0)).toBe(0);
  });
});

describe('checkBehaviour', () => {
  it('passes for the same model and fails, with a greedy divergence, for a changed head', async () => {
    const params = randomParams(20);
    const a = cpuLogitsRunner(model(params));
    const probes = defaultProbes({ vocabSize: V, nPositions: P, baseVocabSize: V - 3, parameterCount: 1000, greedyTokens: 6 });
    expect(probes.sequences[0]).toHaveLength(P);
    expect(probes.sequences[1]).toEqual(expect.arrayContaining([V - 3, V - 2, V - 1]));
    expect(positionsCovered(probes, P)).toBe(`every position of ${P}`);
    const same = await checkBehaviour(a, cpuLogitsRunner(model(params)), probes, BEHAVIOUR_TOLERANCE.F32);
    expect(same.ok).toBe(true);
    expect(same.maxAbsDiff).toBe(0);
    expect(same.greedy[0]!.firstDivergence).toBeNull();

    const changed = new Map(params);
    changed.set('lm_head.weight', { shape: [V, E], values: new SeededRandom(21).normalArray(V * E, 0.5) });
    const diff = await checkBehaviour(a, cpuLogitsRunner(model(changed)), probes, BEHAVIOUR_TOLERANCE.F32);
    expect(diff.ok).toBe(false);
    expect(diff.sequences[0]!.violations).toBeGreaterThan(0);
    expect(diff.greedy[0]!.firstDivergence).not.toBeNull();
  });

  it('sizes the default probes to the work budget and says which positions it covers', () => {
    const big = defaultProbes({ vocabSize: 50257, nPositions: 1024, baseVocabSize: 50257, parameterCount: 124e6, greedyTokens: 20 });
    expect(big.sequences).toHaveLength(1);
    expect(big.sequences[0]!.length).toBeLessThan(1024);
    expect(positionsCovered(big, 1024)).toMatch(/^positions 0–\d+ of 1024$/);
    expect(Math.max(...big.sequences[0]!)).toBeLessThan(50257);
  });
});
