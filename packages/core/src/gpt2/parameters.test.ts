import { describe, expect, it } from 'vitest';
import { countParameters, isGpt2Parameter } from './parameters.js';

describe('isGpt2Parameter', () => {
  it.each(['transformer.wte.weight', 'wpe.weight', 'h.11.attn.c_attn.bias', 'transformer.h.0.crossattention.q_attn.weight', 'h.3.ln_cross_attn.weight', 'ln_f.bias', 'lm_head.weight', 'score.weight', 'multiple_choice_head.summary.bias'])('%s is a parameter', (name) => {
    expect(isGpt2Parameter(name)).toBe(true);
  });
  it.each(['h.0.attn.bias', 'h.0.attn.masked_bias', 'transformer.h.0.mlp.act.weight', 'extra', 'lm_head.weight.x'])('%s is not', (name) => {
    expect(isGpt2Parameter(name)).toBe(false);
  });
});

describe('countParameters', () => {
  it('counts stored GPT-2 parameters only', () => {
    // GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=8, n_head=2, vocab_size=16, n_positions=8)).num_parameters()
    // is 1952 under transformers 5.18 (tied: lm_head shares wte).
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
