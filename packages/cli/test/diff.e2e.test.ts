/**
 * `lorafuse diff` end to end: the built CLI on generated checkpoints and adapters (and the real PEFT
 * adapters in /work/shared), on both devices. GPU statistics are checked against the CPU path with
 * the tolerances of the kernel's own tests (see packages/kernels/test/compare.browser.test.ts).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMPARE_GPU_SHAPE, COMPARE_SOFTWARE_SHAPE } from '@lorafuse/kernels/internal';
import { encodeFromF32 } from '@lorafuse/core';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter, safetensorsBytes, type FixtureTensor } from '@lorafuse/core/testing';
import { readCheckpoint, removeDir, runLorafuse, tempDir, writeDir } from './helpers.js';

let work: string;
beforeAll(async () => {
  work = await tempDir('lorafuse-diff-test-');
});
afterAll(async () => {
  await removeDir(work);
});

let counter = 0;
const dirOf = (name: string) => join(work, `${++counter}-${name}`);

/**
 * A safetensors file written by hand (not by our writer): header keys and data in the given order,
 * the header padded with `extraPadding` more spaces than the reference writer uses.
 */
function handWrittenSafetensors(tensors: readonly FixtureTensor[], extraPadding: number): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const data = tensors.map((t) => encodeFromF32(t.dtype ?? 'F32', t.values));
  let offset = 0;
  tensors.forEach((t, i) => {
    header[t.name] = { dtype: t.dtype ?? 'F32', shape: t.shape, data_offsets: [offset, offset + data[i]!.byteLength] };
    offset += data[i]!.byteLength;
  });
  let json = JSON.stringify(header);
  json += ' '.repeat(((8 - (json.length % 8)) % 8) + extraPadding);
  const jsonBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + jsonBytes.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(jsonBytes.byteLength), true);
  out.set(jsonBytes, 8);
  let at = 8 + jsonBytes.byteLength;
  for (const d of data) {
    out.set(d, at);
    at += d.byteLength;
  }
  return out;
}

async function checkpointDir(name: string, config: Record<string, unknown>, file: Uint8Array): Promise<string> {
  return writeDir(dirOf(name), { 'config.json': JSON.stringify(config), 'model.safetensors': file });
}

const copyTensors = (ts: readonly FixtureTensor[]) => ts.map((t) => ({ ...t, values: t.values.slice() }));

async function diffJson(args: string[]) {
  const r = await runLorafuse(['diff', ...args, '--json']);
  let doc: any;
  try {
    doc = JSON.parse(r.stdout);
  } catch {
    throw new Error(`not JSON (exit ${r.code}): ${r.stdout}\n${r.stderr}`);
  }
  return { code: r.code, doc, stderr: r.stderr };
}

