/**
 * `merge --max-shard-size`, end to end with the built CLI: a sharded output split as transformers'
 * save_pretrained splits it, read back by verify, diff and inspect; --overwrite between shard counts
 * leaving no stale weight file; a size that is no size refused before anything is written.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSafetensorsBytes } from '@lorafuse/core';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter } from '@lorafuse/core/testing';
import { readCheckpoint, removeDir, runLorafuse, tempDir, writeDir } from './helpers.js';

let work: string;
let baseDir: string;
let adapterDir: string;
let single: string;
let counter = 0;
const outOf = (name: string) => join(work, `${++counter}-${name}`);

const shard = (i: number, n: number) => `model-${String(i).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
const shards = (n: number) => Array.from({ length: n }, (_, i) => shard(i + 1, n));

async function merge(out: string, extra: string[] = []) {
  const r = await runLorafuse(['merge', baseDir, adapterDir, '--out', out, '--device', 'cpu', '--json', ...extra]);
  return { ...r, doc: r.stdout ? JSON.parse(r.stdout) : undefined };
}

beforeAll(async () => {
  work = await tempDir('lorafuse-sharded-');
  // F32, n_embd 64, 2 layers, vocab 1000: wte is 256,000 bytes, c_attn 49,152, c_fc and mlp.c_proj 65,536 each.
  const base = await makeGpt2Checkpoint({ seed: 71, nEmbd: 64, nLayer: 2, nHead: 4, vocabSize: 1000, nPositions: 32 });
  const adapter = await makeLoraAdapter({ seed: 72, modules: gpt2LoraModules(64, [0, 1], ['attn.c_attn', 'mlp.c_fc'], 4) });
  baseDir = await writeDir(join(work, 'base'), base.files);
  adapterDir = await writeDir(join(work, 'adapter'), adapter.files);
  single = join(work, 'single');
  const r = await merge(single);
  expect(r.code, r.stderr).toBe(0);
}, 120_000);
afterAll(async () => {
  await removeDir(work);
});

describe('a sharded merge', () => {
  let out: string;
  let report: any;
  beforeAll(async () => {
    out = outOf('sharded');
    const r = await merge(out, ['--max-shard-size', '100KB']);
    expect(r.code, r.stderr).toBe(0);
    report = r.doc;
  }, 60_000);

  it('writes shards and an index, and lists them in the report', () => {
    // 100KB is 100,000 bytes. In transformers 5's order (names sorted part by part: h.0…, h.1…, ln_f,
    // wpe, wte): h.0.attn.c_attn.bias … h.0.mlp.c_fc.bias (68,608; c_fc.weight would pass the limit);
    // h.0.mlp.c_fc.weight + h.0.mlp.c_proj.bias; h.0.mlp.c_proj.weight + h.1.attn.c_attn.bias;
    // h.1.attn.c_attn.weight … h.1.mlp.c_fc.bias; h.1.mlp.c_fc.weight + h.1.mlp.c_proj.bias; wte
    // (256,000, over the limit: a file of its own, ahead of the one being filled); h.1.mlp.c_proj.weight,
    // ln_f, wpe.
    const files = ['config.json', 'model.safetensors.index.json', ...shards(7)];
    expect(report.filesWritten).toEqual(files);
    expect(report.maxShardSize).toBe(100_000);
    expect(readdirSync(out).sort()).toEqual([...files, ...report.filesCopied].sort());
    expect(existsSync(join(out, 'model.safetensors'))).toBe(false);
  });

  it('the index sends each tensor to the shard that holds it, with transformers\' totals', async () => {
    const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8'));
    const whole = await readCheckpoint(join(single, 'model.safetensors'));
    const stored = new Map<string, string>();
    for (const f of shards(7)) {
      const bytes = new Uint8Array(readFileSync(join(out, f)));
      const header = parseSafetensorsBytes(bytes, f);
      let data = 0;
      for (const t of header.tensors) {
        stored.set(t.name, f);
        data += t.byteLength;
        // Every tensor is byte for byte the one the unsharded merge wrote.
        expect(Buffer.from(bytes.subarray(t.fileOffset, t.fileOffset + t.byteLength)).equals(Buffer.from(whole.raw(t.name))), t.name).toBe(true);
      }
      if (header.tensors.length > 1) expect(data).toBeLessThanOrEqual(100_000);
    }
    expect(new Map(Object.entries(index.weight_map))).toEqual(stored);
    expect(index.weight_map['transformer.h.0.attn.c_attn.bias']).toBe(shard(1, 7));
    expect(index.weight_map['transformer.h.0.mlp.c_fc.bias']).toBe(shard(1, 7));
    expect(index.weight_map['transformer.h.0.mlp.c_fc.weight']).toBe(shard(2, 7));
    expect(index.weight_map['transformer.h.1.attn.c_attn.bias']).toBe(shard(3, 7));
    expect(index.weight_map['transformer.h.1.ln_1.bias']).toBe(shard(4, 7));
    expect(index.weight_map['transformer.h.1.mlp.c_proj.bias']).toBe(shard(5, 7));
    expect(index.weight_map['transformer.wte.weight']).toBe(shard(6, 7));
    expect(index.weight_map['transformer.wpe.weight']).toBe(shard(7, 7));
    expect(index.weight_map['transformer.ln_f.bias']).toBe(shard(7, 7));
    // total_size counts tensor bytes, not headers; total_parameters is num_parameters() (tied: wte once).
    const tensorBytes = whole.header.tensors.reduce((n, t) => n + t.byteLength, 0);
    expect(index.metadata).toEqual({ total_parameters: tensorBytes / 4, total_size: tensorBytes });
  });

  it('verify reads every shard and exits 0', async () => {
    const r = await runLorafuse(['verify', out, '--base', baseDir, '--adapter', adapterDir, '--device', 'cpu', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).ok).toBe(true);
  });

  it('diff against the unsharded merge says identical', async () => {
    const r = await runLorafuse(['diff', out, single, '--device', 'cpu', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.a.files).toEqual(shards(7));
    expect(doc.equal).toBe(true);
    expect(doc.diff.tensors.length).toBe(28);
    expect(doc.diff.tensors.every((t: any) => t.status === 'identical')).toBe(true);
  });

  it('inspect reads it as one checkpoint', async () => {
    const r = await runLorafuse(['inspect', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).tensors.length).toBe(28);
  });

  it('the human report says which files were written', async () => {
    const r = await runLorafuse(['merge', baseDir, adapterDir, '--out', outOf('human'), '--device', 'cpu', '--max-shard-size', '100000']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`wrote: config.json, model.safetensors.index.json, ${shards(7).join(', ')} (7 shards of at most 100000 bytes`);
  });

  it('an output under the limit is one model.safetensors, as before', async () => {
    const r = await merge(outOf('fits'), ['--max-shard-size', '5GB']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.doc.filesWritten).toEqual(['config.json', 'model.safetensors']);
    expect(readFileSync(join(r.doc.out, 'model.safetensors')).equals(readFileSync(join(single, 'model.safetensors')))).toBe(true);
  });
});

describe('--overwrite between shard counts', () => {
  it('from 3 shards to one file leaves no shard and no index', async () => {
    const out = outOf('three-to-one');
    // 300KB: h.0… and h.1 up to mlp.c_fc.bias (268,544); h.1.mlp.c_fc.weight … wpe; wte (it fits, but not beside them).
    const first = await merge(out, ['--max-shard-size', '300KB']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.doc.filesWritten).toEqual(['config.json', 'model.safetensors.index.json', ...shards(3)]);
    const second = await merge(out, ['--overwrite']);
    expect(second.code, second.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['config.json', 'model.safetensors', ...second.doc.filesCopied].sort());
    expect(second.doc.replaced).toEqual(expect.arrayContaining(['model.safetensors.index.json', ...shards(3)]));
    expect((await runLorafuse(['verify', out, '--base', baseDir, '--adapter', adapterDir, '--device', 'cpu'])).code).toBe(0);
  });

  it('from one file to 3 shards leaves no model.safetensors (transformers would load it first)', async () => {
    const out = outOf('one-to-three');
    expect((await merge(out)).code).toBe(0);
    const second = await merge(out, ['--overwrite', '--max-shard-size', '300KB']);
    expect(second.code, second.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['config.json', 'model.safetensors.index.json', ...shards(3), ...second.doc.filesCopied].sort());
  });

  it('from 7 shards to 3 leaves none of the 7', async () => {
    const out = outOf('seven-to-three');
    expect((await merge(out, ['--max-shard-size', '100KB'])).code).toBe(0);
    const second = await merge(out, ['--overwrite', '--max-shard-size', '300KB']);
    expect(second.code, second.stderr).toBe(0);
    expect(readdirSync(out).filter((n) => n.endsWith('.safetensors')).sort()).toEqual(shards(3));
  });
});

describe('a failure while writing a later shard', () => {
  it('leaves nothing: no shard, no index, no staging directory', async () => {
    const parent = join(work, 'full-disk');
    const out = join(parent, 'out');
    // Each file may take 200,000 bytes: the five shards before wte's (256,000 bytes) are written, then the disk is "full".
    const r = await runLorafuse(['merge', baseDir, adapterDir, '--out', out, '--device', 'cpu', '--json', '--max-shard-size', '100KB'], { LORAFUSE_FAULT_ENOSPC_AFTER_BYTES: '200000' });
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout).error).toMatchObject({ code: 'DISK_FULL' });
    expect(JSON.parse(r.stdout).error.message).toContain(shard(6, 7));
    expect(existsSync(parent)).toBe(false);
  });
});

describe('a base with stray weight files', () => {
  it('neither copies them nor trips over them: the output\'s weights are the merge\'s own', async () => {
    const stray = await writeDir(join(work, 'stray-base'), {
      ...Object.fromEntries(readdirSync(baseDir).map((n) => [n, readFileSync(join(baseDir, n))])),
      // An old index beside model.safetensors (transformers loads model.safetensors, so does lorafuse).
      'model.safetensors.index.json': JSON.stringify({ metadata: {}, weight_map: { 'transformer.wte.weight': shard(1, 3) } }),
      [shard(1, 3)]: 'not a shard',
    });
    const out = outOf('from-stray');
    const r = await runLorafuse(['merge', stray, adapterDir, '--out', out, '--device', 'cpu', '--json', '--max-shard-size', '300KB']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.filesCopied).not.toContain(shard(1, 3));
    expect(doc.filesCopied).not.toContain('model.safetensors.index.json');
    expect(readFileSync(join(out, shard(1, 3)))).not.toEqual(Buffer.from('not a shard'));
    expect((await runLorafuse(['verify', out, '--base', baseDir, '--adapter', adapterDir, '--device', 'cpu'])).code).toBe(0);
  });
});

describe('a bad --max-shard-size', () => {
  it.each([
    ['5GiB', 'binary units such as GiB are not accepted'],
    ['lots', 'has no unit lorafuse knows'],
    ['xMB', '"x" is not a number'],
    ['0', 'at least 1 byte'],
  ])('%j is exit 2 with a clear message, nothing written', async (size, says) => {
    const out = outOf('bad');
    const r = await merge(out, ['--max-shard-size', size]);
    expect(r.code).toBe(2);
    expect(r.doc.error).toMatchObject({ code: 'BAD_SHARD_SIZE', kind: 'usage' });
    expect(r.doc.error.message).toContain(`--max-shard-size "${size}"`);
    expect(r.doc.error.message).toContain(says);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(out)).toBe(false);
  });
});
