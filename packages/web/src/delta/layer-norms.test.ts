import { describe, expect, it } from 'vitest';
import { groupLayerNorms, niceAxis } from './layer-norms.js';

describe('per-layer ΔW norms', () => {
  it('groups by block in layer order, modules in the order they run, other tensors after', () => {
    const { groups, modules } = groupLayerNorms([
      { tensor: 'lm_head.weight', norm: 5 },
      { tensor: 'transformer.h.10.mlp.c_fc.weight', norm: 1 },
      { tensor: 'transformer.h.2.mlp.c_fc.weight', norm: 3 },
      { tensor: 'h.2.attn.c_attn.weight', norm: 4 },
      { tensor: 'transformer.wte.weight', norm: 2 },
    ]);
    expect(groups.map((g) => g.label)).toEqual(['2', '10', 'lm_head', 'wte']);
    expect(groups[0]!.bars.map((b) => b.module)).toEqual(['attn.c_attn', 'mlp.c_fc']);
    expect(groups[0]!.norm).toBe(5);
    expect(groups[0]!.bars[0]!.tensor).toBe('h.2.attn.c_attn.weight');
    expect(modules).toEqual(['attn.c_attn', 'mlp.c_fc', 'lm_head', 'wte']);
  });

  it('rounds the axis to 1, 2 or 5 times a power of ten', () => {
    expect(niceAxis(0.87)).toEqual({ top: 1, step: 0.5 });
    expect(niceAxis(13)).toEqual({ top: 15, step: 5 });
    expect(niceAxis(0)).toEqual({ top: 1, step: 0.5 });
  });
});