describe('lorafuse diff: acceptance', () => {
  it('identical contents with another tensor order and header padding: exit 0, all byte-identical, no browser needed', async () => {
    const ckpt = await makeGpt2Checkpoint({ seed: 11 });
    const a = await checkpointDir('same-a', ckpt.config, ckpt.files['model.safetensors']!);
    const b = await checkpointDir('same-b', ckpt.config, handWrittenSafetensors([...ckpt.tensors].reverse(), 64));
    expect(await readFile(join(a, 'model.safetensors'))).not.toEqual(await readFile(join(b, 'model.safetensors')));
    for (const device of ['webgpu', 'cpu']) {
      const { code, doc } = await diffJson([a, b, '--device', device]);
      expect(code).toBe(0);
      expect(doc).toMatchObject({ ok: true, equal: true, exitCode: 0, mode: 'stored', deviceDescription: null });
      expect(doc.diff.counts).toEqual({ compared: ckpt.tensors.length, identical: ckpt.tensors.length, withinTolerance: 0, differs: 0 });
      expect(doc.verdict).toBe(`equal: ${ckpt.tensors.length} tensors within atol=1e-6, rtol=1e-5 (all byte-identical)`);
    }
    const human = await runLorafuse(['diff', a, b]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^equal: 28 tensors within atol=1e-6, rtol=1e-5 \(all byte-identical\)$/m);
  });

  it.each(['cpu', 'webgpu', 'dawn'])('one element changed by 1e-3: exit 1, that tensor first with max abs 1e-3 and 1 violation (--device %s)', async (device) => {
    const ckpt = await makeGpt2Checkpoint({ seed: 12 });
    const changed = copyTensors(ckpt.tensors);
    const target = changed.find((t) => t.name === 'transformer.h.1.mlp.c_fc.weight')!;
    const before = target.values[77]!;
    target.values[77] = before + 1e-3;
    const a = await checkpointDir('one-a', ckpt.config, ckpt.files['model.safetensors']!);
    const b = await checkpointDir('one-b', ckpt.config, await safetensorsBytes(changed));
    const { code, doc } = await diffJson([a, b, '--device', device]);
    expect(code).toBe(1);
    expect(doc).toMatchObject({ equal: false, exitCode: 1, device });
    expect(doc.deviceDescription).toEqual(device === 'cpu' ? expect.stringMatching(/CPU reference/) : expect.any(String));
    const [first, ...rest] = doc.diff.tensors;
    expect(first).toMatchObject({ name: 'transformer.h.1.mlp.c_fc.weight', status: 'differs', stats: { violations: 1, count: 16 * 64 } });
    // The stored difference is 1e-3 up to the f32 rounding of `before + 1e-3`.
    expect(Math.abs(first.stats.maxAbsDiff - 1e-3)).toBeLessThan(1e-8);
    expect(first.stats.maxAbsDiff).toBe(Math.abs(Math.fround(before) - Math.fround(before + 1e-3)));
    expect(first.stats.worst[0]).toMatchObject({ index: 77 });
    expect(rest.every((t: any) => t.status === 'identical')).toBe(true);
    expect(rest).toHaveLength(ckpt.tensors.length - 1);
    expect(doc.verdict).toBe(`differs: 1 of ${ckpt.tensors.length} tensors outside atol=1e-6, rtol=1e-5`);

    const human = await runLorafuse(['diff', a, b, '--device', device, '--top', '3']);
    expect(human.code).toBe(1);
    const table = human.stdout.split('\n');
    const header = table.findIndex((l) => l.startsWith('tensor '));
    expect(table[header]).toMatch(/^tensor\s+shape\s+dtype\s+max abs\s+max rel\s+cosine\s+violations$/);
    expect(table[header + 1]).toMatch(/^transformer\.h\.1\.mlp\.c_fc\.weight\s+\[16, 64\]\s+F32\s+1\.00e-3\s+\S+\s+\S+\s+1 \/ 1024\s+DIFFERS$/);
    expect(human.stdout).toMatch(/… 25 more: 25 byte-identical/);
    expect(human.stdout).toMatch(/^worst of transformer\.h\.1\.mlp\.c_fc\.weight: \[1, 13\] /m);
    expect(table.at(-2)).toBe(`differs: 1 of ${ckpt.tensors.length} tensors outside atol=1e-6, rtol=1e-5`);
  });

  it('a key missing on one side and a shape mismatch on another are both reported: exit 1', async () => {
    const ckpt = await makeGpt2Checkpoint({ seed: 13 });
    const other = copyTensors(ckpt.tensors).filter((t) => t.name !== 'transformer.h.1.ln_2.bias');
    const wpe = other.findIndex((t) => t.name === 'transformer.wpe.weight');
    other[wpe] = { ...other[wpe]!, shape: [33, 16], values: new Float32Array(33 * 16).fill(0.01) };
    const a = await checkpointDir('keys-a', ckpt.config, ckpt.files['model.safetensors']!);
    const b = await checkpointDir('keys-b', { ...ckpt.config, n_positions: 33 }, await safetensorsBytes(other));
    const { code, doc } = await diffJson([a, b, '--device', 'cpu']);
    expect(code).toBe(1);
    expect(doc.diff.onlyInA).toEqual([{ name: 'transformer.h.1.ln_2.bias', key: 'transformer.h.1.ln_2.bias', dtype: 'F32', shape: [16] }]);
    expect(doc.diff.onlyInB).toEqual([]);
    expect(doc.diff.shapeMismatches).toMatchObject([{ name: 'transformer.wpe.weight', a: { shape: [32, 16] }, b: { shape: [33, 16] } }]);
    expect(doc.diff.counts).toMatchObject({ compared: ckpt.tensors.length - 2, differs: 0 });
    expect(doc.verdict).toBe('differs: 1 key only in a; 1 shape mismatch');
    const human = await runLorafuse(['diff', a, b, '--device', 'cpu']);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/^only in a: transformer\.h\.1\.ln_2\.bias  F32 \[16\]$/m);
    expect(human.stdout).toMatch(/^shape differs: transformer\.wpe\.weight  a F32 \[32, 16\]  b F32 \[33, 16\]$/m);
  });

  it('--as-loaded: a tied checkpoint without lm_head.weight equals the same weights with a copy of it', async () => {
    const ckpt = await makeGpt2Checkpoint({ seed: 14 });
    const wte = ckpt.tensors.find((t) => t.name === 'transformer.wte.weight')!;
    const a = await checkpointDir('tied-a', ckpt.config, ckpt.files['model.safetensors']!);
    const b = await checkpointDir('tied-b', ckpt.config, await safetensorsBytes([...ckpt.tensors, { ...wte, name: 'lm_head.weight' }]));
    const stored = await diffJson([a, b, '--device', 'cpu']);
    expect(stored.code).toBe(1);
    expect(stored.doc.diff.onlyInB.map((k: any) => k.name)).toEqual(['lm_head.weight']);
    for (const device of ['cpu', 'webgpu']) {
      const { code, doc } = await diffJson([a, b, '--as-loaded', '--device', device]);
      expect(code).toBe(0);
      expect(doc).toMatchObject({ equal: true, mode: 'as-loaded', loaded: { equal: true } });
      expect(doc.loaded.groups).toHaveLength(1);
      expect(doc.loaded.groups[0]).toMatchObject({ versions: ['v5', 'v4'], a: { tied: true, discarded: [] }, b: { tied: true, discarded: [] } });
      expect(doc.loaded.groups[0].diff.tensors.find((t: any) => t.name === 'lm_head.weight')).toMatchObject({ status: 'identical', viaA: 'tied-to-wte', viaB: 'tied-to-wte' });
      expect(doc.verdict).toMatch(/^equal as loaded by transformers v5 and v4: 29 tensors/);
    }
  });

  it('--as-loaded shows a stored-but-discarded lm_head as such (v4 discards it, v5 keeps it)', async () => {
    const ckpt = await makeGpt2Checkpoint({ seed: 15 });
    const wte = ckpt.tensors.find((t) => t.name === 'transformer.wte.weight')!;
    const stale = { ...wte, name: 'lm_head.weight', values: wte.values.map((v) => v * 2) };
    const a = await checkpointDir('stale-a', ckpt.config, ckpt.files['model.safetensors']!);
    const b = await checkpointDir('stale-b', ckpt.config, await safetensorsBytes([...ckpt.tensors, stale]));
    const { code, doc } = await diffJson([a, b, '--as-loaded', '--device', 'cpu']);
    expect(code).toBe(1);
    expect(doc.loaded.groups.map((g: any) => [g.versions, g.equal])).toEqual([[['v5'], false], [['v4'], true]]);
    expect(doc.loaded.groups[1].b.discarded).toMatchObject([{ name: 'lm_head.weight' }]);
    expect(doc.loaded.groups[0].diff.tensors[0]).toMatchObject({ name: 'lm_head.weight', status: 'differs', viaA: 'tied-to-wte' });
    const human = await runLorafuse(['diff', a, b, '--as-loaded', '--device', 'cpu']);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/^as loaded by transformers v5 \(a tied, b untied\):$/m);
    expect(human.stdout).toMatch(/^as loaded by transformers v4 \(a tied, b tied\):$/m);
    expect(human.stdout).toMatch(/^b: stored lm_head\.weight is discarded on load: config\.json ties lm_head to wte/m);
  });
});

