/**
 * The forward-pass commands through the built CLI: `logits`, `generate` and `verify --behaviour` on
 * generated checkpoints, including the seed's symptom (a naive tied save of a LoRA on lm_head).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fixtureTokenizerJson, makeGpt2Checkpoint, makeLoraAdapter, gpt2LoraModules, safetensorsBytes, SeededRandom } from '@lorafuse/core/testing';
import { readCheckpoint, removeDir, runLorafuse, tempDir, writeDir } from './helpers.js';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map(removeDir));
});

const V = 100;
const E = 16;
const tokenizer = fixtureTokenizerJson({ merges: [['h', 'e'], ['Ġ', 't']] });

/** A tied base with a tokenizer, and an adapter with LoRA on c_attn and on the tied lm_head. */
async function makeCase() {
  const root = await tempDir('lorafuse-behaviour-');
  dirs.push(root);
  const base = await makeGpt2Checkpoint({ seed: 5, nEmbd: E, vocabSize: V, nPositions: 24 });
  await writeDir(join(root, 'base'), { ...base.files, 'tokenizer.json': tokenizer });
  const adapter = await makeLoraAdapter({
    seed: 6,
    modules: [...gpt2LoraModules(E, [0, 1], ['attn.c_attn'], 4), { module: 'lm_head', inFeatures: E, outFeatures: V, rank: 4 }],
    config: { target_modules: ['c_attn', 'lm_head'], r: 4, lora_alpha: 8 },
  });
  await writeDir(join(root, 'adapter'), adapter.files);
  return { root, base: join(root, 'base'), adapter: join(root, 'adapter') };
}

describe('lorafuse logits / generate', () => {
  it('prints [len, vocab] logits; greedy generation follows their argmax; text goes through tokenizer.json', async () => {
    const c = await makeCase();
    const logits = await runLorafuse(['logits', c.base, '--prompt', 'he the', '--json']);
    expect(logits.code, logits.stderr).toBe(0);
    const doc = JSON.parse(logits.stdout) as { ids: number[]; logits: number[][] };
    // 'he' and 'Ġt' are the fixture tokenizer's first merges (ids 95 and 96).
    expect(doc.ids).toEqual([95, 96, 95]);
    expect(doc.logits).toHaveLength(doc.ids.length);
    expect(doc.logits[0]).toHaveLength(V);
    const gen = await runLorafuse(['generate', c.base, '--ids', doc.ids.join(','), '--tokens', '3', '--ignore-eos', '--json']);
    expect(gen.code, gen.stderr).toBe(0);
    const g = JSON.parse(gen.stdout) as { generated: number[]; text: string };
    const last = doc.logits[doc.logits.length - 1]!;
    expect(g.generated[0]).toBe(last.indexOf(Math.max(...last)));
    expect(g.generated).toHaveLength(3);
    expect(g.text.startsWith('he the')).toBe(true);

    const human = await runLorafuse(['logits', c.base, '--ids', '1,2', '--top', '2']);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/2 tokens, 100 logits per position/);
    expect(human.stdout.trim().split('\n')).toHaveLength(3);
  });

  it('the WGSL kernels in Chromium and on Dawn give the CPU reference\'s logits and greedy tokens, adapter applied unmerged', async () => {
    const c = await makeCase();
    const ids = Array.from({ length: 24 }, (_, i) => (i * 37) % V).join(',');
    const run = async (device: string) => {
      const r = await runLorafuse(['logits', c.base, '--adapter', c.adapter, '--ids', ids, '--device', device, '--json']);
      expect(r.code, r.stderr).toBe(0);
      const g = await runLorafuse(['generate', c.base, '--adapter', c.adapter, '--ids', '1,2', '--tokens', '8', '--ignore-eos', '--device', device, '--json']);
      expect(g.code, g.stderr).toBe(0);
      return { logits: (JSON.parse(r.stdout) as { logits: number[][] }).logits.flat(), generated: (JSON.parse(g.stdout) as { generated: number[] }).generated, device: (JSON.parse(r.stdout) as { device: string }).device };
    };
    const cpu = await run('cpu');
    for (const device of ['webgpu', 'dawn']) {
      const gpu = await run(device);
      expect(gpu.device).toMatch(/WGSL kernels/);
      const worst = Math.max(...gpu.logits.map((v, i) => Math.abs(v - cpu.logits[i]!) - 1e-4 * Math.abs(cpu.logits[i]!)));
      expect(worst, device).toBeLessThanOrEqual(1e-4);
      expect(gpu.generated, device).toEqual(cpu.generated);
    }
  });

  it('with --adapter applies it unmerged: logits differ from the base alone', async () => {
    const c = await makeCase();
    const a = JSON.parse((await runLorafuse(['logits', c.base, '--ids', '3,4,5', '--json'])).stdout) as { logits: number[][] };
    const b = JSON.parse((await runLorafuse(['logits', c.base, '--adapter', c.adapter, '--ids', '3,4,5', '--json'])).stdout) as { logits: number[][] };
    expect(b.logits).toHaveLength(3);
    expect(Math.max(...b.logits.flat().map((v, i) => Math.abs(v - a.logits.flat()[i]!)))).toBeGreaterThan(1e-3);
  });

  it('bad input is exit 2 naming the field: ids out of range, too long, unsupported config, no tokenizer, device', async () => {
    const c = await makeCase();
    const out = await runLorafuse(['logits', c.base, '--ids', `1,${V}`]);
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/vocab_size is 100/);
    const long = await runLorafuse(['generate', c.base, '--ids', new Array(25).fill(1).join(',')]);
    expect(long.code).toBe(2);
    expect(long.stderr).toMatch(/n_positions is 24/);
    const badIds = await runLorafuse(['logits', c.base, '--ids', '1,x']);
    expect(badIds.code).toBe(2);
    expect(badIds.stderr).toMatch(/--ids must be comma-separated/);

    const config = JSON.parse(await readFile(join(c.base, 'config.json'), 'utf8')) as Record<string, unknown>;
    const odd = await writeDir(join(c.root, 'odd'), { 'model.safetensors': new Uint8Array(await readFile(join(c.base, 'model.safetensors'))), 'config.json': JSON.stringify({ ...config, activation_function: 'mish' }) });
    const r = await runLorafuse(['logits', odd, '--ids', '1', '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout).error).toMatchObject({ code: 'FORWARD_CONFIG_UNSUPPORTED', subject: 'activation_function' });

    const plain = await writeDir(join(c.root, 'plain'), { 'model.safetensors': new Uint8Array(await readFile(join(c.base, 'model.safetensors'))), 'config.json': JSON.stringify(config) });
    const noTok = await runLorafuse(['generate', plain, '--prompt', 'hi']);
    expect(noTok.code).toBe(2);
    expect(noTok.stderr).toMatch(/tokenizer\.json/);
    expect(noTok.stderr).toMatch(/--ids/);

    const dev = await runLorafuse(['logits', c.base, '--ids', '1', '--device', 'tpu']);
    expect(dev.code).toBe(2);
    expect(dev.stderr).toMatch(/--device must be cpu, webgpu or dawn/);
  });
});

