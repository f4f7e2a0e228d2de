import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../testing/random.js';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter } from '../testing/fixtures.js';
import { planInputOf } from '../testing/plan-input.js';
import { planMerge } from './plan-merge.js';

describe("PEFT's new-token recipe (resize_token_embeddings, then trainable_token_indices on the new rows)", () => {
  it('starts the rows from the resized embedding saved as the token adapter base layer; the tied lm_head copies are checked duplicates', async () => {
    const base = await makeGpt2Checkpoint({ nEmbd: 16, nLayer: 1, nHead: 2, vocabSize: 30 });
    const rng = new SeededRandom(3);
    const resized = rng.normalArray(33 * 16, 0.5);
    const rows = rng.normalArray(3 * 16, 0.5);
    const adapter = await makeLoraAdapter({
      modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2),
      config: { r: 2, trainable_token_indices: [30, 31, 32] },
      extraTensors: [
        { name: 'lm_head.token_adapter.base_layer.weight', shape: [33, 16], values: resized },
        { name: 'lm_head.token_adapter.trainable_tokens_delta', shape: [3, 16], values: rows },
        { name: 'transformer.wte.token_adapter.base_layer.weight', shape: [33, 16], values: resized },
        { name: 'transformer.wte.token_adapter.trainable_tokens_delta', shape: [3, 16], values: rows },
      ],
    });
    const p = planMerge(await planInputOf(base, [adapter]));
    const wte = p.tensors.find((t) => t.name === 'transformer.wte.weight')!;
    expect(wte.shape).toEqual([33, 16]);
    if (wte.source.kind !== 'rows') throw new Error('wte should take the token rows');
    expect(wte.source.base.name).toBe('base_model.model.transformer.wte.token_adapter.base_layer.weight');
    expect(wte.source.indices).toEqual([30, 31, 32]);
    expect(p.outputConfig?.['vocab_size']).toBe(33);
    expect(p.tie.state).toBe('pending');
    if (p.tie.state !== 'pending') throw new Error();
    expect(p.tie.lmHead.source).toBe(wte.source);
    expect(p.duplicateCopies.map((d) => [d.kept.name, d.duplicate.name])).toEqual([
      ['base_model.model.transformer.wte.token_adapter.trainable_tokens_delta', 'base_model.model.lm_head.token_adapter.trainable_tokens_delta'],
      ['base_model.model.transformer.wte.token_adapter.base_layer.weight', 'base_model.model.lm_head.token_adapter.base_layer.weight'],
    ]);
  });
});