describe('lorafuse diff: GPU and CPU give the same statistics', () => {
  it('F32 against F16 with NaN/Inf and changed elements, with and without --equal-nan', async () => {
    const opts = { seed: 16, nEmbd: 64, nLayer: 1, vocabSize: 700, nPositions: 40 };
    const a32 = await makeGpt2Checkpoint(opts);
    const b16 = await makeGpt2Checkpoint({ ...opts, dtype: 'F16' });
    const aT = copyTensors(a32.tensors);
    const bT = copyTensors(b16.tensors);
    const wteA = aT.find((t) => t.name === 'transformer.wte.weight')!;
    const wteB = bT.find((t) => t.name === 'transformer.wte.weight')!;
    wteA.values[5] = NaN;
    wteB.values[5] = NaN;
    wteA.values[9] = Infinity;
    wteB.values[9] = Infinity;
    wteB.values[40_000] = -Infinity;
    wteB.values[12_345] = wteB.values[12_345]! + 0.25;
    bT.find((t) => t.name === 'transformer.h.0.mlp.c_proj.weight')!.values[3] = 0;
    const a = await checkpointDir('gpu-a', a32.config, await safetensorsBytes(aT));
    const b = await checkpointDir('gpu-b', b16.config, await safetensorsBytes(bT));
    for (const extra of [[], ['--equal-nan'], ['--atol', '1e-3', '--rtol', '0']]) {
      const cpu = await diffJson([a, b, '--device', 'cpu', ...extra]);
      for (const device of ['webgpu', 'dawn']) {
        const gpu = await diffJson([a, b, '--device', device, ...extra]);
        expect(gpu.code).toBe(cpu.code);
        expect(gpu.doc).toMatchObject({ device });
        const byName = (doc: any) => new Map(doc.diff.tensors.map((t: any) => [t.name, t]));
        const cpuT = byName(cpu.doc);
        expect(gpu.doc.diff.tensors.map((t: any) => t.name)).toEqual(cpu.doc.diff.tensors.map((t: any) => t.name));
        expect(cpu.doc.diff.dtypeMismatches).toHaveLength(a32.tensors.length);
        for (const g of gpu.doc.diff.tensors) expectSameStats(g, cpuT.get(g.name));
      }
    }
    const cpu = await diffJson([a, b, '--device', 'cpu']);
    const wte = cpu.doc.diff.tensors.find((t: any) => t.name === 'transformer.wte.weight');
    expect(wte.stats).toMatchObject({ nanA: 1, nanB: 1, infA: 1, infB: 2, maxAbsDiff: 'inf' });
    expect(wte.stats.worst.slice(0, 2).map((w: any) => w.index)).toEqual([5, 40_000]);
  });
});

