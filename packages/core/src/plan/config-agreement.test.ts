import { describe, expect, it } from 'vitest';
import { InputError } from '../errors.js';
import { memorySource } from '../io.js';
import { parseAdapterConfig } from '../peft/adapter-config.js';
import { readSafetensorsHeader } from '../safetensors/header.js';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter } from '../testing/fixtures.js';
import { planMerge, tryPlanMerge } from './plan-merge.js';
import type { PlanMergeInput, PlanMergeOptions } from './types.js';

/** Base with 3 layers; LoRA factors on c_attn of layers 0..2, and the given adapter_config.json fields. */
async function inputs(config: Record<string, unknown>, leaves = ['attn.c_attn']): Promise<PlanMergeInput> {
  const base = await makeGpt2Checkpoint({ seed: 1, nEmbd: 16, nLayer: 3, nHead: 2, vocabSize: 30, nPositions: 8 });
  const adapter = await makeLoraAdapter({ seed: 2, modules: gpt2LoraModules(16, [0, 1, 2], leaves, 2), config });
  return {
    base: { label: 'base', config: base.config, files: [await readSafetensorsHeader(memorySource('base/model.safetensors', base.files['model.safetensors']!))] },
    adapters: [{
      label: 'adapter',
      config: parseAdapterConfig(new TextDecoder().decode(adapter.files['adapter_config.json']), 'adapter/adapter_config.json'),
      file: await readSafetensorsHeader(memorySource('adapter/adapter_model.safetensors', adapter.files['adapter_model.safetensors']!)),
    }],
  };
}

function refusal(input: PlanMergeInput, options?: PlanMergeOptions): InputError {
  const outcome = tryPlanMerge({ ...input, ...(options ? { options } : {}) });
  expect(outcome).toBeInstanceOf(InputError);
  return outcome as InputError;
}

describe('adapter_config.json against the adapter tensors (PEFT ignores tensors its config does not select)', () => {
  it('agreeing config and tensors plan as before', async () => {
    const p = planMerge(await inputs({ target_modules: ['c_attn'] }));
    expect(p.summary.merged).toBe(3);
    expect(p.findings.map((f) => f.code)).not.toContain('ADAPTER_CONFIG_DISAGREES');
  });

  it('layers_to_transform leaving out layers whose tensors are present: an error naming the tensors and the field', async () => {
    const input = await inputs({ target_modules: ['c_attn'], layers_to_transform: [0], layers_pattern: 'h' });
    const e = refusal(input);
    expect(e.code).toBe('ADAPTER_CONFIG_DISAGREES');
    expect(e.message).toMatch(/2 module\(s\)/);
    expect(e.message).toMatch(/"transformer\.h\.1\.attn\.c_attn" \(layers_to_transform \[0\] with layers_pattern \["h"\] leaves out its layer 1\)/);
    expect(e.message).toMatch(/transformer\.h\.2\.attn\.c_attn/);
    expect(e.subject).toBe('layers_to_transform');
    expect(e.hint).toMatch(/--follow config.*--follow tensors/);
  });

  it('target_modules that do not cover the tensors, and exclude_modules that excludes them', async () => {
    expect(refusal(await inputs({ target_modules: ['c_fc'] })).message).toMatch(/target_modules \["c_fc"\] does not match it/);
    expect(refusal(await inputs({ target_modules: '.*\\.h\\.0\\.attn\\.c_attn' })).message).toMatch(/2 module\(s\).*h\.1\.attn\.c_attn/);
    expect(refusal(await inputs({ target_modules: ['c_attn'], exclude_modules: ['transformer.h.2.attn.c_attn'] })).message).toMatch(/exclude_modules .* excludes it/);
  });

  it('--follow config leaves out what PEFT ignores; --follow tensors merges everything and warns', async () => {
    const input = await inputs({ target_modules: ['c_attn'], layers_to_transform: [0, 2] });
    const config = planMerge({ ...input, options: { follow: 'config' } });
    expect(config.summary.loraModules).toEqual(['transformer.h.0.attn.c_attn', 'transformer.h.2.attn.c_attn']);
    expect(config.tensors.find((t) => t.name === 'transformer.h.1.attn.c_attn.weight')!.source.kind).toBe('copy');
    expect(config.findings.find((f) => f.code === 'ADAPTER_TENSORS_IGNORED')?.severity).toBe('info');
    const tensors = planMerge({ ...input, options: { follow: 'tensors' } });
    expect(tensors.summary.merged).toBe(3);
    expect(tensors.findings.find((f) => f.code === 'ADAPTER_CONFIG_DISAGREES')?.severity).toBe('warning');
  });

  it('an empty target_modules: PEFT refuses to load it, so only --follow tensors merges', async () => {
    const input = await inputs({ target_modules: [] });
    expect(refusal(input).message).toMatch(/target_modules is empty/);
    expect(refusal(input, { follow: 'config' }).code).toBe('ADAPTER_CONFIG_UNLOADABLE');
    expect(planMerge({ ...input, options: { follow: 'tensors' } }).summary.merged).toBe(3);
  });

  it('"all-linear" and the gpt2 default (null → c_attn) select as PEFT does', async () => {
    expect(planMerge(await inputs({ target_modules: 'all-linear' }, ['attn.c_attn', 'mlp.c_fc'])).summary.merged).toBe(6);
    expect(planMerge(await inputs({ target_modules: null })).summary.merged).toBe(3);
    expect(refusal(await inputs({ target_modules: null }, ['mlp.c_fc'])).code).toBe('ADAPTER_CONFIG_DISAGREES');
  });
});