describe('lorafuse verify --behaviour', () => {
  it('passes on lorafuse merge output and fails on a naive tied save, with greedy text diverging', async () => {
    const c = await makeCase();
    const out = join(c.root, 'out');
    const merged = await runLorafuse(['merge', c.base, c.adapter, '--out', out, '--device', 'cpu', '--json']);
    expect(merged.code, merged.stderr).toBe(0);
    const ok = await runLorafuse(['verify', out, '--base', c.base, '--adapter', c.adapter, '--behaviour', '--device', 'webgpu', '--json']);
    expect(ok.code, ok.stdout).toBe(0);
    const okDoc = JSON.parse(ok.stdout);
    expect(okDoc.behaviour).toMatchObject({ ok: true, tolerance: { atol: 1e-4, rtol: 1e-4 }, positions: 'every position of 24' });
    expect(okDoc.behaviour.device).toMatch(/headless Chromium/);
    expect(okDoc.behaviour.maxAbsDiff).toBeLessThan(1e-4);

    // What PEFT's merge_and_unload + save_pretrained does here: the LoRA delta lands on the one tied
    // matrix, so the input embedding changes too, and the save keeps the tie.
    const written = await readCheckpoint(join(out, 'model.safetensors'));
    const tensors = written.header.tensors.filter((t) => t.name !== 'lm_head.weight').map((t) => ({
      name: t.name,
      shape: t.shape,
      values: t.name === 'transformer.wte.weight' ? written.f32('lm_head.weight') : written.f32(t.name),
    }));
    const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    const naive = await writeDir(join(c.root, 'naive'), { 'model.safetensors': await safetensorsBytes(tensors), 'config.json': JSON.stringify({ ...config, tie_word_embeddings: true }), 'tokenizer.json': tokenizer });
    const bad = await runLorafuse(['verify', naive, '--base', c.base, '--adapter', c.adapter, '--behaviour', '--prompt', 'the']);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/behaves DIFFERENTLY from base \+ adapter/);
    expect(bad.stdout).toMatch(/max \|logit difference\| /);
    const json = JSON.parse((await runLorafuse(['verify', naive, '--base', c.base, '--adapter', c.adapter, '--behaviour', '--json'])).stdout);
    expect(json.behaviour.ok).toBe(false);
    expect(json.behaviour.sequences[0].violations).toBeGreaterThan(0);
  });

  it('compares a sequence classifier\'s label logits and decodes nothing greedily', async () => {
    const root = await tempDir('lorafuse-behaviour-score-');
    dirs.push(root);
    const base = await makeGpt2Checkpoint({ seed: 7, nEmbd: E, vocabSize: V, nPositions: 24, head: 'score', numLabels: 3 });
    const adapter = await makeLoraAdapter({ seed: 8, modules: gpt2LoraModules(E, [0, 1], ['attn.c_attn'], 4), config: { target_modules: ['c_attn'], r: 4, lora_alpha: 8, task_type: 'SEQ_CLS' } });
    const [baseDir, adapterDir, out] = [join(root, 'base'), join(root, 'adapter'), join(root, 'out')];
    await writeDir(baseDir, base.files);
    await writeDir(adapterDir, adapter.files);
    const merged = await runLorafuse(['merge', baseDir, adapterDir, '--out', out, '--device', 'cpu']);
    expect(merged.code, merged.stderr).toBe(0);
    const ok = await runLorafuse(['verify', out, '--base', baseDir, '--adapter', adapterDir, '--behaviour', '--json']);
    expect(ok.code, ok.stdout).toBe(0);
    const doc = JSON.parse(ok.stdout);
    expect(doc.behaviour).toMatchObject({ ok: true, greedy: [] });
    expect(doc.behaviour.sequences.length).toBeGreaterThan(0);
    expect(doc.behaviour.notes.join('\n')).toMatch(/gives labels, not tokens/);
  });

  it('fails on an output with a wrong merged weight, probing with the given ids', async () => {
    const c = await makeCase();
    const out = join(c.root, 'out2');
    expect((await runLorafuse(['merge', c.base, c.adapter, '--out', out, '--device', 'cpu'])).code).toBe(0);
    const written = await readCheckpoint(join(out, 'model.safetensors'));
    const rng = new SeededRandom(3);
    const tensors = written.header.tensors.map((t) => {
      const values = written.f32(t.name).slice();
      if (t.name === 'transformer.h.1.attn.c_attn.weight') values.forEach((v, i) => (values[i] = v + rng.normal(0.05)));
      return { name: t.name, shape: t.shape, values };
    });
    await writeFile(join(out, 'model.safetensors'), await safetensorsBytes(tensors));
    const r = await runLorafuse(['verify', out, '--base', c.base, '--adapter', c.adapter, '--behaviour', '--ids', '1,2,3,4', '--json']);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.behaviour.ok).toBe(false);
    expect(doc.behaviour.sequences).toHaveLength(1);
    expect(doc.behaviour.sequences[0].ids).toEqual([1, 2, 3, 4]);
  });

  it('probe options need --behaviour', async () => {
    const c = await makeCase();
    const r = await runLorafuse(['verify', c.base, '--base', c.base, '--adapter', c.adapter, '--ids', '1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--ids goes with --behaviour/);
  });
});

