import { describe, expect, it } from 'vitest';
import { InputError } from '../errors.js';
import { makeGpt2Checkpoint, makeLoraAdapter, gpt2LoraModules } from '../testing/fixtures.js';
import { planInputOf } from '../testing/plan-input.js';
import { planMerge } from './plan-merge.js';
import type { MergePlan, PlanMergeOptions } from './types.js';

const score = { name: 'score.weight', shape: [3, 16], values: new Float32Array(48).fill(0.1) };

async function plan(baseConfig: Record<string, unknown>, withScore: boolean, options?: PlanMergeOptions): Promise<MergePlan> {
  const base = await makeGpt2Checkpoint({ nEmbd: 16, nLayer: 1, nHead: 2, vocabSize: 30 });
  const adapter = await makeLoraAdapter({ modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2), config: { task_type: 'SEQ_CLS', modules_to_save: withScore ? ['score'] : null }, extraTensors: withScore ? [score] : [] });
  return planMerge(await planInputOf({ ...base, config: { ...base.config, ...baseConfig } }, [adapter], options));
}

describe('pad_token_id of a sequence classifier', () => {
  it('an added score head without pad_token_id gets eos_token_id, and the report says why', async () => {
    const p = await plan({}, true);
    expect(p.outputConfig?.['architectures']).toEqual(['GPT2ForSequenceClassification']);
    expect(p.outputConfig?.['pad_token_id']).toBe(29);
    expect(p.configChanges.join('\n')).toMatch(/pad_token_id: null → 29 \(eos_token_id; .*batches of more than one/);
    expect(p.findings.map((f) => f.code)).toContain('PAD_TOKEN_SET');
  });

  it('keeps a pad_token_id the base has, leaves LM outputs alone, and warns when there is no eos either', async () => {
    expect((await plan({ pad_token_id: 4 }, true)).outputConfig?.['pad_token_id']).toBe(4);
    const lm = await plan({}, false);
    expect(lm.outputConfig).toBeNull();
    const noEos = await plan({ eos_token_id: null }, true);
    expect(noEos.outputConfig?.['pad_token_id']).toBeUndefined();
    expect(noEos.findings.find((f) => f.code === 'PAD_TOKEN_MISSING')?.fix).toMatch(/--pad-token-id/);
    // A base that already is a classifier (its own score head) gets the same rule.
    const cls = await plan({ architectures: ['GPT2ForSequenceClassification'] }, false);
    expect(cls.outputConfig?.['pad_token_id']).toBe(29);
  });

  it('--pad-token-id wins, and must lie inside the vocabulary', async () => {
    expect((await plan({}, true, { padTokenId: 3 })).outputConfig?.['pad_token_id']).toBe(3);
    expect((await plan({}, false, { padTokenId: 3 })).configChanges).toEqual(['pad_token_id: null → 3 (--pad-token-id)']);
    const err = await plan({}, true, { padTokenId: 30 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).code).toBe('PAD_TOKEN_OUT_OF_RANGE');
  });
});
