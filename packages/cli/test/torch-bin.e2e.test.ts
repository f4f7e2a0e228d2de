/**
 * PyTorch `.bin` inputs (torch.save's zip format) through every command: a `.bin` adapter or base
 * merges to exactly the bytes the same tensors give as safetensors, safetensors wins when both are
 * there, verify/doctor/inspect/diff read `.bin` too, and a hostile pickle is refused by name with
 * nothing run and nothing written.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter, PickleAssembler, safetensorsBytes, torchSaveBytes, torchZipBytes, type TorchFixtureTensor } from '@lorafuse/core/testing';
import { removeDir, runLorafuse, tempDir, writeDir } from './helpers.js';

let work: string;
let base: Awaited<ReturnType<typeof makeGpt2Checkpoint>>;
let adapter: Awaited<ReturnType<typeof makeLoraAdapter>>;
let stBase: string;
let stAdapter: string;
let reference: { model: Buffer; config: Buffer };


beforeAll(async () => {
  work = await tempDir();
  base = await makeGpt2Checkpoint({ seed: 31, nEmbd: 16, nLayer: 2, nHead: 2, vocabSize: 40, nPositions: 16 });
  adapter = await makeLoraAdapter({ seed: 32, modules: gpt2LoraModules(16, [0, 1], ['attn.c_attn', 'mlp.c_fc'], 4), config: { lora_alpha: 8, r: 4 } });
  stBase = await writeDir(join(work, 'st-base'), { ...base.files, 'tokenizer.json': '{"t": 1}' });
  stAdapter = await writeDir(join(work, 'st-adapter'), adapter.files);
  const out = join(work, 'st-out');
  const r = await runLorafuse(['merge', stBase, stAdapter, '--out', out, '--device', 'cpu']);
  expect(r.code, r.stderr).toBe(0);
  reference = { model: await readFile(join(out, 'model.safetensors')), config: await readFile(join(out, 'config.json')) };
}, 120_000);
afterAll(async () => {
  await removeDir(work);
});

/** A base directory with `weights` (file name → bytes) instead of model.safetensors. */
function baseDirWith(name: string, weights: Record<string, Uint8Array | string>): Promise<string> {
  return writeDir(join(work, name), { 'config.json': base.files['config.json']!, 'generation_config.json': base.files['generation_config.json']!, 'tokenizer.json': '{"t": 1}', ...weights });
}

function adapterDirWith(name: string, weights: Record<string, Uint8Array | string>): Promise<string> {
  return writeDir(join(work, name), { 'adapter_config.json': adapter.files['adapter_config.json']!, ...weights });
}

async function expectSameMerge(baseDir: string, adapterDir: string, name: string): Promise<string> {
  const out = join(work, name);
  const r = await runLorafuse(['merge', baseDir, adapterDir, '--out', out, '--device', 'cpu', '--json']);
  expect(r.code, r.stderr).toBe(0);
  expect(await readFile(join(out, 'model.safetensors'))).toEqual(reference.model);
  expect(await readFile(join(out, 'config.json'))).toEqual(reference.config);
  // The output is always safetensors and never carries the base's .bin weights.
  expect((await readdir(out)).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json']);
  return out;
}

const adapterBin = () => torchSaveBytes(adapter.tensors, { archive: 'adapter_model' });
const hostileBin = (marker: string) =>
  torchZipBytes([{ name: 'x/data.pkl', data: new PickleAssembler().proto(2).global('builtins', 'eval').str(`__import__('os').system('touch ${marker}')`).tuple1().reduce().stop().bytes() }]);

describe('.bin inputs merge to the same bytes as safetensors', () => {
  it('an adapter_model.bin (as PEFT saves with safe_serialization=False)', async () => {
    await expectSameMerge(stBase, await adapterDirWith('bin-adapter', { 'adapter_model.bin': adapterBin() }), 'out-bin-adapter');
  });

  it('a pytorch_model.bin base saved from model.state_dict() (OrderedDict with _metadata, lm_head.weight a view of the wte storage)', async () => {
    const wte = base.tensors.find((t) => t.name === 'transformer.wte.weight')!;
    const bin = torchSaveBytes([...base.tensors, { name: 'lm_head.weight', shape: wte.shape, values: new Float32Array(), viewOf: { tensor: wte.name, offset: 0 } }], { archive: 'pytorch_model', ordered: true, withMetadataAttribute: true });
    const baseDir = await baseDirWith('bin-base', { 'pytorch_model.bin': bin });
    const adapterDir = await adapterDirWith('bin-adapter-2', { 'adapter_model.bin': adapterBin() });
    // lm_head.weight is the very bytes of wte: the tie itself, so the merge equals the safetensors one, tied.
    const out = await expectSameMerge(baseDir, adapterDir, 'out-bin-both');
    const v = await runLorafuse(['verify', out, '--base', baseDir, '--adapter', adapterDir, '--device', 'cpu']);
    expect(v.code, v.stderr + v.stdout).toBe(0);
    const d = await runLorafuse(['doctor', baseDir, adapterDir, '--json']);
    expect(JSON.parse(d.stdout).findings.map((f: { code: string }) => f.code)).not.toContain('TIED_HEAD_STORED');
  });

  it('a stored lm_head.weight that is its own storage stays its own matrix (only an alias of wte is the tie)', async () => {
    const wte = base.tensors.find((t) => t.name === 'transformer.wte.weight')!;
    const bin = torchSaveBytes([...base.tensors, { ...wte, name: 'lm_head.weight' }], { archive: 'pytorch_model' });
    const twin = await baseDirWith('twin-base', { 'model.safetensors': await safetensorsBytes([...base.tensors, { ...wte, name: 'lm_head.weight' }]) });
    const twinOut = join(work, 'out-twin');
    expect((await runLorafuse(['merge', twin, stAdapter, '--out', twinOut, '--device', 'cpu'])).code).toBe(0);
    const out = join(work, 'out-bin-copy');
    const r = await runLorafuse(['merge', await baseDirWith('bin-base-copy', { 'pytorch_model.bin': bin }), stAdapter, '--out', out, '--device', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr + r.stdout).toMatch(/also stores lm_head\.weight/);
    expect(await readFile(join(out, 'model.safetensors'))).toEqual(await readFile(join(twinOut, 'model.safetensors')));
  });

  it('a sharded pytorch_model-0000i-of-0000n.bin base with pytorch_model.bin.index.json', async () => {
    const half = Math.ceil(base.tensors.length / 2);
    const shards = [base.tensors.slice(0, half), base.tensors.slice(half)];
    const files: Record<string, Uint8Array | string> = {};
    const weightMap: Record<string, string> = {};
    shards.forEach((ts, i) => {
      const name = `pytorch_model-0000${i + 1}-of-00002.bin`;
      files[name] = torchSaveBytes(ts, { archive: `pytorch_model-0000${i + 1}-of-00002` });
      for (const t of ts) weightMap[t.name] = name;
    });
    files['pytorch_model.bin.index.json'] = JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap });
    await expectSameMerge(await baseDirWith('bin-sharded', files), stAdapter, 'out-bin-sharded');
  });

  it('safetensors is taken when both are there: the .bin beside it is never read', async () => {
    const marker = join(work, 'pwned-both');
    const adapterDir = await adapterDirWith('both-adapter', { 'adapter_model.safetensors': adapter.files['adapter_model.safetensors']!, 'adapter_model.bin': hostileBin(marker) });
    const baseDir = await baseDirWith('both-base', { 'model.safetensors': base.files['model.safetensors']!, 'pytorch_model.bin': hostileBin(marker) });
    await expectSameMerge(baseDir, adapterDir, 'out-both');
    expect(existsSync(marker)).toBe(false);
  });
});

