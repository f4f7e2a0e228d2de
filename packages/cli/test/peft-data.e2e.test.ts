/**
 * Files written by real PEFT (packages/core/test/data/peft, see its README), merged by lorafuse on both
 * devices.
 *
 * Untied cases (the tied wte/lm_head pair untouched): lorafuse's merge, read back, equals PEFT's own
 * merge_and_unload (`expected/`, valid ground truth there) within f32 tolerance; `lorafuse verify` accepts
 * PEFT's output.
 *
 * Tied cases (`tied-*`: the adapter changes wte and/or lm_head): PEFT's merge is not ground truth, since it
 * adds a LoRA delta on lm_head or wte to the one shared matrix and so changes both uses.
 * What transformers loads from lorafuse's output — under v4 and v5 tie rules — equals what it loads from
 * `effective/` (the unmerged PEFT model's weights as a GPT2LMHeadModel checkpoint, tie rule applied), with
 * the same vocab_size and tie_word_embeddings; `lorafuse verify` exits 0 on lorafuse's output and on
 * effective/, exits as case.json says on PEFT's own merge (`peft-merged/`: 1 naming the tensors that load
 * wrong when the adapter has LoRA on the tied lm_head / wte), and exits 1 naming lm_head.weight on the
 * naive tied save (effective/ with lm_head.weight dropped and the tie kept).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { safetensorsBytes } from '@lorafuse/core/testing';
import { readCheckpoint, removeDir, runLorafuse, tempDir, worstViolation, writeDir } from './helpers.js';

const data = fileURLToPath(new URL('../../core/test/data/peft/', import.meta.url));
const cases = readdirSync(data, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();

interface CaseMeta {
  tied_embeddings_untouched?: boolean;
  effective?: { tie_word_embeddings: boolean; vocab_size: number };
  peft_merged?: { lorafuse_verify_exit: number; wrong_after_load: string[] };
}
const readMeta = (name: string) => JSON.parse(readFileSync(join(data, name, 'case.json'), 'utf8')) as CaseMeta;
const untiedCases = cases.filter((c) => readMeta(c).tied_embeddings_untouched !== false);
const tiedCases = cases.filter((c) => readMeta(c).tied_embeddings_untouched === false);

let work: string;
beforeAll(async () => {
  work = await tempDir('lorafuse-peft-data-');
});
afterAll(async () => {
  await removeDir(work);
});

describe.each(untiedCases)('PEFT-written case %s', (name) => {
  const dir = join(data, name);

  it.each(['cpu', 'webgpu'] as const)('merges on %s to what PEFT merge_and_unload wrote', async (device) => {
    const out = join(work, `${name}-${device}`);
    const r = await runLorafuse(['merge', join(dir, 'base'), join(dir, 'adapter'), '--out', out, '--device', device]);
    expect(r.code, r.stderr).toBe(0);
    const got = await readCheckpoint(join(out, 'model.safetensors'));
    const want = await readCheckpoint(join(dir, 'expected', 'model.safetensors'));
    expect(got.header.tensors.map((t) => t.name).sort()).toEqual(want.header.tensors.map((t) => t.name).sort());
    for (const t of want.header.tensors) {
      expect(worstViolation(got.f32(t.name), want.f32(t.name), 1e-6, 1e-5), `${name}: ${t.name}`).toBeLessThanOrEqual(0);
    }
  });

  it("lorafuse verify accepts PEFT's own merged directory", async () => {
    const r = await runLorafuse(['verify', join(dir, 'expected'), '--base', join(dir, 'base'), '--adapter', join(dir, 'adapter')]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });
});

/** A parameter as transformers loads it from a directory: values (f32) and shape. */
interface Loaded {
  shape: readonly number[];
  values: Float32Array;
}

/**
 * What GPT2LMHeadModel.from_pretrained loads from `dir` (single model.safetensors, `transformer.` keys, as
 * save_pretrained and lorafuse write them), under transformers v4 or v5 rules: with a tied
 * config, a missing lm_head.weight is wte; a stored one is discarded by v4 and kept by v5.
 */
