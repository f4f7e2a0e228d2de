import { describe, expect, it } from 'vitest';
import type { LoadEmulation, LoadedParam } from '../load/emulate-load.js';
import type { TensorRef } from '../safetensors/tensor-ref.js';
import { verifyLoads, type ParamCheck } from './verify-load.js';

const ref = (name: string, fileOffset: number): TensorRef => ({ file: 'model.safetensors', name, dtype: 'F32', shape: [2], fileOffset, byteLength: 8 });

function emulation(version: 'v4' | 'v5', params: LoadedParam[], tied = true): LoadEmulation {
  return { version, architecture: 'GPT2LMHeadModel', tied, params: new Map(params.map((p) => [p.name, p])), randomlyInitialised: [], discarded: [], ignored: [], notes: [] };
}

describe('verifyLoads', () => {
  const wte = { name: 'transformer.wte.weight', ref: ref('wte.weight', 100) };
  const head = { name: 'lm_head.weight', ref: ref('wte.weight', 100), via: 'tied-to-wte' as const };
  const wpe = { name: 'transformer.wpe.weight', ref: ref('wpe.weight', 108) };

  it('checks a parameter that both versions load the same way once, and reports it under both', async () => {
    const seen: string[] = [];
    const report = await verifyLoads(
      [emulation('v4', [wte, head, wpe]), emulation('v5', [wte, { ...head, via: undefined }, wpe])],
      async (p) => {
        seen.push(`${p.name}${p.via ? ` ${p.via}` : ''}`);
        return { name: p.name, ok: true, status: 'equal', detail: '' };
      },
    );
    // lm_head is loaded through the tie in v4 and by its own key in v5: two different checks.
    expect(seen.sort()).toEqual(['lm_head.weight', 'lm_head.weight tied-to-wte', 'transformer.wpe.weight', 'transformer.wte.weight']);
    expect(report.ok).toBe(true);
    expect(report.byVersion.map((v) => v.checks.map((c) => c.name))).toEqual([
      ['transformer.wte.weight', 'lm_head.weight', 'transformer.wpe.weight'],
      ['transformer.wte.weight', 'lm_head.weight', 'transformer.wpe.weight'],
    ]);
  });

  it('runs at most `concurrency` checks at once and keeps the report in parameter order', async () => {
    const params = Array.from({ length: 10 }, (_, i) => ({ name: `p${i}`, ref: ref(`p${i}`, 8 * i) }));
    let running = 0;
    let peak = 0;
    const check = async (p: LoadedParam): Promise<ParamCheck> => {
      running++;
      peak = Math.max(peak, running);
      // Later parameters finish first.
      await new Promise((r) => setTimeout(r, 20 - Number(p.name.slice(1))));
      running--;
      return { name: p.name, ok: p.name !== 'p7', status: p.name === 'p7' ? 'differs' : 'equal', detail: '' };
    };
    const report = await verifyLoads([emulation('v4', params), emulation('v5', params)], check, { concurrency: 3 });
    expect(peak).toBe(3);
    expect(report.byVersion[0]!.checks.map((c) => c.name)).toEqual(params.map((p) => p.name));
    expect(report.failures).toEqual([expect.objectContaining({ name: 'p7', status: 'differs', versions: ['v4', 'v5'] })]);
    expect(report.byVersion.map((v) => v.ok)).toEqual([false, false]);
  });

  it('fails a parameter that would be initialised randomly, naming the version', async () => {
    const report = await verifyLoads([emulation('v4', [{ name: 'lm_head.weight', ref: null }])], async () => {
      throw new Error('not called for a missing tensor');
    });
    expect(report.failures).toEqual([expect.objectContaining({ name: 'lm_head.weight', status: 'random', versions: ['v4'] })]);
  });
});
