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

describe('the proof\'s file checks on the CPU pool (worker threads, built)', () => {
  type ChecksModule = typeof import('../src/proof/file-checks.js');
  type SourceModule = typeof import('../src/fs/file-source.js');
  const dist = (p: string) => fileURLToPath(new URL(`../dist/${p}`, import.meta.url));
  let pool: ReturnType<PoolModule['startCpuMergePool']>;
  let checks: ReturnType<ChecksModule['fileChecks']>;
  let here: ChecksModule['checksHere'];
  let openFileSource: SourceModule['openFileSource'];
  let dir: string;
  let calls = 0;
  type FdRangeArg = Parameters<ReturnType<PoolModule['startCpuMergePool']>['digestFile']>[0];
  // Two files alike but for one byte near the end of a range spread over several workers' slices.
  const size = 40 * 2 ** 20 + 12_345;
  const bytes = Buffer.from(values(Math.ceil(size / 4), 11).buffer).subarray(0, size);
  const differsAt = 37 * 2 ** 20 + 99;

  beforeAll(async () => {
    const { mkdtemp, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    pool = ((await import(built)) as PoolModule).startCpuMergePool(2);
    const mod = (await import(dist('proof/file-checks.js'))) as ChecksModule;
    // Counted, so the test knows the workers did the reading (a fallback here would pass the rest).
    const counted = { threads: pool.threads, merge: pool.merge, close: pool.close, filesEqual: (x: FdRangeArg, y: FdRangeArg) => (calls++, pool.filesEqual(x, y)), digestFile: (r: FdRangeArg) => (calls++, pool.digestFile(r)) };
    checks = mod.fileChecks(counted);
    here = mod.checksHere;
    openFileSource = ((await import(dist('fs/file-source.js'))) as SourceModule).openFileSource;
    dir = await mkdtemp(join(tmpdir(), 'lorafuse-checks-'));
    const other = Buffer.from(bytes);
    other[differsAt] = other[differsAt]! ^ 1;
    await writeFile(join(dir, 'a'), bytes);
    await writeFile(join(dir, 'b'), other);
  });
  afterAll(async () => {
    await pool?.close();
    const { rm } = await import('node:fs/promises');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('compares and hashes ranges of open files as this thread does: equal, unequal, unaligned, empty', async () => {
    const { join } = await import('node:path');
    const [a, b] = [await openFileSource(join(dir, 'a')), await openFileSource(join(dir, 'b'))];
    try {
      const cases: Array<[number, number, number]> = [[0, 0, size], [0, 0, differsAt], [0, 0, differsAt + 1], [5, 5, 3 * 2 ** 20 + 7], [differsAt + 1, differsAt + 1, size - differsAt - 1], [100, 100, 0], [1, 2, 17 * 2 ** 20]];
      for (const [offA, offB, length] of cases) {
        const want = await here.rangesEqual(a, offA, b, offB, length);
        expect(await checks.rangesEqual(a, offA, b, offB, length), `${offA} ${offB} ${length}`).toBe(want);
      }
      expect(await checks.rangesEqual(a, 0, b, 0, differsAt + 1)).toBe(false);
      expect(await checks.rangesEqual(a, 0, b, 0, differsAt)).toBe(true);
      for (const [offset, length] of [[0, size], [3, 0], [12, 9 * 2 ** 20 + 1]] as const) {
        expect(await checks.digestRange(a, offset, length)).toBe(createHash('sha256').update(bytes.subarray(offset, offset + length)).digest('hex'));
      }
      expect(calls).toBe(cases.length + 2 + 3);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('a range outside a file is refused before any worker reads; a closed file is an error naming it', async () => {
    const { join } = await import('node:path');
    const a = await openFileSource(join(dir, 'a'));
    const b = await openFileSource(join(dir, 'b'));
    await expect(checks.rangesEqual(a, size - 10, b, size - 10, 11)).rejects.toThrow(/outside the/);
    await expect(checks.digestRange(a, 0, size + 1)).rejects.toThrow(/outside the/);
    await b.close();
    // Closed: no descriptor to lend, so it runs here and fails as a read of that file does.
    await expect(checks.rangesEqual(a, 0, b, 0, 10)).rejects.toThrow();
    await a.close();
  });
});
