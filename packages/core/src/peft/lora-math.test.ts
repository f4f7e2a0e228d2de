import { describe, expect, it } from 'vitest';
import { parseAdapterConfig } from './adapter-config.js';
import { findPatternKey, loraScale, moduleHyperparams } from './lora-math.js';

describe('findPatternKey (PEFT get_pattern_key)', () => {
  it('matches a suffix at a dot boundary, to the end of the path', () => {
    expect(findPatternKey(['c_fc'], 'transformer.h.0.mlp.c_fc')).toBe('c_fc');
    expect(findPatternKey(['c_fc'], 'transformer.h.0.mlp.xc_fc')).toBeUndefined();
    expect(findPatternKey(['h.0.attn.c_attn'], 'transformer.h.0.attn.c_attn')).toBe('h.0.attn.c_attn');
    expect(findPatternKey(['h.0.attn.c_attn'], 'transformer.h.10.attn.c_attn')).toBeUndefined();
  });
  it('treats keys as regexes: "^" anchors at the start of the module path', () => {
    expect(findPatternKey(['^transformer.h.1.mlp.c_proj'], 'transformer.h.1.mlp.c_proj')).toBe('^transformer.h.1.mlp.c_proj');
    expect(findPatternKey(['^h.1.mlp.c_proj'], 'transformer.h.1.mlp.c_proj')).toBeUndefined();
  });
  it('returns the first match in file order', () => {
    expect(findPatternKey(['c_proj', 'mlp.c_proj'], 'transformer.h.1.mlp.c_proj')).toBe('c_proj');
    expect(findPatternKey(['mlp.c_proj', 'c_proj'], 'transformer.h.1.mlp.c_proj')).toBe('mlp.c_proj');
  });
});

describe('scale', () => {
  it('is alpha/r, or alpha/sqrt(r) with rsLoRA', () => {
    expect(loraScale(16, 8, false)).toBe(2);
    expect(loraScale(16, 4, true)).toBe(8);
    expect(loraScale(12.5, 5, false)).toBeCloseTo(2.5, 15);
  });
  it('resolves rank from the tensor shape and alpha from alpha_pattern independently', () => {
    const config = parseAdapterConfig(JSON.stringify({ r: 8, lora_alpha: 16, rank_pattern: { c_fc: 6 }, alpha_pattern: { '^transformer.h.1.mlp.c_proj': 3 } }));
    const fc = moduleHyperparams(config, 'transformer.h.0.mlp.c_fc', 6);
    expect(fc).toMatchObject({ rank: 6, configuredRank: 6, alpha: 16, scale: 16 / 6, rankPatternKey: 'c_fc' });
    const proj = moduleHyperparams(config, 'transformer.h.1.mlp.c_proj', 8);
    expect(proj).toMatchObject({ rank: 8, alpha: 3, scale: 3 / 8, alphaPatternKey: '^transformer.h.1.mlp.c_proj' });
    const proj0 = moduleHyperparams(config, 'transformer.h.0.mlp.c_proj', 8);
    expect(proj0.alpha).toBe(16);
  });
});
