import { describe, expect, it } from 'vitest';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter, type AdapterFixtureOptions, type Gpt2FixtureOptions } from '../testing/fixtures.js';
import { planInputOf } from '../testing/plan-input.js';
import type { PlanMergeInput } from '../plan/types.js';
import { diagnose } from './diagnose.js';

async function inputs(baseOpts: Gpt2FixtureOptions, adapters: ReadonlyArray<AdapterFixtureOptions & { weight?: number }>): Promise<PlanMergeInput> {
  const made = [];
  for (const [i, opts] of adapters.entries()) {
    made.push({ files: (await makeLoraAdapter({ seed: 10 + i, ...opts })).files, label: `a${i + 1}`, ...(opts.weight !== undefined ? { weight: opts.weight } : {}) });
  }
  return planInputOf(await makeGpt2Checkpoint(baseOpts), made);
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
