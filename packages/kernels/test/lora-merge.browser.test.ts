/**
 * LoRA merge kernel in real headless Chromium (WebGPU; SwiftShader on machines without a GPU)
 * against the f64 CPU reference. One Chromium for the whole file. No WebGPU adapter is a failure of
 * every test here (beforeAll throws), never a skip.
 *
 * Tolerance: |gpu - ref| <= 1e-6 + 1e-5·|ref| per element, the bound lorafuse holds every f32 merge to
 * against a float64 reference. The GPU sums over k in f32; with LoRA-like magnitudes the error is far
 * below that.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundlePage, startBrowserRunner, type BrowserRunner } from '@lorafuse/runner';
import { loraMergeSizes, type LoraMergeLimits, type LoraMergeOrientation } from '../src/internal.js';
import { loraMergeRef } from '../src/reference.js';
import type { DeltaFromUrlsArgs, MergeFromUrlsArgs } from './lora-merge.page.js';
import { seededUniform } from '../src/testing/index.js';

const ATOL = 1e-6;
const RTOL = 1e-5;

let runner: BrowserRunner;
let workDir: string;
let caseId = 0;

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'lorafuse-kernels-test-'));
  const bundle = await bundlePage(fileURLToPath(new URL('./lora-merge.page.ts', import.meta.url)), join(workDir, 'page.js'));
  runner = await startBrowserRunner({ pageBundlePath: bundle, timeoutMs: 240_000 });
});

afterAll(async () => {
  await runner?.close();
  if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
});

interface Case {
  rows: number;
  cols: number;
  rank: number;
  orientation: LoraMergeOrientation;
  scale?: number;
  seed?: number;
  limits?: LoraMergeLimits;
}

interface Inputs {
  w: Float32Array;
  a: Float32Array;
  b: Float32Array;
  scale: number;
}

/** LoRA-like magnitudes: W ~ U(±0.1), A ~ U(±1/sqrt(in)) (kaiming-like), B ~ U(±0.05). */
function makeInputs(c: Case): Inputs {
  const sizes = loraMergeSizes(c);
  const seed = c.seed ?? c.rows * 7919 + c.cols * 104729 + c.rank * 1299709;
  return {
    w: seededUniform(seed, sizes.w, 0.1),
    a: seededUniform(seed + 1, sizes.a, 1 / Math.sqrt(Math.max(1, sizes.inFeatures))),
    b: seededUniform(seed + 2, sizes.b, 0.05),
    scale: c.scale ?? 16 / c.rank,
  };
}

function bytesOf(x: Float32Array): Uint8Array {
  return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
}

/** Runs the merge in the page on bytes served by the runner server; the result comes back by POST. */
async function mergeOnGpu(c: Case, inputs: Inputs, urls?: { wUrl: string; aUrl: string; bUrl: string }): Promise<Float32Array> {
  const id = `case${caseId++}`;
  const server = runner.server;
  const served = urls ?? {
    wUrl: server.offerBytes(`${id}-w`, bytesOf(inputs.w)),
    aUrl: server.offerBytes(`${id}-a`, bytesOf(inputs.a)),
    bUrl: server.offerBytes(`${id}-b`, bytesOf(inputs.b)),
  };
  const upload = server.expectUpload(`${id}-out`, inputs.w.byteLength);
  const args: MergeFromUrlsArgs = {
    rows: c.rows, cols: c.cols, rank: c.rank, orientation: c.orientation, scale: inputs.scale,
    ...served,
    outUrl: server.uploadUrl(`${id}-out`),
    ...(c.limits === undefined ? {} : { limits: c.limits }),
  };
  try {
    await runner.call('mergeFromUrls', args);
    const bytes = await upload;
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  } finally {
    server.cancelUpload(`${id}-out`);
    for (const part of ['w', 'a', 'b']) server.withdraw(`${id}-${part}`);
  }
}

/** Asserts |actual - expected| <= ATOL + RTOL·|expected| everywhere, reporting the worst element. */
function expectClose(actual: Float32Array, expected: Float32Array, cols: number): void {
  expect(actual.length).toBe(expected.length);
  let bad = 0;
  let worst = -1;
  let worstExcess = -Infinity;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i]!;
    const excess = Math.abs(actual[i]! - e) - (ATOL + RTOL * Math.abs(e));
    if (!(excess <= 0)) bad++;
    if (!(excess <= worstExcess)) {
      worstExcess = excess;
      worst = i;
    }
  }
  if (bad > 0) {
    const at = `[${Math.floor(worst / cols)}, ${worst % cols}]`;
    expect.fail(`${bad} of ${expected.length} values outside atol ${ATOL} + rtol ${RTOL}; worst at ${at}: got ${actual[worst]}, want ${expected[worst]}`);
  }
}

