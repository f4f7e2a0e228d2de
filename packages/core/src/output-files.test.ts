import { describe, expect, it } from 'vitest';
import { adapterTokenizer, baseFilesCarried, tokenizerFilesOf } from './output-files.js';

describe('the files an output carries', () => {
  const base = ['config.json', 'model.safetensors', 'model.safetensors.index.json', 'model-00001-of-00002.safetensors', 'pytorch_model.bin', 'pytorch_model-00001-of-00002.bin', 'pytorch_model.bin.index.json', 'generation_config.json', 'tokenizer.json', 'vocab.json', 'merges.txt', 'adapter_config.json', 'adapter_model.safetensors', 'README.md'];

  it('never config or weights in any format, never adapter files; the rest as it is', () => {
    expect(baseFilesCarried(base, false)).toEqual(['generation_config.json', 'tokenizer.json', 'vocab.json', 'merges.txt', 'README.md']);
  });

  it('without the base\'s tokenizer files when the adapter brings its own tokenizer', () => {
    expect(baseFilesCarried(base, true)).toEqual(['generation_config.json', 'README.md']);
  });

  it('a tokenizer is tokenizer.json or tokenizer_config.json with its companions; stray vocab files alone are none', () => {
    expect(tokenizerFilesOf(['vocab.json', 'tokenizer_config.json', 'adapter_config.json', 'merges.txt'])).toEqual(['merges.txt', 'tokenizer_config.json', 'vocab.json']);
    expect(tokenizerFilesOf(['vocab.json', 'merges.txt'])).toEqual([]);
  });
});

describe('adapterTokenizer (several adapters)', () => {
  const dirs: Record<string, Record<string, string>> = {
    none: { 'adapter_config.json': '{}' },
    a: { 'tokenizer.json': 'A', 'tokenizer_config.json': '{}', 'adapter_config.json': '{}' },
    same: { 'tokenizer.json': 'A', 'tokenizer_config.json': '{}' },
    bytes: { 'tokenizer.json': 'B', 'tokenizer_config.json': '{}' },
    names: { 'tokenizer.json': 'A' },
  };
  const adapters = (...names: string[]) => names.map((dir) => ({ dir, names: Object.keys(dirs[dir]!) }));
  const sameBytes = async (x: { dir: string }, y: { dir: string }, name: string) => dirs[x.dir]![name] === dirs[y.dir]![name];

  it('takes the first adapter that saved a tokenizer; others may hold the same files', async () => {
    expect(await adapterTokenizer(adapters('none', 'none'), sameBytes)).toBeNull();
    const chosen = await adapterTokenizer(adapters('none', 'a', 'same'), sameBytes);
    expect(chosen?.adapter.dir).toBe('a');
    expect(chosen?.names).toEqual(['tokenizer.json', 'tokenizer_config.json']);
  });

  it('refuses two tokenizers that differ in their files or their bytes, naming both adapters', async () => {
    await expect(adapterTokenizer(adapters('a', 'bytes'), sameBytes)).rejects.toMatchObject({ code: 'ADAPTER_TOKENIZERS_DIFFER', message: 'adapters a and bytes both carry a tokenizer, and their tokenizer.json differ' });
    await expect(adapterTokenizer(adapters('a', 'names'), sameBytes)).rejects.toMatchObject({ code: 'ADAPTER_TOKENIZERS_DIFFER', message: expect.stringContaining('their files differ') });
  });
});
