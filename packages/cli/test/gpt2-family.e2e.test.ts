/**
 * The GPT-2 family and its heads through the built CLI: distilgpt2's 6 layers, a custom n_inner, a
 * 2-wide toy, and bases that are GPT2ForSequenceClassification, GPT2ForTokenClassification,
 * GPT2DoubleHeadsModel or GPT2Model: merge, verify, the head kept byte for byte, and `logits` running
 * it; a head the forward pass does not implement is refused by name.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter, type Gpt2FixtureOptions } from '@lorafuse/core/testing';
import { readCheckpoint, removeDir, runLorafuse, tempDir, writeDir } from './helpers.js';

let work: string;
beforeAll(async () => {
  work = await tempDir('lorafuse-family-');
});
afterAll(async () => {
  await removeDir(work);
});

const variants: ReadonlyArray<readonly [string, Gpt2FixtureOptions, readonly string[]]> = [
  ['distilgpt2-shaped (6 layers)', { nEmbd: 16, nLayer: 6, nHead: 2 }, []],
  ['custom n_inner', { nEmbd: 16, nLayer: 2, nHead: 2, nInner: 24 }, []],
  ['n_embd 2', { nEmbd: 2, nLayer: 1, nHead: 1 }, []],
  ['GPT2ForSequenceClassification base', { nEmbd: 16, nLayer: 2, nHead: 2, head: 'score' }, ['score.weight']],
  ['GPT2ForTokenClassification base', { nEmbd: 16, nLayer: 2, nHead: 2, head: 'classifier' }, ['classifier.weight', 'classifier.bias']],
  ['GPT2DoubleHeadsModel base', { nEmbd: 16, nLayer: 2, nHead: 2, head: 'double-heads' }, ['multiple_choice_head.summary.weight', 'multiple_choice_head.summary.bias']],
  ['GPT2Model base', { nEmbd: 16, nLayer: 2, nHead: 2, layout: 'bare' }, []],
];

describe.each(variants)('%s', (label, options, heads) => {
  it('merges, verifies, keeps its head byte for byte, and runs its logits', async () => {
    const dir = join(work, label.replace(/\W+/g, '-'));
    const base = await makeGpt2Checkpoint({ seed: 81, vocabSize: 30, nPositions: 8, ...options });
    const nEmbd = options.nEmbd ?? 16;
    const modules = gpt2LoraModules(nEmbd, [0], ['attn.c_attn'], 1, options.layout === 'bare' ? 'bare' : 'lmhead');
    const inner = options.nInner ?? 4 * nEmbd;
    const prefix = options.layout === 'bare' ? '' : 'transformer.';
    modules.push({ module: `${prefix}h.0.mlp.c_fc`, inFeatures: nEmbd, outFeatures: inner, rank: 1 }, { module: `${prefix}h.0.mlp.c_proj`, inFeatures: inner, outFeatures: nEmbd, rank: 1 });
    const adapter = await makeLoraAdapter({ seed: 82, modules, config: { r: 1, target_modules: ['c_attn', 'c_fc', 'c_proj'] } });
    const baseDir = await writeDir(join(dir, 'base'), base.files);
    const adapterDir = await writeDir(join(dir, 'adapter'), adapter.files);
    const out = join(dir, 'out');
    const r = await runLorafuse(['merge', baseDir, adapterDir, '--out', out, '--device', 'cpu', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).tensors.merged).toBe(3);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config.architectures).toEqual(base.config['architectures']);
    const [b, m] = [await readCheckpoint(join(baseDir, 'model.safetensors')), await readCheckpoint(join(out, 'model.safetensors'))];
    for (const h of heads) expect(Buffer.from(m.raw(h)).equals(Buffer.from(b.raw(h))), h).toBe(true);
    expect([...m.header.byName.keys()].sort()).toEqual([...b.header.byName.keys()].sort());
    const v = await runLorafuse(['verify', out, '--base', baseDir, '--adapter', adapterDir, '--device', 'cpu']);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    // logits runs each of these heads: vocabulary logits (GPT2DoubleHeadsModel's `logits` output; GPT2Model
    // through the tied lm_head), or one row of label scores (score: pooled; classifier: per token).
    const logits = await runLorafuse(['logits', out, '--ids', '1,2,3', '--device', 'cpu', '--json']);
    expect(logits.code, logits.stderr).toBe(0);
    const got: number[] | number[][] = JSON.parse(logits.stdout).logits;
    const last = Array.isArray(got[0]) ? (got as number[][])[got.length - 1]! : (got as number[]);
    expect(last).toHaveLength(options.head === 'score' || options.head === 'classifier' ? 3 : 30);
  });
});

describe('forward of heads lorafuse does not implement', () => {
  it('GPT2ForQuestionAnswering is refused by name (exit 2)', async () => {
    const base = await makeGpt2Checkpoint({ seed: 83, nEmbd: 16, nLayer: 1, nHead: 2, vocabSize: 30, nPositions: 8 });
    const dir = await writeDir(join(work, 'qa'), { ...base.files, 'config.json': JSON.stringify({ ...base.config, architectures: ['GPT2ForQuestionAnswering'] }) });
    const r = await runLorafuse(['logits', dir, '--ids', '1,2', '--device', 'cpu']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/GPT2ForQuestionAnswering/);
    expect(r.stderr).toMatch(/does not implement/);
  });
});
