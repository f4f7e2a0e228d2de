import { describe, expect, it } from 'vitest';
import { parseShardIndex } from './shard-index.js';
import { compareDotNatural, DEFAULT_MAX_SHARD_SIZE, parseShardSize, renderShardIndex, shardFileName, splitIntoShards } from './shard-split.js';

// Expected bytes are what huggingface_hub 1.33's parse_size_to_int returns for the same text
// (plain digits excepted: there transformers takes an int).
describe('parseShardSize', () => {
  it.each([
    ['5GB', 5_000_000_000],
    ['50GB', 50_000_000_000],
    ['500MB', 500_000_000],
    ['200KB', 200_000],
    ['1.5GB', 1_500_000_000],
    ['0.1MB', 100_000],
    ['5gb', 5_000_000_000],
    [' 7 kb ', 7000],
    ['1e3KB', 1_000_000],
    ['2TB', 2_000_000_000_000],
    ['0.3KB', 300],
    ['0.7KB', 700],
    ['3.999999KB', 3999],
    ['1000', 1000],
    ['1', 1],
  ])('%j is %d bytes', (text, bytes) => {
    expect(parseShardSize(text)).toEqual({ ok: true, bytes });
  });

  it('the default is transformers 5 save_pretrained\'s "50GB"', () => {
    expect(parseShardSize('50GB')).toEqual({ ok: true, bytes: DEFAULT_MAX_SHARD_SIZE });
  });

  it.each([
    ['5GiB', /binary units such as GiB/],
    ['5MiB', /binary units such as MiB/],
    ['5B', /no unit/],
    ['5G', /no unit/],
    ['', /no unit/],
    ['abcMB', /"abc" is not a number/],
    ['MB', /"" is not a number/],
    ['-5MB', /at least 1 byte/],
    ['infGB', /not a number/],
    ['1_0MB', /not a number/],
    ['0', /at least 1 byte/],
    ['0.0001KB', /at least 1 byte/],
    ['99999999999TB', /too large/],
  ])('%j is refused', (text, reason) => {
    const got = parseShardSize(text);
    expect(got.ok).toBe(false);
    if (!got.ok) expect(got.reason).toMatch(reason);
  });
});

const tensors = (sizes: number[]) => sizes.map((byteLength, i) => ({ name: `t${i}`, byteLength }));
const filesOf = (sizes: number[], max: number) => Object.fromEntries(splitIntoShards(tensors(sizes), max).files.map((f) => [f.file, f.tensors]));

// Each expectation is huggingface_hub 1.33's split_state_dict_into_shards_factory on the same sizes
// (get_storage_size = the size, no shared storage): filename_to_tensors and metadata.total_size.
describe('splitIntoShards', () => {
  it('fills greedily in order, without optimising ([6,6,2,6,2,2] at 10)', () => {
    expect(filesOf([6, 6, 2, 6, 2, 2], 10)).toEqual({
      'model-00001-of-00003.safetensors': ['t0'],
      'model-00002-of-00003.safetensors': ['t1', 't2'],
      'model-00003-of-00003.safetensors': ['t3', 't4', 't5'],
    });
    expect(splitIntoShards(tensors([6, 6, 2, 6, 2, 2]), 10).totalSize).toBe(24);
  });

  it('puts a tensor over the limit in a file of its own, ahead of the one being filled', () => {
    expect(filesOf([4, 20, 4], 10)).toEqual({ 'model-00001-of-00002.safetensors': ['t1'], 'model-00002-of-00002.safetensors': ['t0', 't2'] });
    expect(filesOf([4, 20, 4, 20], 10)).toEqual({
      'model-00001-of-00003.safetensors': ['t1'],
      'model-00002-of-00003.safetensors': ['t3'],
      'model-00003-of-00003.safetensors': ['t0', 't2'],
    });
    expect(splitIntoShards(tensors([4, 20, 4, 20]), 10).totalSize).toBe(48);
  });

  it('a file may reach the limit exactly', () => {
    expect(filesOf([5, 5, 5], 10)).toEqual({ 'model-00001-of-00002.safetensors': ['t0', 't1'], 'model-00002-of-00002.safetensors': ['t2'] });
    expect(filesOf([10, 1], 10)).toEqual({ 'model-00001-of-00002.safetensors': ['t0'], 'model-00002-of-00002.safetensors': ['t1'] });
  });

  it('one file is model.safetensors, not sharded (empty tensors count nothing)', () => {
    const split = splitIntoShards(tensors([3, 0, 7, 0]), 10);
    expect(split.sharded).toBe(false);
    expect(filesOf([3, 0, 7, 0], 10)).toEqual({ 'model.safetensors': ['t0', 't1', 't2', 't3'] });
    expect(split.totalSize).toBe(10);
    expect(filesOf([11], 10)).toEqual({ 'model.safetensors': ['t0'] });
  });

  it('maps every tensor to its file', () => {
    const split = splitIntoShards(tensors([6, 6, 2]), 10);
    expect(split.sharded).toBe(true);
    expect([...split.weightMap]).toEqual([['t0', 'model-00001-of-00002.safetensors'], ['t1', 'model-00002-of-00002.safetensors'], ['t2', 'model-00002-of-00002.safetensors']]);
  });

  it('names shards with five digits, counting from 1', () => {
    expect(shardFileName(0, 3)).toBe('model-00001-of-00003.safetensors');
    expect(shardFileName(11, 123456)).toBe('model-00012-of-123456.safetensors');
  });
});

