import { describe, expect, it } from 'vitest';
import { configShapeMismatches } from './config-shapes.js';

const shapes = new Map<string, readonly number[]>([
  ['transformer.wte.weight', [30, 16]],
  ['transformer.wpe.weight', [8, 16]],
  ['transformer.h.0.attn.c_attn.weight', [16, 48]],
  ['transformer.h.1.attn.c_attn.weight', [16, 48]],
]);
const config = { vocab_size: 30, n_positions: 8, n_embd: 16, n_layer: 2, n_head: 2 };

describe('configShapeMismatches', () => {
  it('accepts a config that describes the tensors', () => {
    expect(configShapeMismatches(config, shapes)).toEqual([]);
  });
  it('names each field that disagrees, with both values', () => {
    const m = configShapeMismatches({ ...config, n_layer: 3, vocab_size: 31, n_embd: 32, n_positions: 9, n_head: 5 }, shapes);
    expect(m.map((x) => x.field).sort()).toEqual(['n_embd', 'n_head', 'n_layer', 'n_positions', 'vocab_size']);
    expect(m.find((x) => x.field === 'n_layer')!.message).toMatch(/n_layer: 3, but the tensors hold 2 block\(s\)/);
    expect(m.find((x) => x.field === 'vocab_size')!.message).toMatch(/vocab_size: 31, but wte.weight has 30 rows/);
  });
  it('uses GPT2Config defaults for absent fields, and reports a gap in the blocks', () => {
    expect(configShapeMismatches({}, shapes).map((x) => x.field)).toContain('n_layer');
    const gap = new Map(shapes);
    gap.delete('transformer.h.0.attn.c_attn.weight');
    expect(configShapeMismatches(config, gap)[0]!.message).toMatch(/missing h\.0/);
  });
});
