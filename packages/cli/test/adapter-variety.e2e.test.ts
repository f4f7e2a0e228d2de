/**
 * Adapters people actually have, end to end through the built CLI: lora_bias merged into the module
 * bias (and refused, naming the module, where the module has none), a classifier's pad token,
 * target_parameters, PEFT's new-token recipe, unconverted PiSSA; outputs proven by verify, every
 * refusal exits 2 with nothing written and the inputs untouched.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter, SeededRandom, type AdapterFixtureOptions } from '@lorafuse/core/testing';
import { readCheckpoint, removeDir, runLorafuse, tempDir, writeDir } from './helpers.js';

let work: string;
let baseDir: string;

function digestDir(...dirs: string[]): string {
  const h = createHash('sha256');
  for (const d of dirs) for (const f of readdirSync(d).sort()) h.update(f).update(readFileSync(join(d, f)));
  return h.digest('hex');
}

async function adapterDir(name: string, options: AdapterFixtureOptions): Promise<string> {
  return writeDir(join(work, name), (await makeLoraAdapter(options)).files);
}

/** Runs a merge that must be refused: exit 2, the message matched, no output, inputs byte-identical. */
async function expectRefused(adapter: string, message: RegExp, extra: string[] = []): Promise<void> {
  const before = digestDir(baseDir, adapter);
  const out = join(work, `out-refused-${Math.random().toString(36).slice(2)}`);
  const r = await runLorafuse(['merge', baseDir, adapter, '--out', out, '--device', 'cpu', ...extra]);
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(existsSync(out)).toBe(false);
  expect(digestDir(baseDir, adapter)).toBe(before);
}

beforeAll(async () => {
  work = await tempDir('lorafuse-variety-');
  const base = await makeGpt2Checkpoint({ seed: 71, nEmbd: 16, nLayer: 2, nHead: 2, vocabSize: 30, nPositions: 8 });
  baseDir = await writeDir(join(work, 'base'), base.files);
});
afterAll(async () => {
  await removeDir(work);
});

