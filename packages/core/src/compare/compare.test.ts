/** core/compare: matching by name, the report's lists and order, the verdict, and the as-loaded diff. */
import { describe, expect, it } from 'vitest';
import type { CompareElementType } from '@lorafuse/kernels';
import { compareRef } from '@lorafuse/kernels/reference';
import { InputError } from '../errors.js';
import { parseSafetensorsBytes, type SafetensorsHeader } from '../safetensors/header.js';
import { makeGpt2Checkpoint, safetensorsBytes, type FixtureTensor } from '../testing/fixtures.js';
import type { TensorRef } from '../safetensors/tensor-ref.js';
import { diffTensorSets, formatTolerance, type TensorComparer } from './diff.js';
import { diffAsLoaded } from './loaded.js';
import { canonicalTensorKey, looksLikeAdapterKeys, matchTensorSets, tensorSetFromHeaders } from './tensor-set.js';

const TOL = { atol: 1e-6, rtol: 1e-5, equalNan: false };

/** In-memory files and a comparer over them (the CPU reference), counting what it was asked. */
class Files {
  readonly bytes = new Map<string, Uint8Array>();
  readonly calls = { bytesEqual: 0, compare: [] as string[] };

  async add(label: string, tensors: readonly FixtureTensor[]): Promise<SafetensorsHeader> {
    const data = await safetensorsBytes(tensors);
    this.bytes.set(label, data);
    return parseSafetensorsBytes(data, label);
  }

  private range(r: TensorRef): Uint8Array {
    return this.bytes.get(r.file)!.subarray(r.fileOffset, r.fileOffset + r.byteLength);
  }

  readonly comparer: TensorComparer = {
    bytesEqual: async (a, b) => {
      this.calls.bytesEqual++;
      return Buffer.from(this.range(a)).equals(Buffer.from(this.range(b)));
    },
    compare: async (a, b, tol) => {
      this.calls.compare.push(a.name);
      const type = (r: TensorRef) => r.dtype.toLowerCase() as CompareElementType;
      return compareRef({ count: a.shape.reduce((n, d) => n * d, 1), a: { type: type(a), bytes: this.range(a) }, b: { type: type(b), bytes: this.range(b) }, ...tol });
    },
  };
}

const t = (name: string, values: number[], shape = [values.length], dtype: FixtureTensor['dtype'] = 'F32'): FixtureTensor => ({ name, shape, values: Float32Array.from(values), dtype });

describe('tensor sets and matching', () => {
  it('canonical keys: GPT2Model and GPT2LMHeadModel layouts, adapters with and without base_model.model.', () => {
    expect(canonicalTensorKey('h.0.attn.c_attn.weight', 'checkpoint')).toBe('transformer.h.0.attn.c_attn.weight');
    expect(canonicalTensorKey('lm_head.weight', 'checkpoint')).toBe('lm_head.weight');
    expect(canonicalTensorKey('base_model.model.transformer.h.0.attn.c_attn.lora_A.weight', 'adapter')).toBe('transformer.h.0.attn.c_attn.lora_A.weight');
    expect(canonicalTensorKey('h.0.attn.c_attn.lora_A.weight', 'adapter')).toBe('transformer.h.0.attn.c_attn.lora_A.weight');
    expect(looksLikeAdapterKeys(['transformer.wte.weight'])).toBe(false);
    expect(looksLikeAdapterKeys(['base_model.model.lm_head.weight'])).toBe(true);
  });

  it('matches by name whatever the file order and prefix', async () => {
    const f = new Files();
    const a = tensorSetFromHeaders('a', [await f.add('a', [t('transformer.wte.weight', [1, 2]), t('transformer.h.0.ln_1.bias', [3])])], 'checkpoint');
    const b = tensorSetFromHeaders('b', [await f.add('b', [t('h.0.ln_1.bias', [3]), t('wte.weight', [1, 2]), t('extra', [0])])], 'checkpoint');
    const m = matchTensorSets(a, b);
    expect(m.pairs.map((p) => [p.key, p.a.name, p.b.name])).toEqual([
      ['transformer.h.0.ln_1.bias', 'transformer.h.0.ln_1.bias', 'h.0.ln_1.bias'],
      ['transformer.wte.weight', 'transformer.wte.weight', 'wte.weight'],
    ]);
    expect(m.onlyInB.map((x) => x.key)).toEqual(['transformer.extra']);
  });

  it('refuses two stored keys for one tensor (in one file or across shards)', async () => {
    const f = new Files();
    const h1 = await f.add('s1', [t('wte.weight', [1])]);
    const h2 = await f.add('s2', [t('transformer.wte.weight', [1])]);
    expect(() => tensorSetFromHeaders('ckpt', [h1, h2], 'checkpoint')).toThrow(InputError);
    expect(() => tensorSetFromHeaders('ckpt', [h1, h2], 'checkpoint')).toThrow(/same tensor transformer\.wte\.weight/);
  });
});

