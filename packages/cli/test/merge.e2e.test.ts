import { existsSync } from 'node:fs';
import { chmod, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter, PickleAssembler, safetensorsBytes, torchZipBytes, type AdapterFixtureOptions, type Gpt2FixtureOptions } from '@lorafuse/core/testing';
import { decodeToF32, encodeFromF32, type FloatCodecDtype } from '@lorafuse/core';
import { expectedMerge, readCheckpoint, removeDir, runLorafuse, tempDir, worstViolation, writeDir } from './helpers.js';

let work: string;
beforeAll(async () => {
  work = await tempDir();
});
afterAll(async () => {
  await removeDir(work);
});

let counter = 0;
async function makeCase(baseOpts: Gpt2FixtureOptions, adapterOpts: AdapterFixtureOptions) {
  const dir = join(work, `case${++counter}`);
  const base = await makeGpt2Checkpoint(baseOpts);
  const adapter = await makeLoraAdapter(adapterOpts);
  await writeDir(join(dir, 'base'), { ...base.files, 'tokenizer.json': '{"fake": "tokenizer"}' });
  await writeDir(join(dir, 'adapter'), adapter.files);
  return { dir, baseDir: join(dir, 'base'), adapterDir: join(dir, 'adapter'), out: join(dir, 'out'), base, adapter };
}

const ATTN_MLP = ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'];

/** Checks every merged tensor against the independent f64 reference and every other tensor byte for byte. */
async function checkMerged(c: Awaited<ReturnType<typeof makeCase>>, outDir: string, scaleOf: (module: string, rank: number) => number, tol: { atol: number; rtol: number } = { atol: 1e-6, rtol: 1e-5 }) {
  const base = await readCheckpoint(join(c.baseDir, 'model.safetensors'));
  const out = await readCheckpoint(join(outDir, 'model.safetensors'));
  const adapter = await readCheckpoint(join(c.adapterDir, 'adapter_model.safetensors'));
  expect(out.header.tensors.map((t) => t.name).sort()).toEqual(base.header.tensors.map((t) => t.name).sort());
  expect(out.header.metadata).toEqual({ format: 'pt' });
  const loraModules = new Set(adapter.header.tensors.map((t) => t.name.replace(/^base_model\.model\./, '').replace(/\.lora_[AB]\.weight$/, '')));
  let merged = 0;
  for (const t of base.header.tensors) {
    const module = t.name.replace(/\.weight$/, '');
    const adapterModule = [...loraModules].find((m) => m === module || `transformer.${m}` === module || m === `transformer.${module}`);
    if (t.name.endsWith('.weight') && adapterModule) {
      const prefix = adapter.header.byName.has(`base_model.model.${adapterModule}.lora_A.weight`) ? 'base_model.model.' : '';
      const a = adapter.f32(`${prefix}${adapterModule}.lora_A.weight`);
      const b = adapter.f32(`${prefix}${adapterModule}.lora_B.weight`);
      const rank = adapter.header.byName.get(`${prefix}${adapterModule}.lora_A.weight`)!.shape[0]!;
      const expected = expectedMerge(base.f32(t.name), a, b, rank, t.shape, true, scaleOf(adapterModule, rank));
      const dtype = t.dtype as FloatCodecDtype;
      // Compare with the expected value rounded once to the base dtype, as lorafuse rounds its f32 result.
      const expectedRounded = dtype === 'F32' ? expected : decodeToF32(dtype, encodeFromF32(dtype, Float32Array.from(expected)));
      expect(worstViolation(out.f32(t.name), expectedRounded, tol.atol, tol.rtol), t.name).toBeLessThanOrEqual(0);
      expect(out.header.byName.get(t.name)!.dtype).toBe(t.dtype);
      merged++;
    } else {
      expect(Buffer.from(out.raw(t.name)).equals(Buffer.from(base.raw(t.name))), `${t.name} copied byte for byte`).toBe(true);
    }
  }
  return merged;
}

