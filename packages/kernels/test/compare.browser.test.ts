/**
 * Compare kernel in real headless Chromium (WebGPU; SwiftShader on machines without a GPU) against
 * the CPU reference (compareRef, f64 sums). One Chromium for the whole file; no WebGPU adapter fails
 * every test here (beforeAll throws), never a skip.
 *
 * Tolerances, GPU vs reference:
 * - counts (violations, NaN/Inf, finite pairs), the worst indices and max |a-b|: exactly equal (the
 *   per-element f32 arithmetic is the same correctly rounded f32 arithmetic on both sides; the data
 *   keep every |a-b| far from the atol + rtol·|b| boundary, where an fma could flip one element);
 * - max relative difference: 1e-6 relative (WGSL's f32 division is accurate to 2.5 ULP, ~1.5e-7);
 * - sums: |gpu - ref| <= γ·Σ|term| with γ = sumRoundings·2⁻²⁴ of the work shape (each term meets at
 *   most that many f32 roundings on the GPU: the product, its block, the invocation's running sum,
 *   the workgroup's tree; 21 for the GPU shape, ≈ 1.25e-6; 65 for the software shape, ≈ 3.9e-6; the
 *   reference is exact to f64 rounding). For Σd², Σa², Σb² that is γ relative; for Σa·b it is
 *   relative to Σ|a·b|;
 * - cosine: 3γ absolute (dot's error is at most γ·|a||b| by Cauchy-Schwarz, the norms' γ relative);
 *   RMSE: γ/2 relative (a square root halves the relative error of Σd²).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundlePage, startBrowserRunner, type BrowserRunner } from '@lorafuse/runner';
import { isSoftwareAdapter, type CompareElementType, type CompareStats } from '../src/index.js';
import { COMPARE_GPU_SHAPE, COMPARE_SOFTWARE_SHAPE, type CompareLimits, type CompareWorkShape } from '../src/internal.js';
import { compareRef } from '../src/reference.js';
import type { CompareFromUrlsArgs } from './compare.page.js';
import { SeededRandom } from '../src/testing/index.js';

let runner: BrowserRunner;
let workDir: string;
let caseId = 0;

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'lorafuse-compare-test-'));
  const bundle = await bundlePage(fileURLToPath(new URL('./compare.page.ts', import.meta.url)), join(workDir, 'page.js'));
  runner = await startBrowserRunner({ pageBundlePath: bundle, timeoutMs: 240_000 });
});

afterAll(async () => {
  await runner?.close();
  if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
});

interface Side {
  type: CompareElementType;
  bytes: Uint8Array;
}

interface Tol {
  atol: number;
  rtol: number;
  equalNan: boolean;
}

const DEFAULT_TOL: Tol = { atol: 1e-6, rtol: 1e-5, equalNan: false };

function fromWire(text: string): CompareStats {
  return JSON.parse(text, (_key, v: unknown) => (v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : v === 'NaN' ? NaN : v)) as CompareStats;
}

async function compareOnGpu(count: number, a: Side, b: Side, tol: Tol = DEFAULT_TOL, limits?: CompareLimits, urls?: { aUrl: string; bUrl: string }, resident = false): Promise<CompareStats> {
  const id = `c${caseId++}`;
  const served = urls ?? { aUrl: runner.server.offerBytes(`${id}-a`, a.bytes), bUrl: runner.server.offerBytes(`${id}-b`, b.bytes) };
  const args: CompareFromUrlsArgs = { count, ...served, aType: a.type, bType: b.type, ...tol, ...(limits === undefined ? {} : { limits }), resident, workShape: shape };
  try {
    return fromWire(await runner.call<string>('compareFromUrls', args));
  } finally {
    runner.server.withdraw(`${id}-a`);
    runner.server.withdraw(`${id}-b`);
  }
}

/** Σ|a_i·b_i|, Σa², ... over finite pairs, for the sum bounds (f64). */
function absTermSums(count: number, a: Float64Array, b: Float64Array): { absDot: number } {
  let absDot = 0;
  for (let i = 0; i < count; i++) if (Number.isFinite(a[i]!) && Number.isFinite(b[i]!)) absDot += Math.abs(a[i]! * b[i]!);
  return { absDot };
}

/**
 * The work shape the suites below run with (each suite runs under both shapes: SwiftShader machines
 * would otherwise never run the GPU one), and its bound on the f32 roundings a summed term meets.
 */
let shape: CompareWorkShape = COMPARE_GPU_SHAPE;
const gamma = () => shape.sumRoundings * 2 ** -24;

