import { describe, expect, it } from 'vitest';
import { ShardIndexError, type ShardIndexErrorCode } from './errors.js';
import { parseShardIndex } from './shard-index.js';

// As transformers 4.57.6 writes it: indent=2, sort_keys=True, trailing newline.
const GPT2_INDEX = `{
  "metadata": {
    "total_parameters": 124439808,
    "total_size": 497759232
  },
  "weight_map": {
    "transformer.h.0.attn.c_attn.weight": "model-00001-of-00002.safetensors",
    "transformer.h.11.mlp.c_proj.weight": "model-00002-of-00002.safetensors",
    "transformer.ln_f.weight": "model-00002-of-00002.safetensors",
    "transformer.wte.weight": "model-00001-of-00002.safetensors"
  }
}
`;

function indexError(text: string): ShardIndexError {
  try {
    parseShardIndex(text, 'ckpt/model.safetensors.index.json');
  } catch (error) {
    expect(error).toBeInstanceOf(ShardIndexError);
    return error as ShardIndexError;
  }
  throw new Error('expected a ShardIndexError');
}

describe('parseShardIndex', () => {
  it('reads weight_map, the sorted unique shard files and the metadata counts', () => {
    const index = parseShardIndex(GPT2_INDEX, 'ckpt/model.safetensors.index.json');
    expect(index.weightMap.size).toBe(4);
    expect(index.weightMap.get('transformer.ln_f.weight')).toBe('model-00002-of-00002.safetensors');
    expect([...index.weightMap.keys()][0]).toBe('transformer.h.0.attn.c_attn.weight');
    expect(index.shardFiles).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    expect(index.totalSize).toBe(497759232);
    expect(index.totalParameters).toBe(124439808);
    expect(index.label).toBe('ckpt/model.safetensors.index.json');
  });

  it('needs only weight_map; tolerates a BOM, extra fields and odd metadata', () => {
    const index = parseShardIndex('\ufeff{"weight_map":{"a":"s.safetensors"},"extra":[1]}', 'i');
    expect(index.shardFiles).toEqual(['s.safetensors']);
    expect(index.totalSize).toBeUndefined();
    expect(parseShardIndex('{"metadata":{"total_size":1.5e3},"weight_map":{"a":"s"}}', 'i').totalSize).toBeUndefined();
    expect(parseShardIndex('{"metadata":"x","weight_map":{"a":"s"}}', 'i').totalParameters).toBeUndefined();
  });

  it.each<[string, string, ShardIndexErrorCode, string | undefined]>([
    ['not JSON', '{"weight_map":', 'INVALID_INDEX_JSON', undefined],
    ['not an object', '[]', 'INVALID_INDEX_JSON', undefined],
    ['no weight_map', '{"metadata":{}}', 'INVALID_WEIGHT_MAP', 'weight_map'],
    ['weight_map not an object', '{"weight_map":["a"]}', 'INVALID_WEIGHT_MAP', 'weight_map'],
    ['an empty weight_map', '{"weight_map":{}}', 'INVALID_WEIGHT_MAP', 'weight_map'],
    ['a non-string shard file', '{"weight_map":{"t.w":1}}', 'INVALID_WEIGHT_MAP', 't.w'],
    ['a duplicate tensor', '{"weight_map":{"t.w":"a","t.w":"b"}}', 'DUPLICATE_KEY', 't.w'],
    ['a duplicate weight_map', '{"weight_map":{"t.w":"a"},"weight_map":{"t.w":"a"}}', 'DUPLICATE_KEY', 'weight_map'],
    ['a parent-folder shard path', '{"weight_map":{"t.w":"../model.safetensors"}}', 'INVALID_SHARD_FILE', 't.w'],
    ['an absolute shard path', '{"weight_map":{"t.w":"/etc/passwd"}}', 'INVALID_SHARD_FILE', 't.w'],
    ['a Windows shard path', '{"weight_map":{"t.w":"C:\\\\x.safetensors"}}', 'INVALID_SHARD_FILE', 't.w'],
    ['an empty shard name', '{"weight_map":{"t.w":""}}', 'INVALID_SHARD_FILE', 't.w'],
  ])('rejects %s', (_what, text, code, subject) => {
    const error = indexError(text);
    expect(error.code).toBe(code);
    expect(error.kind).toBe('input');
    expect(error.message).toMatch(/^ckpt\/model\.safetensors\.index\.json is not a valid sharded-checkpoint index: /);
    expect(error.subject).toBe(subject === undefined ? 'ckpt/model.safetensors.index.json' : `ckpt/model.safetensors.index.json: ${subject}`);
  });
});