async function checkCase(c: Case): Promise<void> {
  const inputs = makeInputs(c);
  const gpu = await mergeOnGpu(c, inputs);
  const ref = loraMergeRef({ ...c, ...inputs });
  expectClose(gpu, ref, c.cols);
  // The merge must have changed W (guards against a kernel that does nothing).
  if (ref.length > 0) expect(ref.some((v, i) => v !== inputs.w[i])).toBe(true);
}

const orientations: LoraMergeOrientation[] = ['linear', 'transposed'];

describe.each(orientations)('lora-merge %s vs f64 reference', (orientation) => {
  it.each([
    { rows: 37, cols: 53, rank: 1 },
    { rows: 37, cols: 53, rank: 8 },
    { rows: 130, cols: 200, rank: 64 },
    { rows: 70, cols: 90, rank: 256 },
    { rows: 1, cols: 1000, rank: 4 },
    { rows: 1000, cols: 1, rank: 4 },
    { rows: 1, cols: 1, rank: 2 },
    { rows: 64, cols: 64, rank: 3 },
    { rows: 65, cols: 129, rank: 5 },
  ])('$rows x $cols, r=$rank', async (shape) => {
    await checkCase({ ...shape, orientation });
  });

  it.each([
    { rows: 0, cols: 17, rank: 4 },
    { rows: 17, cols: 0, rank: 4 },
  ])('empty $rows x $cols: nothing dispatched, empty result', async (shape) => {
    const c = { ...shape, orientation };
    const inputs = makeInputs(c);
    const gpu = await mergeOnGpu(c, inputs);
    expect(gpu.length).toBe(0);
  });

  it('GPT-2 768 x 2304 (c_attn), r=8, bytes served from file ranges', async () => {
    const c: Case = { rows: 768, cols: 2304, rank: 8, orientation };
    const inputs = makeInputs(c);
    // Lay the tensors out like a safetensors data section (odd-sized prefix) and serve byte ranges.
    const prefix = 8 + 123;
    const parts = [inputs.w, inputs.a, inputs.b].map(bytesOf);
    const file = new Uint8Array(prefix + parts.reduce((n, p) => n + p.byteLength, 0));
    const urls: string[] = [];
    let offset = prefix;
    const path = join(workDir, `c_attn-${orientation}.bin`);
    parts.forEach((p, i) => {
      file.set(p, offset);
      urls.push(runner.server.offerFileRange(`c_attn-${orientation}-${i}`, { path, offset, length: p.byteLength }));
      offset += p.byteLength;
    });
    await writeFile(path, file);
    const gpu = await mergeOnGpu(c, inputs, { wUrl: urls[0]!, aUrl: urls[1]!, bUrl: urls[2]! });
    expectClose(gpu, loraMergeRef({ ...c, ...inputs }), c.cols);
  });

  it('GPT-2 3072 x 768 (mlp.c_proj), r=16', async () => {
    await checkCase({ rows: 3072, cols: 768, rank: 16, orientation });
  });

  it('forced chunking: W bound in row chunks at unaligned row starts (binding limit 4096 B)', async () => {
    await checkCase({ rows: 37, cols: 53, rank: 4, orientation, limits: { maxStorageBufferBindingSize: 4096 } });
  });

  it('forced chunking: many chunks (binding limit 8192 B, 300 x 64)', async () => {
    await checkCase({ rows: 300, cols: 64, rank: 4, orientation, limits: { maxStorageBufferBindingSize: 8192 } });
  });

  it('forced 2-D folding: 20 tiles with at most 8 workgroups per dimension', async () => {
    await checkCase({ rows: 200, cols: 300, rank: 6, orientation, limits: { maxComputeWorkgroupsPerDimension: 8 } });
  });

  it('chunking and folding together', async () => {
    await checkCase({ rows: 300, cols: 200, rank: 2, orientation, limits: { maxStorageBufferBindingSize: 64 * 1024, maxComputeWorkgroupsPerDimension: 3 } });
  });

  it('a row larger than the binding limit is an error naming maxStorageBufferBindingSize', async () => {
    const c: Case = { rows: 3, cols: 2000, rank: 1, orientation, limits: { maxStorageBufferBindingSize: 4096 } };
    await expect(mergeOnGpu(c, makeInputs(c))).rejects.toThrow(/maxStorageBufferBindingSize/);
  });
});