async function loadAsTransformers(dir: string, rules: 'v4' | 'v5'): Promise<{ config: Record<string, unknown>; params: Map<string, Loaded> }> {
  const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  const ckpt = await readCheckpoint(join(dir, 'model.safetensors'));
  const params = new Map<string, Loaded>();
  for (const t of ckpt.header.tensors) params.set(t.name, { shape: t.shape, values: ckpt.f32(t.name) });
  const tied = config.tie_word_embeddings !== false;
  const wte = params.get('transformer.wte.weight');
  if (!wte) throw new Error(`${dir}: no transformer.wte.weight`);
  if (tied && (rules === 'v4' || !params.has('lm_head.weight'))) params.set('lm_head.weight', wte);
  if (!tied && !params.has('lm_head.weight')) throw new Error(`${dir}: untied config without lm_head.weight (transformers would initialise it randomly)`);
  return { config, params };
}

describe.each(tiedCases)('PEFT-written tied case %s', (name) => {
  const dir = join(data, name);
  const meta = readMeta(name);
  const verifyArgs = ['--base', join(dir, 'base'), '--adapter', join(dir, 'adapter')];

  it.each(['cpu', 'webgpu'] as const)('merges on %s to what the unmerged PEFT model computes (effective/), and verify accepts it', async (device) => {
    const out = join(work, `${name}-${device}`);
    const r = await runLorafuse(['merge', join(dir, 'base'), join(dir, 'adapter'), '--out', out, '--device', device]);
    expect(r.code, r.stderr).toBe(0);
    for (const rules of ['v4', 'v5'] as const) {
      const got = await loadAsTransformers(out, rules);
      const want = await loadAsTransformers(join(dir, 'effective'), rules);
      expect(got.config.vocab_size, 'vocab_size').toBe(meta.effective!.vocab_size);
      expect(got.config.tie_word_embeddings ?? true, 'tie_word_embeddings').toBe(meta.effective!.tie_word_embeddings);
      expect([...got.params.keys()].sort(), rules).toEqual([...want.params.keys()].sort());
      for (const [param, w] of want.params) {
        const g = got.params.get(param)!;
        expect(g.shape, `${name} ${rules}: ${param}`).toEqual(w.shape);
        expect(worstViolation(g.values, w.values, 1e-6, 1e-5), `${name} ${rules}: ${param}`).toBeLessThanOrEqual(0);
      }
    }
    const v = await runLorafuse(['verify', out, ...verifyArgs]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
  });

  it('lorafuse verify accepts effective/ (the unmerged weights, saved by transformers)', async () => {
    const v = await runLorafuse(['verify', join(dir, 'effective'), ...verifyArgs]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
  });

  const want = meta.peft_merged!;
  it(`lorafuse verify on PEFT's own merge (peft-merged/) exits ${want.lorafuse_verify_exit}${want.wrong_after_load.length ? ` naming ${want.wrong_after_load.join(', ')}` : ''}`, async () => {
    const v = await runLorafuse(['verify', join(dir, 'peft-merged'), ...verifyArgs]);
    expect(v.code, v.stdout + v.stderr).toBe(want.lorafuse_verify_exit);
    for (const tensor of want.wrong_after_load) expect(v.stdout + v.stderr).toContain(tensor);
  });

  it('lorafuse verify rejects the naive tied save (lm_head.weight dropped, tie kept), naming lm_head.weight', async () => {
    const eff = await readCheckpoint(join(dir, 'effective', 'model.safetensors'));
    expect(eff.header.byName.has('lm_head.weight'), 'every committed tied case trains the two uses apart').toBe(true);
    const tensors = eff.header.tensors
      .filter((t) => t.name !== 'lm_head.weight')
      .map((t) => ({ name: t.name, shape: t.shape, values: eff.f32(t.name) }));
    const config = JSON.parse(await readFile(join(dir, 'effective', 'config.json'), 'utf8'));
    config.tie_word_embeddings = true;
    const naive = await writeDir(join(work, `${name}-naive`), {
      'model.safetensors': await safetensorsBytes(tensors),
      'config.json': JSON.stringify(config, null, 2) + '\n',
      'generation_config.json': await readFile(join(dir, 'base', 'generation_config.json')),
    });
    const v = await runLorafuse(['verify', naive, ...verifyArgs]);
    expect(v.code, v.stdout + v.stderr).toBe(1);
    expect(v.stdout + v.stderr).toContain('lm_head.weight');
  });
});
