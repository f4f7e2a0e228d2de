import { describe, expect, it } from 'vitest';
import { baseFilesCarried, tokenizerFilesOf } from './output-files.js';

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