describe('lora-merge throughput (informational)', () => {
  it('768 x 2304, r=8 and r=64, transposed (Conv1D c_attn)', async () => {
    for (const rank of [8, 64]) {
      const result = await runner.call<{ kernelMs: number; minKernelMs: number; roundTripMs: number }>('timeMerge', {
        rows: 768, cols: 2304, rank, orientation: 'transposed', iterations: 7,
      });
      const elements = 768 * 2304;
      const gbPerS = (elements * 8) / (result.kernelMs * 1e6); // W read + write
      const gflops = (2 * rank * elements) / (result.kernelMs * 1e6);
      console.log(
        `lora-merge 768x2304 r=${rank} on ${runner.adapterInfo.vendor}/${runner.adapterInfo.architecture}: ` +
          `kernel median ${result.kernelMs.toFixed(2)} ms, min ${result.minKernelMs.toFixed(2)} ms (${gbPerS.toFixed(2)} GB/s of W, ${gflops.toFixed(2)} GFLOP/s at the median), ` +
          `upload+merge+readback ${result.roundTripMs.toFixed(1)} ms`,
      );
      expect(result.kernelMs).toBeGreaterThan(0);
    }
  });
});

describe('withLoraDelta (ΔW on a zero matrix, W kept by the caller)', () => {
  /** ΔW of `terms` on the GPU; the reference applies each term in order to zeros with loraMergeRef. */
  async function checkDelta(rows: number, cols: number, terms: Array<Omit<Case, 'rows' | 'cols'>>, limits?: LoraMergeLimits): Promise<Float32Array> {
    const id = `delta${caseId++}`;
    const server = runner.server;
    const inputs = terms.map((t, i) => makeInputs({ rows, cols, ...t, seed: (t.seed ?? rows * 31 + cols) + 10 * i }));
    const served = inputs.map((inp, i) => ({
      aUrl: server.offerBytes(`${id}-a${i}`, bytesOf(inp.a)),
      bUrl: server.offerBytes(`${id}-b${i}`, bytesOf(inp.b)),
      rank: terms[i]!.rank,
      orientation: terms[i]!.orientation,
      scale: inp.scale,
    }));
    const upload = server.expectUpload(`${id}-out`, rows * cols * 4);
    const args: DeltaFromUrlsArgs = { rows, cols, terms: served, outUrl: server.uploadUrl(`${id}-out`), ...(limits === undefined ? {} : { limits }) };
    try {
      const result = await runner.call<{ deviceMatches: boolean }>('deltaFromUrls', args);
      // What withLoraDelta hands `use` on the device is the ΔW it read back.
      expect(result.deviceMatches).toBe(true);
      const bytes = await upload;
      const gpu = new Float32Array(bytes.slice().buffer);
      let ref: Float32Array = new Float32Array(rows * cols);
      inputs.forEach((inp, i) => {
        ref = loraMergeRef({ rows, cols, rank: terms[i]!.rank, orientation: terms[i]!.orientation, w: ref, a: inp.a, b: inp.b, scale: inp.scale });
      });
      expectClose(gpu, ref, cols);
      return gpu;
    } finally {
      server.cancelUpload(`${id}-out`);
      inputs.forEach((_, i) => {
        server.withdraw(`${id}-a${i}`);
        server.withdraw(`${id}-b${i}`);
      });
    }
  }

  it.each([
    [37, 53, 3, 'linear'],
    [53, 37, 5, 'transposed'],
    [1, 1, 1, 'linear'],
    [768, 2304, 8, 'transposed'],
  ] as const)('%i x %i, rank %i, %s', async (rows, cols, rank, orientation) => {
    const d = await checkDelta(rows, cols, [{ rank, orientation }]);
    expect(d.some((x) => x !== 0)).toBe(true);
  });

  it('sums several terms in order, ranks above 8 in several passes, with forced row chunks', async () => {
    await checkDelta(301, 129, [{ rank: 12, orientation: 'linear' }, { rank: 2, orientation: 'linear', scale: -3 }], { maxStorageBufferBindingSize: 16_384 });
  });

  it('an empty W gives an empty ΔW without touching the GPU', async () => {
    expect(await checkDelta(0, 7, [{ rank: 2, orientation: 'transposed' }])).toHaveLength(0);
  });
});