describe('the output carries the tokenizer training used', () => {
  it('an adapter that saved a tokenizer gives the output that tokenizer, in place of the base\'s', async () => {
    const c = await makeCase();
    const trained = fixtureTokenizerJson({ merges: [['h', 'e'], ['Ġ', 't']], added: ['<|new|>'] });
    await writeFile(join(c.adapter, 'tokenizer.json'), trained);
    await writeFile(join(c.base, 'tokenizer_config.json'), '{"model_max_length": 24}');
    const out = join(c.root, 'out-tok');
    const r = await runLorafuse(['merge', c.base, c.adapter, '--out', out, '--device', 'cpu', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.filesCopiedFromAdapter).toEqual(['tokenizer.json']);
    expect(report.filesCopied).not.toContain('tokenizer.json');
    // The base's tokenizer files go as a set: no mixing of the two tokenizers' files.
    expect(report.filesCopied).not.toContain('tokenizer_config.json');
    expect(await readFile(join(out, 'tokenizer.json'), 'utf8')).toBe(trained);
    const human = await runLorafuse(['merge', c.base, c.adapter, '--out', out, '--overwrite', '--device', 'cpu']);
    expect(human.stdout).toMatch(/copied from adapter \(the tokenizer training used, in place of the base's\): tokenizer\.json/);
  });
});