describe('lorafuse merge --device cpu', () => {
  it('merges attention + MLP Conv1D LoRA with rank/alpha patterns; everything else is byte-identical', async () => {
    const c = await makeCase({ seed: 3 }, {
      modules: gpt2LoraModules(16, [0, 1], ATTN_MLP, (m) => (m.endsWith('c_fc') ? 6 : 4)),
      config: { r: 4, lora_alpha: 8, rank_pattern: { c_fc: 6 }, alpha_pattern: { '^transformer.h.1.mlp.c_proj': 3 }, target_modules: ['c_attn', 'c_proj', 'c_fc'] },
    });
    const r = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', c.out, '--device', 'cpu', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ ok: true, device: 'cpu', tensors: { merged: 8 } });
    const merged = await checkMerged(c, c.out, (m, rank) => (m === 'transformer.h.1.mlp.c_proj' ? 3 : 8) / rank);
    expect(merged).toBe(8);
    expect(await readFile(join(c.out, 'config.json'))).toEqual(await readFile(join(c.baseDir, 'config.json')));
    expect((await readdir(c.out)).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json']);
    expect(await readFile(join(c.out, 'tokenizer.json'), 'utf8')).toBe('{"fake": "tokenizer"}');
  });

  it('uses alpha/sqrt(r) with rsLoRA and a regex target_modules string', async () => {
    const c = await makeCase({ seed: 4 }, {
      modules: gpt2LoraModules(16, [1], ['attn.c_attn', 'mlp.c_fc'], 4),
      config: { r: 4, lora_alpha: 6, use_rslora: true, target_modules: '.*\\.h\\.1\\..*(c_attn|c_fc)' },
    });
    const r = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', c.out, '--device', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    expect(await checkMerged(c, c.out, (_m, rank) => 6 / Math.sqrt(rank))).toBe(2);
  });

  it('accepts a bare GPT2Model base with old attn.bias buffers and an adapter without the base_model.model. prefix', async () => {
    const c = await makeCase({ seed: 5, layout: 'bare', withAttnBuffers: true }, { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2, 'bare'), withoutPrefix: true });
    const r = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', c.out, '--device', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    expect(await checkMerged(c, c.out, (_m, rank) => 8 / rank)).toBe(1);
  });

  it.each(['F16', 'BF16'] as const)('merges into a %s base in f32 and rounds once to the base dtype', async (dtype) => {
    const c = await makeCase({ seed: 6, dtype }, { modules: gpt2LoraModules(16, [0, 1], ['attn.c_attn', 'mlp.c_proj'], 4) });
    const r = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', c.out, '--device', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    // One rounding of an f32 value that may itself differ by an f32 ulp: within 1 ulp of the dtype.
    const ulp = dtype === 'F16' ? 2 ** -10 : 2 ** -7;
    expect(await checkMerged(c, c.out, (_m, rank) => 8 / rank, { atol: 1e-7, rtol: ulp })).toBe(4);
  });
});