describe('.bin in verify, doctor, inspect and diff', () => {
  it('verify accepts a .bin adapter; doctor finds nothing wrong with a benign one', async () => {
    const adapterDir = await adapterDirWith('bin-adapter-v', { 'adapter_model.bin': adapterBin() });
    const out = await expectSameMerge(stBase, adapterDir, 'out-v');
    const v = await runLorafuse(['verify', out, '--base', stBase, '--adapter', adapterDir, '--device', 'cpu']);
    expect(v.code, v.stderr + v.stdout).toBe(0);
    const d = await runLorafuse(['doctor', stBase, adapterDir, '--json']);
    expect(d.code, d.stdout).toBe(0);
  });

  it('doctor and merge refuse a hostile adapter_model.bin by the global it names; nothing runs, nothing is written', async () => {
    const marker = join(work, 'pwned');
    const adapterDir = await adapterDirWith('evil-adapter', { 'adapter_model.bin': hostileBin(marker) });
    const d = await runLorafuse(['doctor', stBase, adapterDir, '--json']);
    expect(d.code).toBe(2);
    const finding = JSON.parse(d.stdout).findings.find((f: { code: string }) => f.code === 'PICKLE_FORBIDDEN_GLOBAL');
    expect(finding).toMatchObject({ severity: 'error' });
    expect(JSON.stringify(finding)).toMatch(/builtins\.eval/);
    const m = await runLorafuse(['merge', stBase, adapterDir, '--out', join(work, 'evil-out'), '--device', 'cpu']);
    expect(m.code).toBe(2);
    expect(m.stderr).toMatch(/evil-adapter\/adapter_model\.bin: the pickle in data\.pkl asks for the global builtins\.eval/);
    expect(m.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(existsSync(marker) || existsSync(join(work, 'evil-out'))).toBe(false);
  });

  it('inspect shows a .bin file and a .bin adapter directory', async () => {
    const adapterDir = await adapterDirWith('bin-adapter-i', { 'adapter_model.bin': adapterBin() });
    const f = await runLorafuse(['inspect', join(adapterDir, 'adapter_model.bin'), '--json']);
    expect(f.code, f.stderr).toBe(0);
    const doc = JSON.parse(f.stdout);
    expect(doc.kind).toBe('torch');
    expect(doc.tensors.map((t: { name: string }) => t.name).sort()).toEqual(adapter.tensors.map((t) => t.name).sort());
    const a = await runLorafuse(['inspect', adapterDir, '--json']);
    expect(a.code, a.stderr).toBe(0);
    expect(JSON.parse(a.stdout).kind).toBe('adapter');
    const human = await runLorafuse(['inspect', join(adapterDir, 'adapter_model.bin')]);
    expect(human.stdout).toMatch(/^torch: /);
  });

  it('diff: a .bin adapter equals its safetensors twin; a .bin file against a .safetensors file', async () => {
    const adapterDir = await adapterDirWith('bin-adapter-d', { 'adapter_model.bin': adapterBin() });
    const r = await runLorafuse(['diff', adapterDir, stAdapter, '--device', 'cpu', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.a).toMatchObject({ kind: 'adapter', files: ['adapter_model.bin'] });
    expect(doc.diff.counts.compared).toBe(adapter.tensors.length);
    const files = await runLorafuse(['diff', join(adapterDir, 'adapter_model.bin'), join(stAdapter, 'adapter_model.safetensors'), '--device', 'cpu', '--json']);
    expect(files.code, files.stderr).toBe(0);
    expect(JSON.parse(files.stdout).a.kind).toBe('torch');
  });
});