/** Bound on the f32 roundings of a GPU sum term (see encodeCompare), for either work shape. */
const GAMMA = Math.max(COMPARE_GPU_SHAPE.sumRoundings, COMPARE_SOFTWARE_SHAPE.sumRoundings) * 2 ** -24;

function expectSameStats(gpu: any, cpu: any): void {
  const tag = gpu.name;
  expect(gpu.status, tag).toBe(cpu.status);
  if (cpu.stats === null) {
    expect(gpu.stats, tag).toBeNull();
    return;
  }
  const g = gpu.stats;
  const c = cpu.stats;
  for (const k of ['count', 'violations', 'finitePairs', 'nanA', 'nanB', 'infA', 'infB', 'maxAbsDiff']) expect(g[k], `${tag} ${k}`).toEqual(c[k]);
  expect(g.worst.map((w: any) => [w.index, w.absDiff]), tag).toEqual(c.worst.map((w: any) => [w.index, w.absDiff]));
  if (typeof c.maxRelDiff === 'number' && c.maxRelDiff !== 0) expect(Math.abs(g.maxRelDiff - c.maxRelDiff), tag).toBeLessThanOrEqual(1e-6 * c.maxRelDiff);
  else expect(g.maxRelDiff, tag).toEqual(c.maxRelDiff);
  for (const k of ['sumSquaredDiff', 'sumSquaresA', 'sumSquaresB']) expect(Math.abs(g[k] - c[k]), `${tag} ${k}`).toBeLessThanOrEqual(GAMMA * c[k]);
  // Σ|a·b| <= sqrt(Σa²·Σb²) (Cauchy-Schwarz) bounds the dot product's error.
  expect(Math.abs(g.dot - c.dot), `${tag} dot`).toBeLessThanOrEqual(GAMMA * Math.sqrt(c.sumSquaresA * c.sumSquaresB) * 1.01);
  if (c.cosine === null) expect(g.cosine).toBeNull();
  else expect(Math.abs(g.cosine - c.cosine), `${tag} cosine`).toBeLessThanOrEqual(3 * GAMMA);
}