/** -0 and 0 are the same value here (JSON carries no -0). */
const plain = (x: number | undefined) => (x === 0 ? 0 : x);

function expectSameStats(gpu: CompareStats, ref: CompareStats, values?: { a: Float64Array; b: Float64Array }): void {
  expect({
    count: gpu.count, violations: gpu.violations, finitePairs: gpu.finitePairs, nanA: gpu.nanA, nanB: gpu.nanB, infA: gpu.infA, infB: gpu.infB, maxAbsDiff: gpu.maxAbsDiff,
  }).toEqual({
    count: ref.count, violations: ref.violations, finitePairs: ref.finitePairs, nanA: ref.nanA, nanB: ref.nanB, infA: ref.infA, infB: ref.infB, maxAbsDiff: ref.maxAbsDiff,
  });
  expect(gpu.worst.map((w) => [w.index, w.absDiff])).toEqual(ref.worst.map((w) => [w.index, w.absDiff]));
  expect(gpu.worst.map((w) => [plain(w.a), plain(w.b)])).toEqual(ref.worst.map((w) => [plain(w.a), plain(w.b)]));
  if (ref.maxRelDiff === Infinity || ref.maxRelDiff === 0) expect(gpu.maxRelDiff).toBe(ref.maxRelDiff);
  else expect(Math.abs(gpu.maxRelDiff - ref.maxRelDiff)).toBeLessThanOrEqual(1e-6 * ref.maxRelDiff);
  for (const key of ['sumSquaredDiff', 'sumSquaresA', 'sumSquaresB'] as const) {
    expect(Math.abs(gpu[key] - ref[key]), key).toBeLessThanOrEqual(gamma() * ref[key]);
  }
  if (values !== undefined) {
    const { absDot } = absTermSums(ref.count, values.a, values.b);
    expect(Math.abs(gpu.dot - ref.dot), 'dot').toBeLessThanOrEqual(gamma() * absDot);
  }
  if (ref.cosine === null) expect(gpu.cosine).toBeNull();
  else expect(Math.abs(gpu.cosine! - ref.cosine)).toBeLessThanOrEqual(3 * gamma());
  if (ref.rmse === null) expect(gpu.rmse).toBeNull();
  else expect(Math.abs(gpu.rmse! - ref.rmse)).toBeLessThanOrEqual((gamma() / 2) * 1.01 * ref.rmse);
}

// ---- test data -------------------------------------------------------------------------------