describe('diffTensorSets', () => {
  async function sides(aTensors: FixtureTensor[], bTensors: FixtureTensor[]) {
    const f = new Files();
    const a = tensorSetFromHeaders('a', [await f.add('a', aTensors)], 'checkpoint');
    const b = tensorSetFromHeaders('b', [await f.add('b', bTensors)], 'checkpoint');
    return { f, a, b };
  }

  it('identical contents in another order: equal, and byte-identical tensors never reach compare()', async () => {
    const { f, a, b } = await sides([t('x', [1, 2]), t('y', [3])], [t('y', [3]), t('x', [1, 2])]);
    const d = await diffTensorSets(a, b, f.comparer, { tolerance: TOL });
    expect(d).toMatchObject({ equal: true, counts: { compared: 2, identical: 2, withinTolerance: 0, differs: 0 }, verdict: 'equal: 2 tensors within atol=1e-6, rtol=1e-5 (all byte-identical)' });
    expect(f.calls.compare).toEqual([]);
  });

  it('one element changed: that tensor first with its statistics, the others identical', async () => {
    const base = [t('a.weight', [0.5, 0.25, 1]), t('b.weight', [1, 2, 3, 4]), t('c.weight', [7])];
    const changed = base.map((x) => (x.name === 'b.weight' ? t('b.weight', [1, 2, 3 + 1e-3, 4]) : x));
    const { f, a, b } = await sides(base, changed);
    const d = await diffTensorSets(a, b, f.comparer, { tolerance: TOL });
    expect(d.equal).toBe(false);
    expect(d.tensors[0]).toMatchObject({ name: 'b.weight', status: 'differs', stats: { violations: 1, worst: [{ index: 2 }] } });
    expect(d.tensors[0]!.stats!.maxAbsDiff).toBeCloseTo(1e-3, 6);
    expect(d.tensors.slice(1).map((x) => x.status)).toEqual(['identical', 'identical']);
    expect(d.verdict).toBe('differs: 1 of 3 tensors outside atol=1e-6, rtol=1e-5');
    expect(f.calls.compare).toEqual(['b.weight']);
  });

  it('within tolerance: different bytes, no violations, still equal', async () => {
    const { f, a, b } = await sides([t('w', [1, 2])], [t('w', [1 + 1e-7, 2])]);
    const d = await diffTensorSets(a, b, f.comparer, { tolerance: TOL });
    expect(d).toMatchObject({ equal: true, counts: { withinTolerance: 1 }, tensors: [{ status: 'within-tolerance' }] });
    expect(d.verdict).toBe('equal: 1 tensor within atol=1e-6, rtol=1e-5 (0 byte-identical)');
  });

  it('keys only on one side, shape and dtype mismatches are all reported', async () => {
    const { f, a, b } = await sides(
      [t('gone', [1]), t('wpe.weight', [1, 2, 3, 4], [2, 2]), t('half', [1, 2])],
      [t('new', [1]), t('wpe.weight', [1, 2, 3, 4, 5, 6], [3, 2]), t('half', [1, 2], [2], 'F16')],
    );
    const d = await diffTensorSets(a, b, f.comparer, { tolerance: TOL });
    expect(d.equal).toBe(false);
    expect(d.onlyInA).toEqual([{ name: 'gone', key: 'transformer.gone', dtype: 'F32', shape: [1] }]);
    expect(d.onlyInB.map((x) => x.name)).toEqual(['new']);
    expect(d.shapeMismatches).toEqual([{ name: 'wpe.weight', key: 'transformer.wpe.weight', a: { name: 'wpe.weight', dtype: 'F32', shape: [2, 2] }, b: { name: 'wpe.weight', dtype: 'F32', shape: [3, 2] } }]);
    // Same values in F16: a dtype mismatch, compared in f32 and within tolerance.
    expect(d.dtypeMismatches).toEqual([{ name: 'half', dtypeA: 'F32', dtypeB: 'F16' }]);
    expect(d.tensors).toMatchObject([{ name: 'half', status: 'within-tolerance' }]);
    expect(d.verdict).toBe('differs: 1 key only in a; 1 key only in b; 1 shape mismatch');
  });

  it('sorts worst first: differing by max |a-b|, then within tolerance, then identical', async () => {
    const { f, a, b } = await sides(
      [t('p', [0, 0]), t('q', [0, 0]), t('r', [5]), t('s', [1])],
      [t('p', [0, 0.5]), t('q', [2, 0]), t('r', [5]), t('s', [1 + 1e-7])],
    );
    const d = await diffTensorSets(a, b, f.comparer, { tolerance: TOL });
    expect(d.tensors.map((x) => [x.name, x.status])).toEqual([['q', 'differs'], ['p', 'differs'], ['s', 'within-tolerance'], ['r', 'identical']]);
  });

  it('non-float dtypes are compared by bytes', async () => {
    const f = new Files();
    const mk = async (label: string, v: number) => {
      const bytes = await safetensorsBytes([t('w', [1])]);
      // Re-label the F32 tensor as I32 in a hand-built file: same layout, other dtype.
      const header = JSON.stringify({ ids: { dtype: 'I32', shape: [1], data_offsets: [0, 4] } });
      const n = header.length;
      const file = new Uint8Array(8 + n + 4);
      new DataView(file.buffer).setUint32(0, n, true);
      file.set(new TextEncoder().encode(header), 8);
      new DataView(file.buffer).setInt32(8 + n, v, true);
      f.bytes.set(label, file);
      void bytes;
      return parseSafetensorsBytes(file, label);
    };
    const a = tensorSetFromHeaders('a', [await mk('a', 7)], 'checkpoint');
    const same = tensorSetFromHeaders('b', [await mk('b', 7)], 'checkpoint');
    const other = tensorSetFromHeaders('c', [await mk('c', 8)], 'checkpoint');
    expect((await diffTensorSets(a, same, f.comparer, { tolerance: TOL })).tensors[0]!.status).toBe('identical');
    const d = await diffTensorSets(a, other, f.comparer, { tolerance: TOL });
    expect(d.tensors[0]).toMatchObject({ status: 'differs', stats: null });
    expect(d.tensors[0]!.note).toMatch(/I32: only F32, F16 and BF16/);
  });

  it('reports progress in bytes of both sides', async () => {
    const { f, a, b } = await sides([t('x', [1, 2]), t('y', [3])], [t('x', [1, 2]), t('y', [4])]);
    const seen: Array<[number, number]> = [];
    await diffTensorSets(a, b, f.comparer, { tolerance: TOL, onProgress: (done, total) => seen.push([done, total]) });
    expect(seen).toEqual([[16, 24], [24, 24]]);
  });

  it('formats tolerances compactly', () => {
    expect([0, 1e-6, 1e-5, 0.01, 1, 12345].map(formatTolerance)).toEqual(['0', '1e-6', '1e-5', '0.01', '1', '1.2345e4']);
  });
});