describe('lora_bias', () => {
  it('adds scale·lora_B.bias to the module bias (on top of a saved trained bias), and verify proves it', async () => {
    const lb = Float32Array.from({ length: 48 }, (_, i) => (i - 24) / 16);
    const trained = new Float32Array(64).fill(0.75);
    const dir = await adapterDir('adapter-lora-bias', {
      seed: 72,
      modules: gpt2LoraModules(16, [0], ['attn.c_attn', 'mlp.c_fc'], 2),
      config: { r: 2, lora_alpha: 4, lora_bias: true, bias: 'lora_only', target_modules: ['c_attn', 'c_fc'] },
      extraTensors: [
        { name: 'transformer.h.0.attn.c_attn.lora_B.bias', shape: [48], values: lb },
        { name: 'transformer.h.0.mlp.c_fc.lora_B.bias', shape: [64], values: new Float32Array(64).fill(-1) },
        { name: 'transformer.h.0.mlp.c_fc.base_layer.bias', shape: [64], values: trained },
      ],
    });
    const out = join(work, 'out-lora-bias');
    const r = await runLorafuse(['merge', baseDir, dir, '--out', out, '--device', 'cpu', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.tensors.merged).toBe(4);
    expect(doc.findings.find((f: { code: string }) => f.code === 'LORA_BIAS_MERGED')?.message).toMatch(/transformer\.h\.0\.attn\.c_attn, transformer\.h\.0\.mlp\.c_fc/);
    const base = await readCheckpoint(join(baseDir, 'model.safetensors'));
    const merged = await readCheckpoint(join(out, 'model.safetensors'));
    const b0 = base.f32('transformer.h.0.attn.c_attn.bias');
    const b1 = merged.f32('transformer.h.0.attn.c_attn.bias');
    // scale = lora_alpha / r = 2
    for (let i = 0; i < 48; i++) expect(b1[i]).toBe(Math.fround(b0[i]! + 2 * lb[i]!));
    expect(Array.from(merged.f32('transformer.h.0.mlp.c_fc.bias'))).toEqual(new Array(64).fill(0.75 - 2));
    expect(merged.raw('transformer.h.1.attn.c_attn.bias')).toEqual(base.raw('transformer.h.1.attn.c_attn.bias'));
    const v = await runLorafuse(['verify', out, '--base', baseDir, '--adapter', dir, '--device', 'cpu']);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    // The same output is not what an adapter without the biases means.
    const plain = await adapterDir('adapter-lora-bias-off', { seed: 72, modules: gpt2LoraModules(16, [0], ['attn.c_attn', 'mlp.c_fc'], 2), config: { r: 2, lora_alpha: 4, target_modules: ['c_attn', 'c_fc'] } });
    expect((await runLorafuse(['verify', out, '--base', baseDir, '--adapter', plain, '--device', 'cpu'])).code).toBe(1);
  });

  it('lora_B biases with lora_bias: false are left out as PEFT leaves them, with a warning merge and doctor both give', async () => {
    const dir = await adapterDir('adapter-lora-bias-noflag', {
      seed: 73,
      modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2),
      extraTensors: [{ name: 'transformer.h.0.attn.c_attn.lora_B.bias', shape: [48], values: new Float32Array(48).fill(1) }],
    });
    const out = join(work, 'out-noflag');
    const r = await runLorafuse(['merge', baseDir, dir, '--out', out, '--device', 'cpu', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).findings.find((f: { code: string }) => f.code === 'LORA_BIAS_IGNORED')?.severity).toBe('warning');
    const base = await readCheckpoint(join(baseDir, 'model.safetensors'));
    expect((await readCheckpoint(join(out, 'model.safetensors'))).raw('transformer.h.0.attn.c_attn.bias')).toEqual(base.raw('transformer.h.0.attn.c_attn.bias'));
    const d = await runLorafuse(['doctor', baseDir, dir, '--json']);
    expect(JSON.parse(d.stdout).findings.map((f: { code: string }) => f.code)).toContain('LORA_BIAS_IGNORED');
  });

  it('refuses a lora_B bias on lm_head, which has no bias: exit 2, nothing written, inputs untouched', async () => {
    const dir = await adapterDir('adapter-lora-bias-head', {
      seed: 74,
      modules: [{ module: 'lm_head', inFeatures: 16, outFeatures: 30, rank: 2 }],
      config: { lora_bias: true, target_modules: ['lm_head'] },
      extraTensors: [{ name: 'lm_head.lora_B.bias', shape: [30], values: new Float32Array(30).fill(1) }],
    });
    await expectRefused(dir, /"lm_head" has no bias/);
  });
});

describe('sequence classification without a pad token', () => {
  const scoreAdapter = () => adapterDir('adapter-score', {
    seed: 75,
    modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2),
    config: { r: 2, task_type: 'SEQ_CLS', modules_to_save: ['score'] },
    extraTensors: [{ name: 'score.weight', shape: [3, 16], values: Float32Array.from({ length: 48 }, (_, i) => i / 48) }],
  });

  it('the output config gets pad_token_id = eos_token_id (or --pad-token-id), and the report says so', async () => {
    const dir = await scoreAdapter();
    const out = join(work, 'out-score');
    const r = await runLorafuse(['merge', baseDir, dir, '--out', out, '--device', 'cpu', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.configChanges.join('\n')).toMatch(/pad_token_id: null → 29 \(eos_token_id/);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ architectures: ['GPT2ForSequenceClassification'], pad_token_id: 29 });
    const human = await runLorafuse(['merge', baseDir, dir, '--out', join(work, 'out-score-7'), '--device', 'cpu', '--pad-token-id', '7']);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/config\.json: pad_token_id: null → 7 \(--pad-token-id\)/);
    expect(JSON.parse(readFileSync(join(work, 'out-score-7', 'config.json'), 'utf8')).pad_token_id).toBe(7);
  });

  it('refuses a --pad-token-id outside the vocabulary or not a number: exit 2, nothing written', async () => {
    const dir = await scoreAdapter();
    await expectRefused(dir, /--pad-token-id 30 is outside the output's vocabulary of 30 tokens/, ['--pad-token-id', '30']);
    await expectRefused(dir, /--pad-token-id must be a non-negative integer/, ['--pad-token-id', 'eos']);
    expect((await runLorafuse(['merge', '--help'])).stdout).toMatch(/--pad-token-id <id>/);
  });
});