function f32Side(values: Float32Array): Side {
  return { type: 'f32', bytes: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

function u16Side(type: 'f16' | 'bf16', bits: Uint16Array): Side {
  return { type, bytes: new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength) };
}

/** Independent f16 decoding for building expectations. */
function f16Value(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return m === 0 ? s * Infinity : NaN;
  if (e === 0) return s * m * 2 ** -24;
  return s * 2 ** (e - 15) * (1 + m / 1024);
}

function bf16Value(h: number): number {
  const f = new Float32Array(new Uint32Array([h << 16]).buffer);
  return f[0]!;
}

function valuesOf(side: Side, count: number): Float64Array {
  const out = new Float64Array(count);
  if (side.type === 'f32') {
    const f = new Float32Array(side.bytes.slice().buffer);
    for (let i = 0; i < count; i++) out[i] = f[i]!;
  } else {
    const h = new Uint16Array(side.bytes.slice().buffer);
    for (let i = 0; i < count; i++) out[i] = side.type === 'f16' ? f16Value(h[i]!) : bf16Value(h[i]!);
  }
  return out;
}

/**
 * a ~ U(±amp); b = a except: every `every`-th element (from `offset`) changed by ±1e-3·(1 + i mod 7),
 * and a few elements changed by 1e-9 (within tolerance). No element lies near the tolerance boundary.
 */
function f32Pair(count: number, seed: number, every = 97, amp = 0.5): { a: Float32Array; b: Float32Array } {
  const rng = new SeededRandom(seed);
  const a = new Float32Array(count);
  for (let i = 0; i < count; i++) a[i] = rng.uniform(amp);
  const b = a.slice();
  for (let i = 0; i < count; i++) {
    if (i % every === every - 1) b[i] = a[i]! + (i % 2 ? 1 : -1) * 1e-3 * (1 + (i % 7));
    else if (i % 13 === 5) b[i] = a[i]! + 1e-9;
  }
  return { a, b };
}

async function checkPair(count: number, a: Side, b: Side, tol: Tol = DEFAULT_TOL, limits?: CompareLimits, resident = false): Promise<{ gpu: CompareStats; ref: CompareStats }> {
  const gpu = await compareOnGpu(count, a, b, tol, limits, undefined, resident);
  const ref = compareRef({ count, a, b, ...tol });
  expectSameStats(gpu, ref, { a: valuesOf(a, count), b: valuesOf(b, count) });
  return { gpu, ref };
}

// ---- tests -----------------------------------------------------------------------------------

describe.each([
  ['GPU work shape (64 invocations x 64 elements)', COMPARE_GPU_SHAPE],
  ['software work shape (4 invocations x 1024 elements)', COMPARE_SOFTWARE_SHAPE],
] as const)('%s', (_name, suiteShape) => {
  beforeAll(() => {
    shape = suiteShape;
  });

  describe('compare kernel vs reference, f32', () => {
    it.each([1, 2, 7, 255, 256, 257, 1023, 1024, 1025, 2047, 2049, 3000, 100_003])('%i elements', async (count) => {
      const { a, b } = f32Pair(count, count * 31 + 1, count < 100 ? 2 : 97);
      const { ref } = await checkPair(count, f32Side(a), f32Side(b));
      if (count >= 2) expect(ref.violations).toBeGreaterThan(0);
    });

    it('identical tensors: no violations, empty worst list, cosine 1', async () => {
      const { a } = f32Pair(5000, 9);
      const { gpu } = await checkPair(5000, f32Side(a), f32Side(a.slice()));
      expect(gpu).toMatchObject({ violations: 0, maxAbsDiff: 0, maxRelDiff: 0, worst: [], cosine: 1, rmse: 0 });
    });

    it('empty tensors: nothing dispatched, zero statistics', async () => {
      const { gpu } = await checkPair(0, f32Side(new Float32Array(0)), f32Side(new Float32Array(0)));
      expect(gpu).toMatchObject({ count: 0, violations: 0, maxAbsDiff: 0, finitePairs: 0, cosine: null, rmse: null, worst: [] });
    });

    it('worst list: ties keep the lower index, across workgroups and chunks', async () => {
      const count = 20_000;
      const a = new Float32Array(count);
      const b = new Float32Array(count);
      // Twelve equal differences spread over workgroups, one larger one at the end.
      for (const i of [19_000, 5, 1500, 3000, 4096, 8191, 10_000, 12_345, 15_000, 16_000, 17_000, 18_000]) b[i] = 0.25;
      b[19_999] = 0.5;
      for (const resident of [false, true]) {
        const { gpu } = await checkPair(count, f32Side(a), f32Side(b), DEFAULT_TOL, { maxStorageBufferBindingSize: 16_384 }, resident);
        expect(gpu.worst.map((w) => w.index)).toEqual([19_999, 5, 1500, 3000, 4096, 8191, 10_000, 12_345]);
      }
    });

    it('worst list when one workgroup holds all of the worst elements, and copied back from GPU buffers', async () => {
      const count = 50_000;
      const { a, b } = f32Pair(count, 21, 1000);
      for (let i = 30_000; i < 30_020; i++) b[i] = a[i]! + 0.5 + (i % 3) * 0.125;
      for (const resident of [false, true]) {
        const { gpu } = await checkPair(count, f32Side(a), f32Side(b), DEFAULT_TOL, undefined, resident);
        expect(gpu.worst.every((w) => w.index >= 30_000 && w.index < 30_020)).toBe(true);
      }
    });

    it('NaN and Inf: torch.isclose rules, with and without equal_nan', async () => {
      const specials = [NaN, Infinity, -Infinity, 0, -0, 1, -2.5, 1e-7];
      const pairs: Array<[number, number]> = [];
      for (const x of specials) for (const y of specials) pairs.push([x, y]);
      // Repeat so that the pairs land in several workgroups, at odd positions.
      const count = pairs.length * 37 + 11;
      const a = new Float32Array(count);
      const b = new Float32Array(count);
      for (let i = 0; i < count; i++) {
        const [x, y] = pairs[(i * 7) % pairs.length]!;
        a[i] = x;
        b[i] = y;
      }
      for (const equalNan of [false, true]) {
        const { gpu, ref } = await checkPair(count, f32Side(a), f32Side(b), { ...DEFAULT_TOL, equalNan });
        expect(gpu.maxAbsDiff).toBe(Infinity);
        expect(ref.nanA).toBeGreaterThan(0);
        expect(ref.infB).toBeGreaterThan(0);
      }
    });

    it('|a - b| overflowing f32 is a violation scored Inf (counts and maxima only: f32 squares overflow too)', async () => {
      const a = Float32Array.from([3e38, -3e38, 3e38, 1, 2]);
      const b = Float32Array.from([-3e38, 3e38, 3e38, 1, 2]);
      const gpu = await compareOnGpu(5, f32Side(a), f32Side(b));
      const ref = compareRef({ count: 5, a: f32Side(a), b: f32Side(b), ...DEFAULT_TOL });
      expect(ref).toMatchObject({ violations: 2, maxAbsDiff: Infinity, maxRelDiff: Infinity, finitePairs: 5 });
      expect({ v: gpu.violations, m: gpu.maxAbsDiff, r: gpu.maxRelDiff, f: gpu.finitePairs, w: gpu.worst.map((w) => w.index) })
        .toEqual({ v: ref.violations, m: ref.maxAbsDiff, r: ref.maxRelDiff, f: ref.finitePairs, w: ref.worst.map((w) => w.index) });
    });
  });

  describe('compare kernel vs reference, f16 / bf16 / mixed', () => {
    function randomHalfBits(count: number, seed: number, type: 'f16' | 'bf16'): Uint16Array {
      const rng = new SeededRandom(seed);
      const out = new Uint16Array(count);
      for (let i = 0; i < count; i++) {
        const sign = rng.next() < 0.5 ? 0x8000 : 0;
        // f16: every finite exponent incl. subnormals; bf16: magnitudes 2^-27 .. 2^23.
        const exp = type === 'f16' ? Math.floor(rng.next() * 31) : 100 + Math.floor(rng.next() * 50);
        const mant = Math.floor(rng.next() * (type === 'f16' ? 1024 : 128));
        out[i] = type === 'f16' ? sign | (exp << 10) | mant : sign | (exp << 7) | mant;
      }
      return out;
    }

    function perturbBits(bits: Uint16Array, every: number): Uint16Array {
      const out = bits.slice();
      for (let i = every - 1; i < out.length; i += every) out[i] = out[i]! ^ 0x0004;
      return out;
    }

    it.each([
      ['f16', 1], ['f16', 2], ['f16', 3], ['f16', 1025], ['f16', 4097], ['f16', 50_001],
      ['bf16', 1], ['bf16', 3], ['bf16', 2049], ['bf16', 50_001],
    ] as const)('%s, %i elements (odd counts pad the last word)', async (type, count) => {
      const a = randomHalfBits(count, count + 17, type);
      await checkPair(count, u16Side(type, a), u16Side(type, perturbBits(a, 3)), { atol: 1e-6, rtol: 1e-3, equalNan: false });
    });

    it('f16 specials: ±Inf, NaN, subnormals, ±0', async () => {
      const specials = [0x7c00, 0xfc00, 0x7e00, 0x7c01, 0x0001, 0x8001, 0x03ff, 0x0000, 0x8000, 0x3c00, 0x7bff];
      const count = specials.length ** 2;
      const a = new Uint16Array(count);
      const b = new Uint16Array(count);
      specials.forEach((x, i) => specials.forEach((y, j) => {
        a[i * specials.length + j] = x;
        b[i * specials.length + j] = y;
      }));
      await checkPair(count, u16Side('f16', a), u16Side('f16', b), { ...DEFAULT_TOL, equalNan: true });
    });

    it('mixed: f32 vs f16, f16 vs bf16, bf16 vs f32 compared in f32', async () => {
      const count = 3001;
      const h = randomHalfBits(count, 5, 'f16');
      const asF32 = Float32Array.from(valuesOf(u16Side('f16', h), count));
      asF32[100] = asF32[100]! + 1; // one real difference
      const r1 = await checkPair(count, u16Side('f16', h), f32Side(asF32));
      expect(r1.ref.violations).toBe(1);
      expect(r1.ref.worst[0]!.index).toBe(100);
      const bf = randomHalfBits(count, 6, 'bf16');
      await checkPair(count, u16Side('f16', h), u16Side('bf16', bf), { atol: 1e-3, rtol: 0.1, equalNan: false });
      await checkPair(count, u16Side('bf16', bf), f32Side(Float32Array.from(valuesOf(u16Side('bf16', bf), count))));
    });
  });

  describe('compare kernel: chunks and folded dispatches', () => {
    it('forced chunking: 16 KiB bindings (4096 elements per chunk), 10 007 f32 elements', async () => {
      const { a, b } = f32Pair(10_007, 3, 53);
      await checkPair(10_007, f32Side(a), f32Side(b), DEFAULT_TOL, { maxStorageBufferBindingSize: 16_384 });
      await checkPair(10_007, f32Side(a), f32Side(b), DEFAULT_TOL, { maxStorageBufferBindingSize: 16_384 }, true);
    });

    it('forced chunking of f16 against f32 (different byte offsets per side)', async () => {
      const count = 9999;
      const h = new Uint16Array(count).map((_, i) => 0x3c00 + (i % 512));
      const f = Float32Array.from(valuesOf(u16Side('f16', h), count)).map((x, i) => (i % 101 === 0 ? x + 0.01 : x));
      await checkPair(count, u16Side('f16', h), f32Side(f), DEFAULT_TOL, { maxStorageBufferBindingSize: 16_384 });
    });

    it('forced 2-D folding: 3 workgroups per dimension', async () => {
      const { a, b } = f32Pair(30_000, 4, 61);
      await checkPair(30_000, f32Side(a), f32Side(b), DEFAULT_TOL, { maxComputeWorkgroupsPerDimension: 3 });
    });

    it('chunking and folding together', async () => {
      const { a, b } = f32Pair(70_001, 5, 41);
      await checkPair(70_001, f32Side(a), f32Side(b), DEFAULT_TOL, { maxStorageBufferBindingSize: 32_768, maxComputeWorkgroupsPerDimension: 2 });
    });

    it('a binding limit below one chunk is an error naming maxStorageBufferBindingSize', async () => {
      const { a, b } = f32Pair(5000, 6);
      await expect(compareOnGpu(5000, f32Side(a), f32Side(b), DEFAULT_TOL, { maxStorageBufferBindingSize: 8192 })).rejects.toThrow(/maxStorageBufferBindingSize/);
    });
  });
});

describe('compare kernel: GPT-2 sized tensor, with the shape the kernel picks for this device', () => {
  beforeAll(async () => {
    shape = await runner.call<CompareWorkShape>('deviceWorkShape');
  });

  it('picks the software work shape exactly on a software adapter', () => {
    expect(shape).toEqual(isSoftwareAdapter(runner.adapterInfo) ? COMPARE_SOFTWARE_SHAPE : COMPARE_GPU_SHAPE);
  });

  it('768 x 2304 f32 (c_attn) served from file ranges; throughput vs the CPU reference (informational)', async () => {
    const count = 768 * 2304;
    const { a, b } = f32Pair(count, 11, 997, 0.1);
    const prefix = 8 + 77;
    const file = new Uint8Array(prefix + 2 * count * 4);
    file.set(f32Side(a).bytes, prefix);
    file.set(f32Side(b).bytes, prefix + count * 4);
    const path = join(workDir, 'c_attn.bin');
    await writeFile(path, file);
    const aUrl = runner.server.offerFileRange('big-a', { path, offset: prefix, length: count * 4 });
    const bUrl = runner.server.offerFileRange('big-b', { path, offset: prefix + count * 4, length: count * 4 });
    const t0 = performance.now();
    const gpu = await compareOnGpu(count, f32Side(a), f32Side(b), DEFAULT_TOL, undefined, { aUrl, bUrl });
    const gpuMs = performance.now() - t0;
    const t1 = performance.now();
    const ref = compareRef({ count, a: f32Side(a), b: f32Side(b), ...DEFAULT_TOL });
    const refMs = performance.now() - t1;
    expectSameStats(gpu, ref, { a: Float64Array.from(a), b: Float64Array.from(b) });
    expect(ref.violations).toBe(Math.floor(count / 997));

    const timing = await runner.call<{ kernelMs: number; minKernelMs: number; roundTripMs: number }>('timeCompare', { count, iterations: 5 });
    const gb = (count * 8) / 1e9;
    console.log(
      `compare 768x2304 f32 on ${runner.adapterInfo.vendor}/${runner.adapterInfo.architecture}: ` +
        `kernel + record readback + worst rescan, median ${timing.kernelMs.toFixed(1)} ms (min ${timing.minKernelMs.toFixed(1)}, ${((gb * 1000) / timing.kernelMs).toFixed(2)} GB/s of a+b), ` +
        `upload+compare+readback ${timing.roundTripMs.toFixed(1)} ms, served from file ranges end to end ${gpuMs.toFixed(1)} ms; ` +
        `CPU reference (Node) ${refMs.toFixed(1)} ms (${((gb * 1000) / refMs).toFixed(2)} GB/s)`,
    );
  });
});
