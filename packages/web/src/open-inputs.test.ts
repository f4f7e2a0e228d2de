import { describe, expect, it } from 'vitest';
import { LorafuseError } from '@lorafuse/core';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter, safetensorsBytes, torchSaveBytes } from '@lorafuse/core/testing';
import { openInputs } from './open-inputs.js';
import { pickedDir } from './picked-files.js';

const E = 8;
const filesOf = (files: Record<string, Uint8Array | string>) => Object.entries(files).map(([name, bytes]) => new File([bytes as BlobPart], name));

async function fixtures() {
  const base = await makeGpt2Checkpoint({ seed: 1, nEmbd: E, vocabSize: 20 });
  const adapter = await makeLoraAdapter({ seed: 2, modules: gpt2LoraModules(E, [0], ['attn.c_attn'], 2), config: { target_modules: ['c_attn'], r: 2, lora_alpha: 4 } });
  return { base, adapter };
}

async function refusal(p: Promise<unknown>): Promise<LorafuseError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(LorafuseError);
  return e as LorafuseError;
}

describe('openInputs (the picked base and adapter files)', () => {
  it('opens a picked base and adapter: the planner sees every tensor under its picked label', async () => {
    const { base, adapter } = await fixtures();
    const opened = await openInputs(pickedDir('base', filesOf(base.files)), [pickedDir('adapter', filesOf(adapter.files))]);
    expect(opened.planInput.base.files.map((h) => h.label)).toEqual(['base/model.safetensors']);
    expect(opened.planInput.base.files[0]!.tensors.length).toBe(base.tensors.length);
    expect(opened.planInput.adapters[0]!.file.label).toBe('adapter/adapter_model.safetensors');
    expect(opened.sourceOf('base/model.safetensors').size).toBe(base.files['model.safetensors']!.byteLength);
  });

  it('reads a sharded base through its index, and refuses one whose shard was not picked', async () => {
    const { base, adapter } = await fixtures();
    const index = JSON.stringify({ weight_map: Object.fromEntries(base.tensors.map((t, i) => [t.name, i % 2 === 0 ? 'a.safetensors' : 'b.safetensors'])) });
    const shards = { 'a.safetensors': await safetensorsBytes(base.tensors.filter((_, i) => i % 2 === 0)), 'b.safetensors': await safetensorsBytes(base.tensors.filter((_, i) => i % 2 === 1)) };
    const picked = { 'config.json': base.files['config.json']!, 'model.safetensors.index.json': index, ...shards };
    const opened = await openInputs(pickedDir('base', filesOf(picked)), [pickedDir('adapter', filesOf(adapter.files))]);
    expect(opened.planInput.base.files.map((h) => h.label)).toEqual(['base/a.safetensors', 'base/b.safetensors']);
    const { 'b.safetensors': _, ...missing } = picked;
    const e = await refusal(openInputs(pickedDir('base', filesOf(missing)), [pickedDir('adapter', filesOf(adapter.files))]));
    expect(e.code).toBe('SHARD_MISSING');
    expect(e.message).toBe('base/model.safetensors.index.json lists b.safetensors, which was not picked with it');
  });

  it('reads a sharded torch.save base (pytorch_model.bin.index.json) as the CLI does, and names a shard that was not picked', async () => {
    const { base, adapter } = await fixtures();
    const names = ['pytorch_model-00001-of-00002.bin', 'pytorch_model-00002-of-00002.bin'];
    const half = Math.ceil(base.tensors.length / 2);
    const index = JSON.stringify({ metadata: {}, weight_map: Object.fromEntries(base.tensors.map((t, i) => [t.name, names[i < half ? 0 : 1]])) });
    const picked = {
      'config.json': base.files['config.json']!,
      'pytorch_model.bin.index.json': index,
      [names[0]!]: torchSaveBytes(base.tensors.slice(0, half), { archive: 'pytorch_model-00001-of-00002' }),
      [names[1]!]: torchSaveBytes(base.tensors.slice(half), { archive: 'pytorch_model-00002-of-00002' }),
    };
    const opened = await openInputs(pickedDir('base', filesOf(picked)), [pickedDir('adapter', filesOf(adapter.files))]);
    expect(opened.planInput.base.files.map((h) => h.label)).toEqual(names.map((n) => `base/${n}`));
    expect(opened.planInput.base.files.flatMap((h) => h.tensors.map((t) => t.name)).sort()).toEqual(base.tensors.map((t) => t.name).sort());
    // Neither the index nor the shards are carried into the output.
    expect(opened.carried.map((c) => c.name)).toEqual([]);
    const { [names[1]!]: _, ...missing } = picked;
    const e = await refusal(openInputs(pickedDir('base', filesOf(missing)), [pickedDir('adapter', filesOf(adapter.files))]));
    expect([e.code, e.message]).toEqual(['SHARD_MISSING', `base/pytorch_model.bin.index.json lists ${names[1]}, which was not picked with it`]);
    const { 'pytorch_model.bin.index.json': __, ...noWeights } = missing;
    expect((await refusal(openInputs(pickedDir('base', filesOf(noWeights)), [pickedDir('adapter', filesOf(adapter.files))]))).code).toBe('BASE_WEIGHTS_MISSING');
  });

  it('refuses a weights file over the CLI\'s tensor cap by name', async () => {
    const { base, adapter } = await fixtures();
    const extra = Array.from({ length: 100_001 - base.tensors.length }, (_, i) => ({ name: `extra.t${i}`, shape: [1], values: new Float32Array([i]) }));
    const e = await refusal(openInputs(pickedDir('base', filesOf({ ...base.files, 'model.safetensors': await safetensorsBytes([...base.tensors, ...extra]) })), [pickedDir('adapter', filesOf(adapter.files))]));
    expect([e.code, e.message]).toEqual(['TOO_MANY_TENSORS', 'base/model.safetensors holds 100001 tensors; lorafuse reads at most 100,000 per file']);
  }, 60_000);

  it('refuses a missing or malformed config with the messages the CLI gives', async () => {
    const { base, adapter } = await fixtures();
    const { 'config.json': _, ...noConfig } = base.files;
    let e = await refusal(openInputs(pickedDir('base', filesOf(noConfig)), [pickedDir('adapter', filesOf(adapter.files))]));
    expect([e.code, e.message, e.hint]).toEqual(['BASE_CONFIG_MISSING', 'base has no config.json', 'The base directory must be what GPT2LMHeadModel.save_pretrained writes: config.json and model.safetensors.']);
    e = await refusal(openInputs(pickedDir('base', filesOf({ ...base.files, 'config.json': '{"model_type": "llama"}' })), [pickedDir('adapter', filesOf(adapter.files))]));
    expect([e.code, e.message]).toEqual(['BASE_NOT_GPT2', 'base/config.json: model_type is "llama"; lorafuse merges into GPT-2 checkpoints']);
    e = await refusal(openInputs(pickedDir('base', filesOf(base.files)), [pickedDir('adapter', filesOf({ ...adapter.files, 'adapter_config.json': '{"r": ' }))]));
    expect(e.code).toBe('CONFIG_JSON');
    expect(e.message).toMatch(/^adapter\/adapter_config\.json is not valid JSON/);
    const { 'adapter_model.safetensors': __, ...noWeights } = adapter.files;
    e = await refusal(openInputs(pickedDir('base', filesOf(base.files)), [pickedDir('adapter', filesOf(noWeights))]));
    expect(e.code).toBe('ADAPTER_WEIGHTS_MISSING');
  });

  it('opens several adapters in order with their weights; their tokenizers must agree, as the CLI requires', async () => {
    const { base, adapter } = await fixtures();
    const other = await makeLoraAdapter({ seed: 3, modules: gpt2LoraModules(E, [0], ['mlp.c_fc'], 2), config: { target_modules: ['c_fc'], r: 2, lora_alpha: 4 } });
    const tokenizer = (text: string) => ({ 'tokenizer.json': `{"version": "${text}"}`, 'tokenizer_config.json': '{}' });
    const opened = await openInputs(pickedDir('base', filesOf(base.files)), [pickedDir('adapter', filesOf(adapter.files)), pickedDir('adapter-2', filesOf({ ...other.files, ...tokenizer('1.0') }))], [1, -0.5]);
    expect(opened.planInput.adapters.map((a) => [a.label, a.weight])).toEqual([['adapter', 1], ['adapter-2', -0.5]]);
    // The second adapter's tokenizer replaces the base's.
    expect(opened.carried.map((c) => c.name)).toEqual(['generation_config.json', 'tokenizer.json', 'tokenizer_config.json']);
    const e = await refusal(openInputs(pickedDir('base', filesOf(base.files)), [pickedDir('adapter', filesOf({ ...adapter.files, ...tokenizer('1.0') })), pickedDir('adapter-2', filesOf({ ...other.files, ...tokenizer('2.0') }))]));
    expect(e.code).toBe('ADAPTER_TOKENIZERS_DIFFER');
    expect(e.message).toContain('their tokenizer.json differ');
    expect((await refusal(openInputs(pickedDir('base', filesOf(base.files)), [pickedDir('adapter', filesOf(adapter.files)), pickedDir('adapter-2', [])]))).message).toBe('no directory was picked for adapter-2');
  });
});