describe('initialisations and parameter targets', () => {
  it('target_parameters: scale·B·A is added to the Conv1D weight as stored, and verify --behaviour agrees with the unmerged model', async () => {
    const dir = await adapterDir('adapter-target-parameters', {
      seed: 76,
      modules: [{ module: 'transformer.h.0.attn.c_attn', inFeatures: 48, outFeatures: 16, rank: 2 }],
      config: { r: 2, lora_alpha: 4, target_modules: [], target_parameters: ['attn.c_attn.weight'], init_lora_weights: 'mica' },
    });
    const out = join(work, 'out-target-parameters');
    const r = await runLorafuse(['merge', baseDir, dir, '--out', out, '--device', 'cpu', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).loraModules).toMatchObject([{ module: 'transformer.h.0.attn.c_attn', orientation: 'parameter as stored (target_parameters)', scale: 2 }]);
    const base = await readCheckpoint(join(baseDir, 'model.safetensors'));
    const adapter = await readCheckpoint(join(dir, 'adapter_model.safetensors'));
    const merged = await readCheckpoint(join(out, 'model.safetensors'));
    const [w0, w1] = [base.f32('transformer.h.0.attn.c_attn.weight'), merged.f32('transformer.h.0.attn.c_attn.weight')];
    const a = adapter.f32('base_model.model.transformer.h.0.attn.c_attn.lora_A.weight');
    const b = adapter.f32('base_model.model.transformer.h.0.attn.c_attn.lora_B.weight');
    for (const [i, j] of [[0, 0], [3, 40], [15, 47]] as const) {
      const expected = w0[i * 48 + j]! + 2 * (b[i * 2]! * a[j]! + b[i * 2 + 1]! * a[48 + j]!);
      expect(Math.abs(w1[i * 48 + j]! - expected)).toBeLessThan(1e-6);
    }
    const v = await runLorafuse(['verify', out, '--base', baseDir, '--adapter', dir, '--device', 'cpu', '--behaviour']);
    expect(v.code, v.stdout + v.stderr).toBe(0);
  });

  it("PEFT's new-token recipe: rows written into the resized embedding the adapter saved; vocab_size grows, the tie is kept, verify --behaviour passes", async () => {
    const rng = new SeededRandom(77);
    const resized = rng.normalArray(33 * 16, 0.5);
    const rows = rng.normalArray(3 * 16, 0.5);
    const dir = await adapterDir('adapter-new-tokens', {
      seed: 78,
      modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2),
      config: { r: 2, trainable_token_indices: [30, 31, 32] },
      extraTensors: [
        { name: 'lm_head.token_adapter.base_layer.weight', shape: [33, 16], values: resized },
        { name: 'lm_head.token_adapter.trainable_tokens_delta', shape: [3, 16], values: rows },
        { name: 'transformer.wte.token_adapter.base_layer.weight', shape: [33, 16], values: resized },
        { name: 'transformer.wte.token_adapter.trainable_tokens_delta', shape: [3, 16], values: rows },
      ],
    });
    const out = join(work, 'out-new-tokens');
    const r = await runLorafuse(['merge', baseDir, dir, '--out', out, '--device', 'cpu', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).tie.decision).toBe('keep');
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).vocab_size).toBe(33);
    const wte = (await readCheckpoint(join(out, 'model.safetensors'))).f32('transformer.wte.weight');
    expect(Array.from(wte.subarray(0, 30 * 16))).toEqual(Array.from(resized.subarray(0, 30 * 16)));
    expect(Array.from(wte.subarray(30 * 16))).toEqual(Array.from(rows));
    const v = await runLorafuse(['verify', out, '--base', baseDir, '--adapter', dir, '--device', 'cpu', '--behaviour']);
    expect(v.code, v.stdout + v.stderr).toBe(0);
  });

  it('an unconverted PiSSA adapter is refused with the conversion recipe: exit 2, nothing written, inputs untouched', async () => {
    const dir = await adapterDir('adapter-pissa', { seed: 79, modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2), config: { init_lora_weights: 'pissa' } });
    await expectRefused(dir, /path_initial_model_for_weight_conversion="<init-dir>"/);
  });
});
