import { describe, expect, it } from 'vitest';
import { gpt2LayerShapes } from '../testing/fixtures.js';
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
  it.each([
    ['distilgpt2', 768, 6, 12],
    ['gpt2-medium', 1024, 24, 16],
    ['gpt2-large', 1280, 36, 20],
    ['gpt2-xl', 1600, 48, 25],
  ] as const)('accepts %s dims (n_embd %i, %i layers, %i heads)', (_name, nEmbd, nLayer, nHead) => {
    const family = new Map<string, readonly number[]>([['transformer.wte.weight', [50257, nEmbd]], ['transformer.wpe.weight', [1024, nEmbd]]]);
    for (let l = 0; l < nLayer; l++) for (const [leaf, shape] of Object.entries(gpt2LayerShapes(nEmbd))) family.set(`transformer.h.${l}.${leaf}`, shape);
    expect(configShapeMismatches({ vocab_size: 50257, n_positions: 1024, n_embd: nEmbd, n_layer: nLayer, n_head: nHead }, family)).toEqual([]);
    expect(configShapeMismatches({ vocab_size: 50257, n_positions: 1024, n_embd: nEmbd, n_layer: nLayer - 1, n_head: nHead }, family).map((m) => m.field)).toEqual(['n_layer']);
  });
});
