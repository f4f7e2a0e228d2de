import { describe, expect, it } from 'vitest';
import { memorySource } from '../io.js';
import { readSafetensorsHeader } from '../safetensors/header.js';
import { safetensorsBytes, type FixtureTensor } from '../testing/fixtures.js';
import type { TensorRef } from '../safetensors/tensor-ref.js';
import { emulateTransformersLoad, type TransformersVersion } from './emulate-load.js';

const t = (name: string, fill: number, shape = [4, 2]): FixtureTensor => ({ name, shape, values: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(fill) });
const body = (prefix = 'transformer.') => [
  t(`${prefix}wte.weight`, 1),
  t(`${prefix}wpe.weight`, 2),
  ...['ln_1', 'attn.c_attn', 'attn.c_proj', 'ln_2', 'mlp.c_fc', 'mlp.c_proj'].flatMap((leaf) => [t(`${prefix}h.0.${leaf}.weight`, 3, [2]), t(`${prefix}h.0.${leaf}.bias`, 4, [2])]),
  t(`${prefix}ln_f.weight`, 5, [2]),
  t(`${prefix}ln_f.bias`, 6, [2]),
];

async function load(tensors: FixtureTensor[], config: Record<string, unknown>, version: TransformersVersion) {
  const header = await readSafetensorsHeader(memorySource('m.safetensors', await safetensorsBytes(tensors)));
  const values = new Map(tensors.map((x) => [x.name, x.values]));
  const equal = async (a: TensorRef, b: TensorRef) => values.get(a.name)!.every((v, i) => v === values.get(b.name)![i]);
  return emulateTransformersLoad({ config: { n_layer: 1, ...config }, files: [header], version, equal });
}

describe('emulateTransformersLoad', () => {
  it('ties lm_head to wte when the config ties and lm_head is not stored (v4 and v5)', async () => {
    for (const v of ['v4', 'v5'] as const) {
      const r = await load(body(), {}, v);
      expect(r.tied).toBe(true);
      expect(r.params.get('lm_head.weight')).toMatchObject({ ref: { name: 'transformer.wte.weight' }, via: 'tied-to-wte' });
      expect(r.randomlyInitialised).toEqual([]);
    }
  });

  it('normalises bare GPT2Model keys and ignores old attention buffers', async () => {
    const r = await load([...body(''), t('h.0.attn.bias', 1, [1, 1, 2, 2])], {}, 'v5');
    expect(r.params.get('transformer.h.0.attn.c_attn.weight')?.ref?.name).toBe('h.0.attn.c_attn.weight');
    expect(r.ignored).toEqual(['h.0.attn.bias']);
  });

  it('a stored lm_head that differs from wte under a tied config: v4 discards it, v5 keeps it untied', async () => {
    const tensors = [...body(), t('lm_head.weight', 9)];
    const v4 = await load(tensors, {}, 'v4');
    expect(v4.tied).toBe(true);
    expect(v4.params.get('lm_head.weight')?.ref?.name).toBe('transformer.wte.weight');
    expect(v4.discarded[0]?.name).toBe('lm_head.weight');
    const v5 = await load(tensors, {}, 'v5');
    expect(v5.tied).toBe(false);
    expect(v5.params.get('lm_head.weight')?.ref?.name).toBe('lm_head.weight');
  });

  it('an untied config without lm_head.weight leaves lm_head randomly initialised', async () => {
    const r = await load(body(), { tie_word_embeddings: false }, 'v5');
    expect(r.randomlyInitialised).toEqual(['lm_head.weight']);
  });

  it('GPT2ForSequenceClassification expects score.weight and has no lm_head', async () => {
    const r = await load(body(), { architectures: ['GPT2ForSequenceClassification'] }, 'v5');
    expect(r.randomlyInitialised).toEqual(['score.weight']);
    expect(r.params.has('lm_head.weight')).toBe(false);
  });
});