describe('lorafuse merge: a base laid out as the output starts it as the OS\'s copy', () => {
  it('writes the bytes the streamed copy writes, from a base laid out as the output and from one laid out otherwise', async () => {
    const c = await makeCase({ seed: 11 }, { modules: gpt2LoraModules(16, [0, 1], ['attn.c_attn', 'mlp.c_proj'], 4) });
    const r = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', c.out, '--device', 'cpu', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const cloned = JSON.parse(r.stdout);
    const baseFile = join(c.baseDir, 'model.safetensors');
    const unchanged = c.base.tensors.filter((t) => !/h\.[01]\.(attn\.c_attn|mlp\.c_proj)\.weight$/.test(t.name)).reduce((n, t) => n + t.values.length * 4, 0);
    expect(cloned.copiedByOs).toEqual([{ file: 'model.safetensors', from: baseFile, bytes: unchanged }]);
    expect(await checkMerged(c, c.out, (_m, rank) => 8 / rank)).toBe(4);

    // The same tensors under a longer header: every offset moves, so every byte is streamed.
    const otherBase = join(c.dir, 'base-other-header');
    await writeDir(otherBase, { 'config.json': await readFile(join(c.baseDir, 'config.json')), 'model.safetensors': await safetensorsBytes(c.base.tensors, { format: 'pt', written_by: 'another tool' }) });
    const out2 = join(c.dir, 'out-streamed');
    const r2 = await runLorafuse(['merge', otherBase, c.adapterDir, '--out', out2, '--device', 'cpu', '--json']);
    expect(r2.code, r2.stderr).toBe(0);
    expect(JSON.parse(r2.stdout).copiedByOs).toEqual([]);
    expect(Buffer.from(await readFile(join(out2, 'model.safetensors'))).equals(await readFile(join(c.out, 'model.safetensors')))).toBe(true);
  });

  it('gives the copy of a read-only base the permissions of a written file, and leaves the base as it was', async () => {
    const c = await makeCase({ seed: 12 }, { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2) });
    const baseFile = join(c.baseDir, 'model.safetensors');
    const before = await readFile(baseFile);
    await chmod(baseFile, 0o444);
    const r = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', c.out, '--device', 'cpu', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).copiedByOs).toHaveLength(1);
    expect((await stat(join(c.out, 'model.safetensors'))).mode & 0o777).toBe((await stat(join(c.out, 'config.json'))).mode & 0o777);
    expect((await stat(baseFile)).mode & 0o777).toBe(0o444);
    expect(Buffer.from(await readFile(baseFile)).equals(before)).toBe(true);
    expect(await checkMerged(c, c.out, (_m, rank) => 8 / rank)).toBe(1);
  });
});