describe('renderShardIndex', () => {
  it('is the text of json.dumps(index, indent=2, sort_keys=True) + "\\n"', () => {
    const split = {
      files: [],
      sharded: true,
      totalSize: 7808,
      weightMap: new Map([
        ['b.w', 'model-00002-of-00002.safetensors'],
        ['a\u00e9\x7f\n.w', 'model-00001-of-00002.safetensors'],
        ['\u{1F600}', 'x'],
        ['\uffff', 'y'],
      ]),
    };
    // Python 3's output for the same dict (ensure_ascii; code-point key order puts U+FFFF before U+1F600).
    const python = '{\n  "metadata": {\n    "total_parameters": 1952,\n    "total_size": 7808\n  },\n  "weight_map": {\n    "a\\u00e9\\u007f\\n.w": "model-00001-of-00002.safetensors",\n    "b.w": "model-00002-of-00002.safetensors",\n    "\\uffff": "y",\n    "\\ud83d\\ude00": "x"\n  }\n}\n';
    expect(renderShardIndex(split, 1952)).toBe(python);
  });

  it('reads back with the index parser', () => {
    const split = splitIntoShards(tensors([6, 6, 2]), 10);
    const index = parseShardIndex(renderShardIndex(split, 14), 'x');
    expect(index.weightMap).toEqual(new Map([['t0', 'model-00001-of-00002.safetensors'], ['t1', 'model-00002-of-00002.safetensors'], ['t2', 'model-00002-of-00002.safetensors']]));
    expect(index.totalSize).toBe(14);
    expect(index.totalParameters).toBe(14);
  });
});

describe('compareDotNatural', () => {
  it('orders names as transformers 5 sorts a state dict (dot_natural_key)', () => {
    const names = ['transformer.wte.weight', 'transformer.wpe.weight', 'transformer.h.10.ln_1.weight', 'transformer.h.2.mlp.c_proj.bias', 'transformer.h.2.ln_1.weight', 'lm_head.weight', 'transformer.ln_f.bias', 'transformer.h.0.attn.c_attn.weight', 'transformer.h.0.attn.bias', 'a.shard_11', 'a.shard_2', 'a.shard', 'a.2', 'a.b', 'h.0x.w', 'h.07.w', 'h.7.w', '\u00e9.x', 'e.x', 'Z.x'];
    // sorted(names, key=transformers.core_model_loading.dot_natural_key) under transformers 5.18.
    const python = ['Z.x', 'a.2', 'a.b', 'a.shard', 'a.shard_2', 'a.shard_11', 'e.x', 'h.07.w', 'h.7.w', 'h.0x.w', 'lm_head.weight', 'transformer.h.0.attn.bias', 'transformer.h.0.attn.c_attn.weight', 'transformer.h.2.ln_1.weight', 'transformer.h.2.mlp.c_proj.bias', 'transformer.h.10.ln_1.weight', 'transformer.ln_f.bias', 'transformer.wpe.weight', 'transformer.wte.weight', '\u00e9.x'];
    expect([...names].sort(compareDotNatural)).toEqual(python);
  });
});
