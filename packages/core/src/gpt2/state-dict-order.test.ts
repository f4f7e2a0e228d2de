import { describe, expect, it } from 'vitest';
import { countParameters, inStateDictOrder, stateDictPosition } from './state-dict-order.js';

// GPT2LMHeadModel(GPT2Config(n_layer=2, ...)).state_dict().keys() under transformers 5.18.
const TRANSFORMERS_ORDER = [
  'transformer.wte.weight', 'transformer.wpe.weight',
  ...[0, 1].flatMap((i) => ['ln_1.weight', 'ln_1.bias', 'attn.c_attn.weight', 'attn.c_attn.bias', 'attn.c_proj.weight', 'attn.c_proj.bias', 'ln_2.weight', 'ln_2.bias', 'mlp.c_fc.weight', 'mlp.c_fc.bias', 'mlp.c_proj.weight', 'mlp.c_proj.bias'].map((p) => `transformer.h.${i}.${p}`)),
  'transformer.ln_f.weight', 'transformer.ln_f.bias', 'lm_head.weight',
];

describe('inStateDictOrder', () => {
  it('restores GPT2LMHeadModel.state_dict() order from a file\'s (sorted) order', () => {
    const sorted = [...TRANSFORMERS_ORDER].sort();
    expect(inStateDictOrder(sorted, (n) => n)).toEqual(TRANSFORMERS_ORDER);
  });

  it('orders layers by number, not as text (h.10 after h.2)', () => {
    expect(inStateDictOrder(['h.10.ln_1.weight', 'h.2.mlp.c_proj.bias', 'h.2.ln_1.weight'], (n) => n)).toEqual(['h.2.ln_1.weight', 'h.2.mlp.c_proj.bias', 'h.10.ln_1.weight']);
  });

  it('puts names that are no parameter last, in their given order', () => {
    expect(inStateDictOrder(['h.0.attn.bias', 'extra', 'ln_f.bias', 'wte.weight'], (n) => n)).toEqual(['wte.weight', 'ln_f.bias', 'h.0.attn.bias', 'extra']);
  });

  it('knows cross-attention and the heads', () => {
    expect(stateDictPosition('transformer.h.0.crossattention.q_attn.weight')).toBeDefined();
    expect(stateDictPosition('score.weight')).toEqual([4, 4]);
    expect(stateDictPosition('transformer.h.0.attn.masked_bias')).toBeUndefined();
  });
});

describe('countParameters', () => {
  it('counts stored GPT-2 parameters only', () => {
    // GPT2LMHeadModel(n_layer=2, n_embd=8, vocab_size=16, n_positions=8).num_parameters() is 1952 (tied).
    const e = 8;
    const layer = (i: number) => [
      { name: `h.${i}.ln_1.weight`, shape: [e] }, { name: `h.${i}.ln_1.bias`, shape: [e] },
      { name: `h.${i}.attn.c_attn.weight`, shape: [e, 3 * e] }, { name: `h.${i}.attn.c_attn.bias`, shape: [3 * e] },
      { name: `h.${i}.attn.c_proj.weight`, shape: [e, e] }, { name: `h.${i}.attn.c_proj.bias`, shape: [e] },
      { name: `h.${i}.ln_2.weight`, shape: [e] }, { name: `h.${i}.ln_2.bias`, shape: [e] },
      { name: `h.${i}.mlp.c_fc.weight`, shape: [e, 4 * e] }, { name: `h.${i}.mlp.c_fc.bias`, shape: [4 * e] },
      { name: `h.${i}.mlp.c_proj.weight`, shape: [4 * e, e] }, { name: `h.${i}.mlp.c_proj.bias`, shape: [e] },
      { name: `h.${i}.attn.bias`, shape: [1, 1, 8, 8] },
    ];
    const tensors = [{ name: 'wte.weight', shape: [16, e] }, { name: 'wpe.weight', shape: [8, e] }, ...layer(0), ...layer(1), { name: 'ln_f.weight', shape: [e] }, { name: 'ln_f.bias', shape: [e] }];
    expect(countParameters(tensors)).toBe(1952);
  });
});