describe('lorafuse merge: bad input leaves nothing behind and exits 2', () => {
  let c: Awaited<ReturnType<typeof makeCase>>;
  beforeAll(async () => {
    c = await makeCase({ seed: 8 }, { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2) });
  });

  it('refuses an out dir inside an input', async () => {
    const out = join(c.baseDir, 'merged');
    const r = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', out, '--device', 'cpu']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/inside the input directory/);
    expect(existsSync(out)).toBe(false);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('refuses a non-empty out dir unless --overwrite, and --overwrite one holding files lorafuse did not write', async () => {
    const out = join(c.dir, 'busy');
    await writeDir(out, { 'notes.txt': 'keep me' });
    const r = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', out, '--device', 'cpu']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not empty.*\n.*--overwrite/);
    expect(await readdir(out)).toEqual(['notes.txt']);
    const refused = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', out, '--device', 'cpu', '--overwrite']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/holds files lorafuse did not write: notes\.txt/);
    expect(await readdir(out)).toEqual(['notes.txt']);
    await rm(join(out, 'notes.txt'));
    await writeDir(out, { 'model.safetensors': 'an earlier output' });
    const again = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', out, '--device', 'cpu', '--overwrite']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/replaced the earlier output's model\.safetensors/);
    expect((await readdir(out)).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json']);
  });

  it('refuses hostile or broken .bin adapters and Git LFS pointers without running or reading them as weights', async () => {
    const pickle = await writeDir(join(c.dir, 'pickle-adapter'), { 'adapter_config.json': await readFile(join(c.adapterDir, 'adapter_config.json')), 'adapter_model.bin': 'PK\x03\x04 not executed' });
    const r1 = await runLorafuse(['merge', c.baseDir, pickle, '--out', join(c.dir, 'o1'), '--device', 'cpu']);
    expect(r1.code).toBe(2);
    expect(r1.stderr).toMatch(/adapter_model\.bin: not a valid torch\.save zip archive/);
    // A real torch.save archive whose pickle would run a shell command if it were unpickled.
    const marker = join(c.dir, 'pwned');
    const hostile = new PickleAssembler().proto(2).global('posix', 'system').str(`touch ${marker}`).tuple1().reduce().stop().bytes();
    const evil = await writeDir(join(c.dir, 'evil-adapter'), {
      'adapter_config.json': await readFile(join(c.adapterDir, 'adapter_config.json')),
      'adapter_model.bin': torchZipBytes([{ name: 'adapter_model/data.pkl', data: hostile }]),
    });
    const r0 = await runLorafuse(['merge', c.baseDir, evil, '--out', join(c.dir, 'o0'), '--device', 'cpu', '--json']);
    expect(r0.code).toBe(2);
    expect(JSON.parse(r0.stdout).error).toMatchObject({ code: 'PICKLE_FORBIDDEN_GLOBAL', subject: `${join(evil, 'adapter_model.bin')}: posix.system` });
    expect(existsSync(marker) || existsSync(join(c.dir, 'o0'))).toBe(false);
    const lfs = await writeDir(join(c.dir, 'lfs-adapter'), {
      'adapter_config.json': await readFile(join(c.adapterDir, 'adapter_config.json')),
      'adapter_model.safetensors': 'version https://git-lfs.github.com/spec/v1\noid sha256:0000\nsize 1234\n',
    });
    const r2 = await runLorafuse(['merge', c.baseDir, lfs, '--out', join(c.dir, 'o2'), '--device', 'cpu']);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/Git LFS pointer/);
    expect(existsSync(join(c.dir, 'o1')) || existsSync(join(c.dir, 'o2'))).toBe(false);
  });

  it('names the file and the rule for a truncated safetensors file', async () => {
    const bytes = await readFile(join(c.adapterDir, 'adapter_model.safetensors'));
    const broken = await writeDir(join(c.dir, 'truncated-adapter'), { 'adapter_config.json': await readFile(join(c.adapterDir, 'adapter_config.json')), 'adapter_model.safetensors': bytes.subarray(0, bytes.length - 3) });
    const r = await runLorafuse(['merge', c.baseDir, broken, '--out', join(c.dir, 'o3'), '--device', 'cpu', '--json']);
    expect(r.code).toBe(2);
    const doc = JSON.parse(r.stdout);
    expect(doc.ok).toBe(false);
    expect(doc.error.message).toContain('truncated-adapter/adapter_model.safetensors');
    expect(doc.error.code).toBe('METADATA_INCOMPLETE_BUFFER');
    expect(existsSync(join(c.dir, 'o3'))).toBe(false);
  });

  it('names a config.json field of the wrong type, and a non-LoRA adapter type', async () => {
    const cfg = JSON.parse(await readFile(join(c.baseDir, 'config.json'), 'utf8'));
    const badBase = await writeDir(join(c.dir, 'bad-config-base'), { 'config.json': JSON.stringify({ ...cfg, tie_word_embeddings: 'yes' }), 'model.safetensors': await readFile(join(c.baseDir, 'model.safetensors')) });
    const r1 = await runLorafuse(['merge', badBase, c.adapterDir, '--out', join(c.dir, 'o6'), '--device', 'cpu']);
    expect(r1.code).toBe(2);
    expect(r1.stderr).toMatch(/field "tie_word_embeddings" must be true or false/);
    const acfg = JSON.parse(await readFile(join(c.adapterDir, 'adapter_config.json'), 'utf8'));
    const ia3 = await writeDir(join(c.dir, 'ia3'), { 'adapter_config.json': JSON.stringify({ ...acfg, peft_type: 'IA3' }), 'adapter_model.safetensors': await readFile(join(c.adapterDir, 'adapter_model.safetensors')) });
    const r2 = await runLorafuse(['merge', c.baseDir, ia3, '--out', join(c.dir, 'o7'), '--device', 'cpu']);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/unsupported: IA3/);
    expect(existsSync(join(c.dir, 'o6')) || existsSync(join(c.dir, 'o7'))).toBe(false);
  });

  it('refuses use_dora without DoRA magnitude vectors, naming the missing tensor', async () => {
    const cfg = JSON.parse(await readFile(join(c.adapterDir, 'adapter_config.json'), 'utf8'));
    const dora = await writeDir(join(c.dir, 'dora'), { 'adapter_config.json': JSON.stringify({ ...cfg, use_dora: true }), 'adapter_model.safetensors': await readFile(join(c.adapterDir, 'adapter_model.safetensors')) });
    const r = await runLorafuse(['merge', c.baseDir, dora, '--out', join(c.dir, 'o4'), '--device', 'cpu']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no DoRA magnitude vector: ".*transformer.h.0.attn.c_attn.lora_magnitude_vector"/);
    expect(existsSync(join(c.dir, 'o4'))).toBe(false);
  });

  it('says how to get a browser, and mentions --device cpu, when Chromium is missing for --device webgpu', async () => {
    const r = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', join(c.dir, 'o5'), '--device', 'webgpu'], { CHROME_PATH: join(c.dir, 'no-such-chromium') });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/CHROME_PATH/);
    expect(r.stderr).toMatch(/--device cpu/);
    expect(existsSync(join(c.dir, 'o5'))).toBe(false);
    // The default, --device auto, says why it falls back to the CPU executor instead.
    const auto = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', join(c.dir, 'o5'), '--json'], { CHROME_PATH: join(c.dir, 'no-such-chromium') });
    expect(auto.code, auto.stderr).toBe(0);
    expect(JSON.parse(auto.stdout)).toMatchObject({ device: 'cpu' });
    expect(JSON.parse(auto.stdout).deviceReason).toMatch(/Chromium|GPU|software/i);
  });

  it('reports usage errors with exit 2 and prints --help for every command', async () => {
    expect((await runLorafuse(['merge', c.baseDir])).code).toBe(2);
    expect((await runLorafuse(['merge', c.baseDir, c.adapterDir])).stderr).toMatch(/--out/);
    expect((await runLorafuse(['frobnicate'])).code).toBe(2);
    expect((await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', 'x', '--device', 'tpu'])).stderr).toMatch(/auto, webgpu, dawn, cpu/);
    for (const cmd of ['merge', 'inspect', 'env']) {
      const h = await runLorafuse([cmd, '--help']);
      expect(h.code).toBe(0);
      expect(h.stdout).toMatch(new RegExp(`Usage: lorafuse ${cmd}`));
    }
    expect((await runLorafuse(['--help'])).stdout).toMatch(/Commands:/);
  });
});

describe('lorafuse inspect', () => {
  it('shows tensors, config and tie status of a checkpoint, an adapter and a file', async () => {
    const c = await makeCase({ seed: 9 }, { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2) });
    const ck = await runLorafuse(['inspect', c.baseDir, '--json']);
    expect(ck.code, ck.stderr).toBe(0);
    const doc = JSON.parse(ck.stdout);
    expect(doc.kind).toBe('checkpoint');
    expect(doc.tie.tieWordEmbeddings).toBe(true);
    expect(doc.tie.summary).toMatch(/^tied/);
    expect(doc.tensors.find((t: { name: string }) => t.name === 'transformer.h.0.attn.c_attn.weight')).toMatchObject({ dtype: 'F32', shape: [16, 48] });
    const ad = await runLorafuse(['inspect', c.adapterDir]);
    expect(ad.code).toBe(0);
    expect(ad.stdout).toMatch(/lora_A of transformer\.h\.0\.attn\.c_attn/);
    const file = await runLorafuse(['inspect', join(c.baseDir, 'model.safetensors')]);
    expect(file.code).toBe(0);
    expect(file.stdout).toMatch(/transformer\.wte\.weight\s+F32\s+\[50, 16\]/);
    const untied = await makeCase({ seed: 10, untied: true }, { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 2) });
    expect(JSON.parse((await runLorafuse(['inspect', untied.baseDir, '--json'])).stdout).tie.summary).toMatch(/^untied/);
  });
});


