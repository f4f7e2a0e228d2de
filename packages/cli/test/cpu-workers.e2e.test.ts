/**
 * The CPU executor's worker pool as built (worker threads need the compiled worker file, so this
 * imports dist/): its f32 fast path must equal core's single-thread merge byte for byte, hash the
 * result correctly off the main thread, and reuse a buffer only after it was released.
 */
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { mergeOnCpu, type TensorRef, type TensorSource } from '@lorafuse/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

type PoolModule = typeof import('../src/devices/cpu/workers.js');
const built = fileURLToPath(new URL('../dist/devices/cpu/workers.js', import.meta.url));

/** Deterministic values in [-1, 1). */
function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

describe('CPU merge pool (worker threads, built)', () => {
  const rows = 641;
  const cols = 512; // rows * cols >= MIN_PARALLEL_ELEMENTS, rows odd: uneven split over workers
  const rank = 4;
  const file = new Map<string, Uint8Array>();
  const put = (name: string, v: Float32Array, shape: number[]): TensorRef => {
    file.set(name, new Uint8Array(v.buffer));
    return { file: name, name, dtype: 'F32', shape, fileOffset: 0, byteLength: v.byteLength };
  };
  const source: Extract<TensorSource, { kind: 'merge' }> = {
    kind: 'merge',
    base: put('w', values(rows * cols, 1), [rows, cols]),
    deltas: [{ modulePath: 'm', a: put('a', values(rank * cols, 2), [rank, cols]), b: put('b', values(rows * rank, 3), [rows, rank]), rank, alpha: 8, scale: 2, adapter: 'adapter', weight: 1, orientation: 'linear', rows, cols }],
  };
  // The same weight trained by a second adapter (rank 9, a negative weight in its scale).
  const twoAdapters: typeof source = {
    ...source,
    deltas: [...source.deltas, { modulePath: 'm', a: put('a2', values(9 * cols, 5), [9, cols]), b: put('b2', values(rows * 9, 6), [rows, 9]), rank: 9, alpha: 9, scale: -0.5, adapter: 'second', weight: -0.5, orientation: 'linear', rows, cols }],
  };
  const read = async (ref: TensorRef) => file.get(ref.file)!.slice();
  const readInto = async (ref: TensorRef, target: Uint8Array) => void target.set(file.get(ref.file)!);
  let pool: ReturnType<PoolModule['startCpuMergePool']>;

  beforeAll(async () => {
    const mod = (await import(built)) as PoolModule;
    pool = mod.startCpuMergePool(2);
  });
  afterAll(async () => {
    await pool?.close();
  });

  it('merges f32 in shared memory, bit-identical to mergeOnCpu, with the SHA-256 of its bytes', async () => {
    expect(pool.threads).toBe(2);
    const expected = await mergeOnCpu(source, 'F32', read);
    const got = await pool.merge(source, 'F32', read, readInto);
    expect(Buffer.compare(got.bytes, expected.bytes)).toBe(0);
    expect(got.digest).toBe(createHash('sha256').update(expected.bytes).digest('hex'));
    expect(got.bytes.buffer).toBeInstanceOf(SharedArrayBuffer);
    got.release!();
  });

  it('several adapters\' deltas on one weight: the workers\' row ranges round W once, bit-identical to mergeOnCpu', async () => {
    const expected = await mergeOnCpu(twoAdapters, 'F32', read);
    expect(Buffer.compare(expected.bytes, (await mergeOnCpu(source, 'F32', read)).bytes)).not.toBe(0);
    const got = await pool.merge(twoAdapters, 'F32', read, readInto);
    expect(Buffer.compare(got.bytes, expected.bytes)).toBe(0);
    got.release?.();
  });

  it('DoRA: the rows merged by the workers, then the per-feature scaling, bit-identical to mergeOnCpu', async () => {
    for (const [featureAxis, n] of [['row', rows], ['column', cols]] as const) {
      const dora = [{ adapter: source.deltas[0]!.adapter, magnitude: put(`m-${featureAxis}`, Float32Array.from(values(n, 4), (v) => 1 + v / 2), [n]), featureAxis }];
      const withDora = { ...source, dora };
      for (const dtype of ['F32', 'BF16'] as const) {
        const expected = await mergeOnCpu(withDora, dtype, read);
        const plain = await mergeOnCpu(source, dtype, read);
        expect(Buffer.compare(expected.bytes, plain.bytes)).not.toBe(0);
        const got = await pool.merge(withDora, dtype, read, readInto);
        expect(Buffer.compare(got.bytes, expected.bytes), `${featureAxis} ${dtype}`).toBe(0);
        if (got.digest) expect(got.digest).toBe(createHash('sha256').update(expected.bytes).digest('hex'));
        got.release?.();
      }
    }
  });

  it('never hands out a buffer that is still held, and reuses it once released', async () => {
    const first = await pool.merge(source, 'F32', read, readInto);
    const second = await pool.merge(source, 'F32', read, readInto);
    expect(second.bytes.buffer).not.toBe(first.bytes.buffer);
    expect(Buffer.compare(first.bytes, second.bytes)).toBe(0);
    second.release!();
    const third = await pool.merge(source, 'F32', read, readInto);
    expect(third.bytes.buffer).toBe(second.bytes.buffer);
    expect(Buffer.compare(first.bytes, third.bytes)).toBe(0);
    first.release!();
    third.release!();
  });

  it('encodes other output dtypes on the calling thread (no digest, nothing to release)', async () => {
    const expected = await mergeOnCpu(source, 'BF16', read);
    const got = await pool.merge(source, 'BF16', read, readInto);
    expect(Buffer.compare(got.bytes, expected.bytes)).toBe(0);
    expect(got.digest).toBeUndefined();
    expect(got.release).toBeUndefined();
  });
});
