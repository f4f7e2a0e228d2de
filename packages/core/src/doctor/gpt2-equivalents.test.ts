import { describe, expect, it } from 'vitest';
import { modelNameOf } from './gpt2-equivalents.js';

describe('modelNameOf', () => {
  it('treats Hub aliases, local directories and cache snapshots of one model as one name', () => {
    for (const n of ['gpt2', 'openai-community/gpt2', '/models/gpt2/', 'C:\\models\\GPT2', '/root/.cache/huggingface/hub/models--openai-community--gpt2/snapshots/607a30d783dfa663caf39e06633721c8d4cfcd7e', 'models--gpt2']) {
      expect(modelNameOf(n), n).toBe('gpt2');
    }
    expect(modelNameOf('distilbert/distilgpt2')).toBe(modelNameOf('distilgpt2'));
    expect(modelNameOf('openai-community/gpt2-medium')).toBe('gpt2-medium');
  });
  it('keeps different models apart: sizes and fine-tunes of the same shapes', () => {
    expect(modelNameOf('gpt2-medium')).not.toBe(modelNameOf('gpt2'));
    expect(modelNameOf('microsoft/DialoGPT-small')).not.toBe(modelNameOf('gpt2'));
    expect(modelNameOf('microsoft/DialoGPT-medium')).toBe('dialogpt-medium');
  });
});
