/**
 * Tied embeddings through the built CLI: whatever the adapter changes in wte / lm_head, what
 * transformers loads from the output equals the unmerged PEFT model's effective weights.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter, type AdapterFixtureOptions, type FixtureTensor, type Gpt2FixtureOptions } from '@lorafuse/core/testing';
import { SeededRandom } from '@lorafuse/core/testing';
import { expectedMerge, readCheckpoint, removeDir, runLorafuse, tempDir, worstViolation, writeDir } from './helpers.js';

let work: string;
beforeAll(async () => {
  work = await tempDir('lorafuse-tie-');
});
afterAll(async () => {
  await removeDir(work);
});

let n = 0;
async function makeCase(baseOpts: Gpt2FixtureOptions, adapterOpts: AdapterFixtureOptions) {
  const dir = join(work, `c${++n}`);
  const base = await makeGpt2Checkpoint({ seed: 20 + n, ...baseOpts });
  const adapter = await makeLoraAdapter({ seed: 40 + n, ...adapterOpts });
  return {
    dir,
    baseDir: await writeDir(join(dir, 'base'), base.files),
    adapterDir: await writeDir(join(dir, 'adapter'), adapter.files),
    out: join(dir, 'out'),
  };
}

const wtePath = (bare: boolean) => (bare ? 'wte.weight' : 'transformer.wte.weight');
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

describe('tied wte / lm_head', () => {
  it('LoRA on the tied lm_head: lm_head = base wte + B·A·s (Linear), wte unchanged, untied', async () => {
    const c = await makeCase({}, { modules: [{ module: 'lm_head', inFeatures: 16, outFeatures: 50, rank: 3 }], config: { target_modules: ['lm_head'], r: 3, lora_alpha: 6 } });
    const r = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', c.out, '--device', 'cpu', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.tie.decision).toBe('untie');
    expect(report.verified.map((v: { transformers: string }) => v.transformers)).toEqual(['v4', 'v5']);
    const base = await readCheckpoint(join(c.baseDir, 'model.safetensors'));
    const out = await readCheckpoint(join(c.out, 'model.safetensors'));
    const adapter = await readCheckpoint(join(c.adapterDir, 'adapter_model.safetensors'));
    expect(same(out.raw('transformer.wte.weight'), base.raw('transformer.wte.weight'))).toBe(true);
    const expected = expectedMerge(base.f32('transformer.wte.weight'), adapter.f32('base_model.model.lm_head.lora_A.weight'), adapter.f32('base_model.model.lm_head.lora_B.weight'), 3, [50, 16], false, 2);
    expect(worstViolation(out.f32('lm_head.weight'), expected, 1e-6, 1e-5)).toBeLessThanOrEqual(0);
    const config = JSON.parse(await readFile(join(c.out, 'config.json'), 'utf8'));
    expect(config.tie_word_embeddings).toBe(false);
    expect(config.vocab_size).toBe(50);
  });

  it('LoRA on the tied wte (Embedding, on WebGPU): wte += (B·A)ᵀ·s, lm_head keeps the base matrix, untied', async () => {
    const rng = new SeededRandom(5);
    const extra: FixtureTensor[] = [
      { name: 'transformer.wte.lora_embedding_A', shape: [4, 50], values: rng.normalArray(200, 0.3) },
      { name: 'transformer.wte.lora_embedding_B', shape: [16, 4], values: rng.normalArray(64, 0.3) },
    ];
    const c = await makeCase({}, { modules: [], extraTensors: extra, config: { target_modules: ['wte'], r: 4, lora_alpha: 4 } });
    const r = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', c.out, '--device', 'webgpu', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).tie.decision).toBe('untie');
    const base = await readCheckpoint(join(c.baseDir, 'model.safetensors'));
    const out = await readCheckpoint(join(c.out, 'model.safetensors'));
    expect(same(out.raw('lm_head.weight'), base.raw('transformer.wte.weight'))).toBe(true);
    // Embedding: W [vocab, dim] gets (B@A)ᵀ — the same index pattern as Conv1D's [in, out].
    const expected = expectedMerge(base.f32('transformer.wte.weight'), extra[0]!.values, extra[1]!.values, 4, [50, 16], true, 1);
    expect(worstViolation(out.f32('transformer.wte.weight'), expected, 1e-6, 1e-5)).toBeLessThanOrEqual(0);
  });

  it('seed scenario: vocabulary resized, both embeddings trained differently, rsLoRA on attention', async () => {
    const rng = new SeededRandom(9);
    const wte = rng.normalArray(53 * 16, 0.02);
    const head = rng.normalArray(53 * 16, 0.02);
    const c = await makeCase({}, {
      modules: gpt2LoraModules(16, [0, 1], ['attn.c_attn'], 4),
      config: { modules_to_save: ['wte', 'lm_head'], use_rslora: true, r: 4, lora_alpha: 8 },
      extraTensors: [
        { name: 'transformer.wte.weight', shape: [53, 16], values: wte },
        { name: 'lm_head.weight', shape: [53, 16], values: head },
      ],
    });
    const r = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', c.out, '--device', 'cpu', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = await readCheckpoint(join(c.out, 'model.safetensors'));
    expect(out.f32('transformer.wte.weight')).toEqual(wte);
    expect(out.f32('lm_head.weight')).toEqual(head);
    const config = JSON.parse(await readFile(join(c.out, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ vocab_size: 53, tie_word_embeddings: false });
  });

  it('keeps the tie when the trained wte and lm_head are bitwise equal, with the new vocab_size', async () => {
    const rng = new SeededRandom(10);
    const full = rng.normalArray(56 * 16, 0.02);
    const c = await makeCase({}, {
      modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2),
      config: { modules_to_save: ['wte', 'lm_head'] },
      extraTensors: [
        { name: 'transformer.wte.weight', shape: [56, 16], values: full },
        { name: 'lm_head.weight', shape: [56, 16], values: full },
      ],
    });
    const r = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', c.out, '--device', 'cpu', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).tie.decision).toBe('keep');
    const out = await readCheckpoint(join(c.out, 'model.safetensors'));
    expect(out.header.byName.has('lm_head.weight')).toBe(false);
    const config = JSON.parse(await readFile(join(c.out, 'config.json'), 'utf8'));
    expect(config.vocab_size).toBe(56);
    expect(config.tie_word_embeddings).toBeUndefined();
  });

  it('--tie keep is refused when it would discard trained weights; --force keeps it and says what is lost', async () => {
    const c = await makeCase({}, { modules: [{ module: 'lm_head', inFeatures: 16, outFeatures: 50, rank: 2 }], config: { target_modules: ['lm_head'] } });
    const refused = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', c.out, '--device', 'cpu', '--tie', 'keep']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--tie keep would discard trained weights: 50 row/);
    expect(existsSync(c.out)).toBe(false);
    const forced = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', c.out, '--device', 'cpu', '--tie', 'keep', '--force', '--json']);
    expect(forced.code, forced.stderr).toBe(0);
    const report = JSON.parse(forced.stdout);
    expect(report.findings.find((f: { code: string }) => f.code === 'TIE_KEPT_FORCED').message).toMatch(/lost/);
    const out = await readCheckpoint(join(c.out, 'model.safetensors'));
    expect(out.header.byName.has('lm_head.weight')).toBe(false);
  });

  it('a base with bare keys (like the Hub gpt2) gets the transformer. prefix back when lm_head is added', async () => {
    const c = await makeCase({ layout: 'bare' }, { modules: [{ module: 'lm_head', inFeatures: 16, outFeatures: 50, rank: 2 }], config: { target_modules: ['lm_head'] } });
    // The Hub checkpoint stores GPT2Model keys while its config says GPT2LMHeadModel.
    const cfg = JSON.parse(await readFile(join(c.baseDir, 'config.json'), 'utf8'));
    await writeDir(c.baseDir, { 'config.json': JSON.stringify({ ...cfg, architectures: ['GPT2LMHeadModel'] }) });
    const r = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', c.out, '--device', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    const out = await readCheckpoint(join(c.out, 'model.safetensors'));
    const base = await readCheckpoint(join(c.baseDir, 'model.safetensors'));
    expect(out.header.tensors.every((t) => t.name === 'lm_head.weight' || t.name.startsWith('transformer.'))).toBe(true);
    expect(same(out.raw(wtePath(false)), base.raw(wtePath(true)))).toBe(true);
  });
});

describe('lorafuse doctor', () => {
  it('BERT-style target_modules ["query", "value"]: exit 2 and suggests c_attn; merge stops too', async () => {
    const c = await makeCase({}, { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2), config: { target_modules: ['query', 'value'] } });
    const r = await runLorafuse(['doctor', c.baseDir, c.adapterDir]);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/TARGETS_MATCH_NOTHING/);
    expect(r.stdout).toMatch(/"c_attn"/);
    const m = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', c.out, '--device', 'cpu']);
    expect(m.code).toBe(2);
    expect(m.stderr).toMatch(/match no module of GPT-2/);
    expect(existsSync(c.out)).toBe(false);
  });

  it('warns about ignored target names, one side of a tie, and a different base model; JSON has severities and fixes', async () => {
    const c = await makeCase({}, {
      modules: [{ module: 'lm_head', inFeatures: 16, outFeatures: 50, rank: 2 }],
      config: { target_modules: ['lm_head', 'q_proj'], base_model_name_or_path: 'openai-community/gpt2-medium' },
    });
    const cfgPath = join(c.baseDir, 'config.json');
    const cfg = JSON.parse(await readFile(cfgPath, 'utf8'));
    await writeDir(c.baseDir, { 'config.json': JSON.stringify({ ...cfg, _name_or_path: 'gpt2' }) });
    const r = await runLorafuse(['doctor', c.baseDir, c.adapterDir, '--json']);
    expect(r.code, r.stdout).toBe(0);
    const doc = JSON.parse(r.stdout);
    const codes = doc.findings.map((f: { code: string }) => f.code);
    expect(codes).toEqual(expect.arrayContaining(['TARGETS_PARTLY_UNMATCHED', 'ONE_SIDE_OF_TIE_TRAINED', 'BASE_MODEL_NAME_DIFFERS']));
    for (const f of doc.findings) expect(['error', 'warning', 'info']).toContain(f.severity);
    expect(doc.findings.find((f: { code: string }) => f.code === 'ONE_SIDE_OF_TIE_TRAINED').fix).toMatch(/unties/);
  });

  it('a resized vocabulary without the embedding weights saved is an error', async () => {
    const c = await makeCase({}, { modules: [{ module: 'lm_head', inFeatures: 16, outFeatures: 52, rank: 2 }], config: { target_modules: ['lm_head'] } });
    const r = await runLorafuse(['doctor', c.baseDir, c.adapterDir]);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/VOCAB_RESIZED_WITHOUT_EMBEDDINGS/);
  });
});

describe('lorafuse verify', () => {
  it("passes lorafuse's own output and fails a naive tied save of a trained lm_head, naming lm_head.weight", async () => {
    const c = await makeCase({}, { modules: [{ module: 'lm_head', inFeatures: 16, outFeatures: 50, rank: 2 }, ...gpt2LoraModules(16, [1], ['attn.c_attn'], 2)], config: { target_modules: ['lm_head', 'c_attn'] } });
    const merged = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', c.out, '--device', 'cpu']);
    expect(merged.code, merged.stderr).toBe(0);
    const ok = await runLorafuse(['verify', c.out, '--base', c.baseDir, '--adapter', c.adapterDir, '--json']);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).ok).toBe(true);
    // On the GPU, the recomputed merges differ from the CPU's in the last bits only: still verified.
    const gpu = await runLorafuse(['verify', c.out, '--base', c.baseDir, '--adapter', c.adapterDir, '--device', 'webgpu']);
    expect(gpu.code, gpu.stdout + gpu.stderr).toBe(0);

    // The naive way: keep the tie (config says tied) and store the trained lm_head beside wte.
    const naive = join(c.dir, 'naive');
    const cfg = JSON.parse(await readFile(join(c.out, 'config.json'), 'utf8'));
    delete cfg.tie_word_embeddings;
    await writeDir(naive, { 'config.json': JSON.stringify(cfg), 'model.safetensors': await readFile(join(c.out, 'model.safetensors')) });
    const bad = await runLorafuse(['verify', naive, '--base', c.baseDir, '--adapter', c.adapterDir]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/FAIL lm_head\.weight \[v4\]/);
    expect(bad.stdout).toMatch(/discarded on load: lm_head\.weight/);
  });

  it('fails a directory whose config is untied but has no lm_head (transformers initialises it randomly)', async () => {
    const c = await makeCase({}, { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2) });
    expect((await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', c.out, '--device', 'cpu'])).code).toBe(0);
    const cfg = JSON.parse(await readFile(join(c.out, 'config.json'), 'utf8'));
    const broken = await writeDir(join(c.dir, 'broken'), { 'config.json': JSON.stringify({ ...cfg, tie_word_embeddings: false }), 'model.safetensors': await readFile(join(c.out, 'model.safetensors')) });
    const r = await runLorafuse(['verify', broken, '--base', c.baseDir, '--adapter', c.adapterDir, '--json']);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.failures[0]).toMatchObject({ name: 'lm_head.weight', status: 'random' });
  });
});

describe('trainable tokens', () => {
  it('list form on a tied base: the rows replace wte rows at the config indices and lm_head keeps the tie', async () => {
    const rows = new SeededRandom(31).normalArray(3 * 16, 0.5);
    const c = await makeCase({}, { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2), config: { trainable_token_indices: [5, 0, 49] }, extraTensors: [{ name: 'transformer.wte.token_adapter.trainable_tokens_delta', shape: [3, 16], values: rows }] });
    for (const device of ['cpu', 'webgpu'] as const) {
      const out = join(c.dir, `out-${device}`);
      const r = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', out, '--device', device, '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).tie.decision).toBe('keep');
      const base = await readCheckpoint(join(c.baseDir, 'model.safetensors'));
      const got = await readCheckpoint(join(out, 'model.safetensors'));
      const expected = base.f32('transformer.wte.weight').slice();
      [5, 0, 49].forEach((index, k) => expected.set(rows.subarray(k * 16, (k + 1) * 16), index * 16));
      expect(got.f32('transformer.wte.weight')).toEqual(expected);
      expect(got.header.byName.has('lm_head.weight')).toBe(false);
      const v = await runLorafuse(['verify', out, '--base', c.baseDir, '--adapter', c.adapterDir]);
      expect(v.code, v.stdout).toBe(0);
    }
  });
});