describe('lorafuse merge --device dawn (the same WGSL kernel on Dawn inside Node)', () => {
  it('gives the reference result, agrees with --device cpu, and writes the bytes --device webgpu writes', async () => {
    const c = await makeCase({ seed: 14, nEmbd: 24, nHead: 2 }, {
      modules: gpt2LoraModules(24, [0, 1], ATTN_MLP, (m) => (m.endsWith('c_attn') ? 1 : 12)),
      config: { r: 12, lora_alpha: 24, rank_pattern: { c_attn: 1 } },
    });
    const dawn = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', c.out, '--device', 'dawn', '--json']);
    expect(dawn.code, dawn.stderr).toBe(0);
    const report = JSON.parse(dawn.stdout);
    expect(report).toMatchObject({ device: 'dawn', tensors: { merged: 8 } });
    expect(report.deviceDescription).toMatch(/via Dawn in Node/);
    expect(await checkMerged(c, c.out, (_m, rank) => 24 / rank)).toBe(8);
    const cpuOut = join(c.dir, 'cpu');
    expect((await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', cpuOut, '--device', 'cpu'])).code).toBe(0);
    const a = await readCheckpoint(join(c.out, 'model.safetensors'));
    const b = await readCheckpoint(join(cpuOut, 'model.safetensors'));
    for (const t of a.header.tensors) expect(worstViolation(a.f32(t.name), b.f32(t.name), 1e-6, 1e-5), t.name).toBeLessThanOrEqual(0);
    // One kernel, one ΔW-then-add in Node: Chromium's Dawn and Node's Dawn agree to the bit on the
    // same software adapter (a differing shader compiler would show up here first).
    const webgpuOut = join(c.dir, 'webgpu');
    const webgpu = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', webgpuOut, '--device', 'webgpu']);
    expect(webgpu.code, webgpu.stderr).toBe(0);
    expect(Buffer.compare(await readFile(join(c.out, 'model.safetensors')), await readFile(join(webgpuOut, 'model.safetensors')))).toBe(0);
  });

  it('verify --device dawn recomputes the merge on Dawn and accepts its own output', async () => {
    const c = await makeCase({ seed: 15 }, { modules: gpt2LoraModules(16, [0], ['attn.c_attn'], 4) });
    expect((await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', c.out, '--device', 'dawn'])).code).toBe(0);
    const v = await runLorafuse(['verify', c.out, '--base', c.baseDir, '--adapter', c.adapterDir, '--device', 'dawn']);
    expect(v.code, v.stderr + v.stdout).toBe(0);
  });
});

describe('lorafuse merge --device webgpu (WGSL kernel in headless Chromium)', () => {
  it('gives the reference result and agrees with --device cpu within tolerance', async () => {
    const c = await makeCase({ seed: 12, nEmbd: 24, nHead: 2 }, {
      modules: gpt2LoraModules(24, [0, 1], ATTN_MLP, (m) => (m.endsWith('c_attn') ? 1 : 5)),
      config: { r: 5, lora_alpha: 10, rank_pattern: { c_attn: 1 }, use_rslora: true },
    });
    const gpu = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', c.out, '--device', 'webgpu', '--json']);
    expect(gpu.code, gpu.stderr).toBe(0);
    expect(JSON.parse(gpu.stdout)).toMatchObject({ device: 'webgpu', tensors: { merged: 8 } });
    expect(await checkMerged(c, c.out, (_m, rank) => 10 / Math.sqrt(rank))).toBe(8);
    const cpuOut = join(c.dir, 'cpu');
    const cpu = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', cpuOut, '--device', 'cpu']);
    expect(cpu.code, cpu.stderr).toBe(0);
    const a = await readCheckpoint(join(c.out, 'model.safetensors'));
    const b = await readCheckpoint(join(cpuOut, 'model.safetensors'));
    for (const t of a.header.tensors) expect(worstViolation(a.f32(t.name), b.f32(t.name), 1e-6, 1e-5), t.name).toBeLessThanOrEqual(0);
  });

  it('merges a BF16 base on the GPU within one bf16 ulp of the reference', async () => {
    const c = await makeCase({ seed: 13, dtype: 'BF16' }, { modules: gpt2LoraModules(16, [0, 1], ['attn.c_attn', 'mlp.c_fc'], 3) });
    const r = await runLorafuse(['merge', c.baseDir, c.adapterDir, '--out', c.out, '--device', 'webgpu']);
    expect(r.code, r.stderr).toBe(0);
    expect(await checkMerged(c, c.out, (_m, rank) => 8 / rank, { atol: 1e-7, rtol: 2 ** -7 })).toBe(4);
  });
});
