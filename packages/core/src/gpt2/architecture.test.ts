import { describe, expect, it } from 'vitest';
import { architectureOf, canonicalName, moduleKind, weightLayoutOf, weightLayoutOfModule } from './architecture.js';

describe('GPT-2 architecture facts', () => {
  it('knows Conv1D modules by name in both key layouts (attn.c_proj is square: shapes cannot tell)', () => {
    for (const m of ['transformer.h.0.attn.c_attn', 'h.11.attn.c_proj', 'transformer.h.3.mlp.c_fc', 'h.3.mlp.c_proj']) expect(moduleKind(m)).toBe('conv1d');
    expect(moduleKind('lm_head')).toBe('linear');
    expect(moduleKind('score')).toBe('linear');
    expect(moduleKind('transformer.wte')).toBe('embedding');
    expect(moduleKind('wpe')).toBe('embedding');
    expect(moduleKind('transformer.h.0.ln_1')).toBe('other');
    expect(moduleKind('transformer.h.0.attn.q_proj')).toBe('other');
  });
  it('canonicalises bare GPT2Model keys to the GPT2LMHeadModel layout', () => {
    expect(canonicalName('h.0.attn.c_attn.weight')).toBe('transformer.h.0.attn.c_attn.weight');
    expect(canonicalName('transformer.wte.weight')).toBe('transformer.wte.weight');
    expect(canonicalName('lm_head.weight')).toBe('lm_head.weight');
    expect(canonicalName('score.weight')).toBe('score.weight');
  });
});

describe('the weight-layout rule', () => {
  it('lays B·A as is onto Linear [out, in] and transposed onto Conv1D [in, out] and Embedding [vocab, dim]', () => {
    expect(weightLayoutOf('linear')).toMatchObject({ orientation: 'linear', layout: '[out, in]' });
    expect(weightLayoutOf('linear').weightShape(768, 50257)).toEqual([50257, 768]);
    expect(weightLayoutOf('conv1d')).toMatchObject({ orientation: 'transposed', layout: '[in, out]' });
    expect(weightLayoutOf('conv1d').weightShape(768, 2304)).toEqual([768, 2304]);
    expect(weightLayoutOf('embedding')).toMatchObject({ orientation: 'transposed', layout: '[num_embeddings, dim]' });
    expect(weightLayoutOfModule('transformer.h.0.attn.c_proj')?.kind).toBe('conv1d');
    expect(weightLayoutOfModule('transformer.h.0.ln_1')).toBeUndefined();
  });
  it('reads the model class from architectures[0], GPT2LMHeadModel when absent', () => {
    expect(architectureOf({})).toBe('GPT2LMHeadModel');
    expect(architectureOf({ architectures: ['GPT2Model'] })).toBe('GPT2Model');
  });
});