describe('lorafuse diff: inputs', () => {
  it('a sharded checkpoint against a single file and a bare .safetensors file: equal', async () => {
    const ckpt = await makeGpt2Checkpoint({ seed: 17, layout: 'bare' });
    const single = await checkpointDir('single', ckpt.config, ckpt.files['model.safetensors']!);
    const half = Math.floor(ckpt.tensors.length / 2);
    const shards = [ckpt.tensors.slice(0, half), ckpt.tensors.slice(half)];
    const names = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
    const weightMap = Object.fromEntries(shards.flatMap((s, i) => s.map((t) => [t.name, names[i]!])));
    const sharded = await writeDir(dirOf('sharded'), {
      'config.json': JSON.stringify(ckpt.config),
      'model.safetensors.index.json': JSON.stringify({ metadata: { total_size: 1 }, weight_map: weightMap }),
      [names[0]!]: await safetensorsBytes(shards[0]!),
      [names[1]!]: await safetensorsBytes(shards[1]!),
    });
    expect((await diffJson([single, sharded])).code).toBe(0);
    // The same tensors with the transformer. prefix (GPT2LMHeadModel layout) match by canonical name.
    const prefixed = await safetensorsBytes(ckpt.tensors.map((t) => ({ ...t, name: `transformer.${t.name}` })));
    const file = join(dirOf('prefixed'), 'weights.safetensors');
    await writeDir(join(file, '..'), { 'weights.safetensors': prefixed });
    const r = await diffJson([sharded, file]);
    expect(r.code).toBe(0);
    expect(r.doc.b).toMatchObject({ kind: 'safetensors', files: ['weights.safetensors'] });
    expect(r.doc.diff.tensors.find((t: any) => t.key === 'transformer.wte.weight').name).toBe('transformer.wte.weight');
  });

  it('adapters: keys with and without base_model.model. match; a changed factor is found', async () => {
    const modules = gpt2LoraModules(16, [0], ['attn.c_attn', 'mlp.c_fc'], 4);
    const withPrefix = await makeLoraAdapter({ seed: 3, modules });
    const without = await makeLoraAdapter({ seed: 3, modules, withoutPrefix: true });
    const other = await makeLoraAdapter({ seed: 4, modules });
    const a = await writeDir(dirOf('ad-a'), withPrefix.files);
    const b = await writeDir(dirOf('ad-b'), without.files);
    const c = await writeDir(dirOf('ad-c'), other.files);
    const same = await diffJson([a, b]);
    expect(same.code).toBe(0);
    expect(same.doc.a.kind).toBe('adapter');
    const diff = await diffJson([a, c, '--device', 'cpu']);
    expect(diff.code).toBe(1);
    expect(diff.doc.diff.counts).toMatchObject({ compared: 4, differs: 4 });
  });

  it('bad input exits 2 with a typed error: missing path, a .bin that is no torch.save archive, --as-loaded on a file, bad numbers', async () => {
    const ckpt = await makeGpt2Checkpoint({ seed: 18 });
    const a = await checkpointDir('bad-a', ckpt.config, ckpt.files['model.safetensors']!);
    const pickle = await writeDir(dirOf('pickle'), { 'config.json': '{}', 'pytorch_model.bin': 'not really' });
    const missing = await diffJson([a, join(work, 'nope')]);
    expect(missing).toMatchObject({ code: 2, doc: { ok: false, exitCode: 2, error: { code: 'DIFF_INPUT_MISSING', kind: 'input' } } });
    expect((await diffJson([a, pickle])).doc.error).toMatchObject({ code: 'TORCH_LEGACY_FORMAT', subject: join(pickle, 'pytorch_model.bin') });
    const asLoaded = await diffJson([a, join(a, 'model.safetensors'), '--as-loaded']);
    expect(asLoaded).toMatchObject({ code: 2, doc: { error: { code: 'AS_LOADED_NEEDS_CHECKPOINT' } } });
    for (const bad of [['--atol', '-1'], ['--rtol', 'x'], ['--top', '1.5'], ['--device', 'tpu']]) {
      const r = await runLorafuse(['diff', a, a, ...bad]);
      expect(r.code, bad.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/lorafuse: error: /);
    }
    const broken = await checkpointDir('broken', ckpt.config, new Uint8Array([1, 2, 3]));
    expect((await diffJson([a, broken])).code).toBe(2);
    expect((await runLorafuse(['diff', a])).code).toBe(2);
  });
});

// Committed copies of the real adapters in ../shared/real-peft (see packages/core/test/data/real-peft).
const realDir = fileURLToPath(new URL('../../core/test/data/real-peft/', import.meta.url));

describe('lorafuse diff: real PEFT adapters', () => {
  it('an adapter against a byte-identical copy: equal; against another training run: the max |a-b| of an independent f64 computation', async () => {
    const first = join(realDir, 'gpt2-classification-peft');
    const second = join(realDir, 'peft-implementation');
    const copy = await writeDir(dirOf('real-copy'), {
      'adapter_config.json': await readFile(join(first, 'adapter_config.json')),
      'adapter_model.safetensors': await readFile(join(first, 'adapter_model.safetensors')),
    });
    expect((await diffJson([first, copy])).code).toBe(0);
    const x = await readCheckpoint(join(first, 'adapter_model.safetensors'));
    const y = await readCheckpoint(join(second, 'adapter_model.safetensors'));
    for (const device of ['cpu', 'webgpu']) {
      const { code, doc } = await diffJson([first, second, '--device', device, '--top', '0']);
      expect(code).toBe(1);
      expect(doc.diff.tensors.length).toBeGreaterThan(0);
      for (const t of doc.diff.tensors) {
        const av = x.f32(t.a.name);
        const bv = y.f32(t.b.name);
        let max = 0;
        for (let i = 0; i < av.length; i++) max = Math.max(max, Math.abs(av[i]! - bv[i]!));
        // f32 subtraction is correctly rounded; the f64 difference rounds to the same f32.
        expect(t.stats.maxAbsDiff, t.name).toBe(Math.fround(max));
      }
    }
  });
});