describe('diffAsLoaded', () => {
  async function checkpoint(f: Files, label: string, opts: { headCopy?: 'equal' | 'different'; untiedConfig?: boolean; bare?: boolean } = {}) {
    const ckpt = await makeGpt2Checkpoint({ seed: 5, nLayer: 1, layout: opts.bare ? 'bare' : 'lmhead' });
    const tensors = [...ckpt.tensors];
    const wte = tensors.find((x) => x.name.endsWith('wte.weight'))!;
    if (opts.headCopy === 'equal') tensors.push({ ...wte, name: 'lm_head.weight' });
    if (opts.headCopy === 'different') tensors.push({ ...wte, name: 'lm_head.weight', values: wte.values.map((v) => v + 0.5) });
    const config = { ...ckpt.config, ...(opts.untiedConfig ? { tie_word_embeddings: false } : {}) };
    return { label, config, files: [await f.add(label, tensors)] };
  }

  it('a tied checkpoint without lm_head.weight equals the same weights with a copy of it (v5 and v4 alike)', async () => {
    const f = new Files();
    const d = await diffAsLoaded(await checkpoint(f, 'tied'), await checkpoint(f, 'copy', { headCopy: 'equal', bare: false }), f.comparer, { tolerance: TOL });
    expect(d.equal).toBe(true);
    expect(d.groups).toHaveLength(1);
    expect(d.groups[0]!.versions).toEqual(['v5', 'v4']);
    const head = d.groups[0]!.diff.tensors.find((x) => x.key === 'lm_head.weight')!;
    expect(head).toMatchObject({ name: 'lm_head.weight', status: 'identical', viaA: 'tied-to-wte', viaB: 'tied-to-wte' });
    expect(d.verdict).toMatch(/^equal as loaded by transformers v5 and v4: /);
  });

  it('prefixes do not matter: GPT2Model keys against GPT2LMHeadModel keys', async () => {
    const f = new Files();
    const a = await checkpoint(f, 'lmhead');
    const b = await checkpoint(f, 'bare', { bare: true });
    // The bare layout's config names GPT2Model: compare under the same architecture.
    const d = await diffAsLoaded(a, { ...b, config: a.config }, f.comparer, { tolerance: TOL });
    expect(d.equal).toBe(true);
  });

  it('a stored lm_head that differs under a tied config: discarded by v4 (equal), kept by v5 (differs)', async () => {
    const f = new Files();
    const d = await diffAsLoaded(await checkpoint(f, 'tied'), await checkpoint(f, 'stale', { headCopy: 'different' }), f.comparer, { tolerance: TOL });
    expect(d.equal).toBe(false);
    expect(d.groups.map((g) => [g.versions, g.equal])).toEqual([[['v5'], false], [['v4'], true]]);
    const v4 = d.groups[1]!;
    expect(v4.b.discarded).toEqual([{ name: 'lm_head.weight', reason: expect.stringMatching(/transformers v4 replaces the stored lm_head.weight/) }]);
    const v5head = d.groups[0]!.diff.tensors[0]!;
    expect(v5head).toMatchObject({ name: 'lm_head.weight', status: 'differs', viaA: 'tied-to-wte' });
    expect(v5head.viaB).toBeUndefined();
    expect(d.verdict).toMatch(/^differs as loaded by transformers v5: .* \| equal as loaded by transformers v4/);
  });

  it('a parameter transformers would initialise randomly makes the sides differ', async () => {
    const f = new Files();
    const a = await checkpoint(f, 'untied-no-head', { untiedConfig: true });
    const d = await diffAsLoaded(a, a, f.comparer, { tolerance: TOL });
    expect(d.equal).toBe(false);
    expect(d.groups[0]!.a.randomlyInitialised).toEqual(['lm_head.weight']);
    expect(d.groups[0]!.diff.equal).toBe(true);
    expect(d.verdict).toMatch(/a leaves lm_head.weight randomly initialised/);
  });

  it('each tensor pair is read once across versions', async () => {
    const f = new Files();
    await diffAsLoaded(await checkpoint(f, 'x'), await checkpoint(f, 'y', { headCopy: 'equal' }), f.comparer, { tolerance: TOL });
    const pairs = (await checkpoint(new Files(), 'z')).files[0]!.tensors.length;
    // One bytesEqual per parameter pair (+1: the stored lm_head against wte for the tie check), not two.
    expect(f.calls.bytesEqual).toBe(pairs + 1);
  });
});
