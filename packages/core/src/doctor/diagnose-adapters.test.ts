import { describe, expect, it } from 'vitest';
import { memorySource } from '../io.js';
import { parseAdapterConfig } from '../peft/adapter-config.js';
import { readSafetensorsHeader } from '../safetensors/header.js';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter, type AdapterFixtureOptions, type Gpt2FixtureOptions } from '../testing/fixtures.js';
import type { AdapterInput, PlanMergeInput } from '../plan/types.js';
import { diagnose } from './diagnose.js';

async function inputs(baseOpts: Gpt2FixtureOptions, adapters: ReadonlyArray<AdapterFixtureOptions & { weight?: number }>): Promise<PlanMergeInput> {
  const base = await makeGpt2Checkpoint(baseOpts);
  const opened: AdapterInput[] = [];
  for (const [i, opts] of adapters.entries()) {
    const a = await makeLoraAdapter({ seed: 10 + i, ...opts });
    opened.push({
      label: `a${i + 1}`,
      config: parseAdapterConfig(new TextDecoder().decode(a.files['adapter_config.json']), `a${i + 1}/adapter_config.json`),
      file: await readSafetensorsHeader(memorySource(`a${i + 1}/adapter_model.safetensors`, a.files['adapter_model.safetensors']!)),
      ...(opts.weight !== undefined ? { weight: opts.weight } : {}),
    });
  }
  return { base: { label: 'base', config: base.config, files: [await readSafetensorsHeader(memorySource('base/model.safetensors', base.files['model.safetensors']!))] }, adapters: opened };
}

describe('doctor with several adapters', () => {
  it('different ranks on one module are a note, replacing one tensor differently is an error, per-adapter findings name their adapter', async () => {
    const shared = await inputs({}, [
      { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2), config: { target_modules: ['c_attn', 'query'] } },
      { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 8) },
    ]);
    const notes = diagnose(shared);
    expect(notes.filter((f) => f.severity === 'error')).toEqual([]);
    expect(notes.find((f) => f.code === 'ADAPTERS_SHARE_MODULE')?.message).toMatch(/a1: r=2.*a2: r=8.*whatever their ranks/);
    expect(notes.find((f) => f.code === 'TARGETS_PARTLY_UNMATCHED')?.message).toMatch(/^a1: /);
    const clash = diagnose(await inputs({}, [
      { modules: [], config: { modules_to_save: ['ln_f'] }, extraTensors: [{ name: 'transformer.ln_f.weight', shape: [16], values: new Float32Array(16) }] },
      { modules: [], config: { modules_to_save: ['ln_f'] }, extraTensors: [{ name: 'transformer.ln_f.weight', shape: [16], values: new Float32Array(16), dtype: 'F16' }] },
    ]));
    expect(clash.find((f) => f.severity === 'error')).toMatchObject({ code: 'ADAPTER_CONFLICT', subject: 'transformer.ln_f.weight' });
  });
});
