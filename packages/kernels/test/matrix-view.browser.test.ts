/**
 * The matrix-view kernels in real headless Chromium (WebGPU; SwiftShader without a GPU) against their
 * CPU twins: the magnitude grid (max |m| and Σ m² per block) and the heatmap render pipeline. No
 * WebGPU adapter fails the file (beforeAll throws), never a skip.
 *
 * Tolerances, GPU vs twin:
 * - grid shape and max |m| (bit patterns, NaN and Inf included): exactly equal — a maximum rounds nothing;
 * - Σ m² per cell: |gpu − ref| ≤ (n + 1)·2⁻²⁴·ref for a block of n elements (each square and each
 *   addition rounds once in f32; every term is ≥ 0, so the error is relative to the sum);
 * - heatmap pixels: which cell a pixel shows is exact (the transforms hold only powers of two and
 *   multiples of 1/8, so f32 and f64 agree); each channel within 1 of the twin's round(255·c)
 *   (f32 interpolation and the unorm conversion's rounding).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundlePage, startBrowserRunner, type BrowserRunner } from '@lorafuse/runner';
import { heatmapRef, magnitudeGridRef } from '../src/reference.js';
import { SeededRandom } from '../src/testing/index.js';
import type { MagnitudeGridLimits, MagnitudeGridShape } from '../src/view.js';
import type { HeatmapArgs, MagnitudeGridArgs } from './matrix-view.page.js';

let runner: BrowserRunner;
let workDir: string;

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'lorafuse-matrix-view-test-'));
  const bundle = await bundlePage(fileURLToPath(new URL('./matrix-view.page.ts', import.meta.url)), join(workDir, 'page.js'));
  runner = await startBrowserRunner({ pageBundlePath: bundle, timeoutMs: 240_000 });
}, 300_000);

afterAll(async () => {
  await runner?.close();
  if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
});

const bitsOf = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

/** A seeded matrix; `special` puts NaN / ±Inf / -0 at chosen elements. */
function matrix(rows: number, cols: number, seed: number, special: Array<[index: number, value: number]> = []): Float32Array {
  const m = new SeededRandom(seed).uniformArray(rows * cols, 2);
  for (const [i, v] of special) m[i] = v;
  return m;
}

interface GridCase {
  name: string;
  rows: number;
  cols: number;
  maxSide: number;
  special?: Array<[number, number]>;
  limits?: MagnitudeGridLimits;
}

const gridCases: GridCase[] = [
  { name: '1x1', rows: 1, cols: 1, maxSide: 4 },
  { name: 'one row 1x70, blocks of 5 columns', rows: 1, cols: 70, maxSide: 16 },
  { name: 'one column 70x1, blocks of 5 rows', rows: 70, cols: 1, maxSide: 16 },
  { name: 'empty 0x5', rows: 0, cols: 5, maxSide: 4 },
  { name: 'empty 5x0', rows: 5, cols: 0, maxSide: 4 },
  { name: '65x67, 2x2 blocks with short last ones (1122 cells, not a multiple of 64)', rows: 65, cols: 67, maxSide: 64 },
  { name: '37x13 in chunks of whole block rows (binding limit 1024 bytes)', rows: 37, cols: 13, maxSide: 5, limits: { maxStorageBufferBindingSize: 1024 } },
  { name: '1000x3, blocks of 143 rows, chunked at 4096 bytes', rows: 1000, cols: 3, maxSide: 7, limits: { maxStorageBufferBindingSize: 4096 } },
  { name: '40x40 one cell per element, dispatch folded (8 workgroups per dimension)', rows: 40, cols: 40, maxSide: 40, limits: { maxComputeWorkgroupsPerDimension: 8 } },
  { name: '9x10 with NaN, +Inf, -Inf and -0', rows: 9, cols: 10, maxSide: 3, special: [[0, NaN], [14, Infinity], [57, -Infinity], [89, -0], [88, -0]] },
];

describe('magnitude grid in Chromium vs magnitudeGridRef', () => {
  it.each(gridCases)('$name', async ({ rows, cols, maxSide, special, limits }) => {
    const m = matrix(rows, cols, rows * 131 + cols, special);
    const args: MagnitudeGridArgs = { rows, cols, maxSide, bits: bitsOf(m), ...(limits === undefined ? {} : { limits }) };
    const gpu = await runner.call<{ shape: MagnitudeGridShape; maxBits: number[]; sumSquares: number[] }>('magnitudeGrid', args);
    const ref = magnitudeGridRef({ m, rows, cols, maxSide });
    expect(gpu.shape).toEqual(ref.shape);
    expect(gpu.shape.gridRows).toBeLessThanOrEqual(maxSide);
    expect(gpu.shape.gridCols).toBeLessThanOrEqual(maxSide);
    expect(gpu.maxBits).toEqual(bitsOf(ref.maxAbs));
    const n = ref.shape.blockRows * ref.shape.blockCols;
    const off: string[] = [];
    ref.sumSquares.forEach((want, i) => {
      if (!Number.isFinite(want)) return; // Σ m² is defined for finite blocks only
      if (Math.abs(gpu.sumSquares[i]! - want) > (n + 1) * 2 ** -24 * want) off.push(`cell ${i}: ${gpu.sumSquares[i]} vs ${want}`);
    });
    expect(off).toEqual([]);
  });

  it('refuses a buffer too small for the shape, maxSide 0 and a block row over the binding limit, naming them', async () => {
    const messages = await runner.call<string[]>('refusals');
    expect(messages[0]).toMatch(/buffer matrix .* has 16 bytes, needs 36/);
    expect(messages[1]).toMatch(/maxSide must be a positive integer/);
    expect(messages[2]).toMatch(/maxStorageBufferBindingSize/);
  });
});

/** Column-major mat3x3f (12 floats): grid = (sx·x + tx, sy·y + ty). */
const affine = (sx: number, sy: number, tx: number, ty: number) => [sx, 0, 0, 0, 0, sy, 0, 0, tx, ty, 1, 0];

interface HeatCase {
  name: string;
  gridRows: number;
  gridCols: number;
  width: number;
  height: number;
  gridFromPixel: number[];
  special?: Array<[number, number]>;
  maxValue?: number;
}

const heatCases: HeatCase[] = [
  { name: '13x7 grid, one pixel per cell', gridRows: 13, gridCols: 7, width: 7, height: 13, gridFromPixel: affine(1, 1, 0, 0) },
  { name: '5x9 grid zoomed 4x and panned past its edges (background around it)', gridRows: 5, gridCols: 9, width: 45, height: 31, gridFromPixel: affine(0.25, 0.25, -1.5, -0.875) },
  { name: '1x1 grid shrunk into a corner', gridRows: 1, gridCols: 1, width: 10, height: 6, gridFromPixel: affine(0.5, 0.5, 0, 0) },
  { name: 'one row 1x33, stretched 2x wide and 8x tall', gridRows: 1, gridCols: 33, width: 66, height: 8, gridFromPixel: affine(0.5, 0.125, 0, 0) },
  { name: 'empty grid: all background', gridRows: 0, gridCols: 0, width: 5, height: 3, gridFromPixel: affine(1, 1, 0, 0) },
  { name: '4x4 with NaN and +Inf cells', gridRows: 4, gridCols: 4, width: 8, height: 8, gridFromPixel: affine(0.5, 0.5, 0, 0), special: [[5, NaN], [10, Infinity]] },
  { name: 'all-zero grid with maxValue 0', gridRows: 3, gridCols: 2, width: 2, height: 3, gridFromPixel: affine(1, 1, 0, 0), maxValue: 0 },
];

describe('heatmap render pipeline in Chromium vs heatmapRef', () => {
  it.each(heatCases)('$name', async ({ gridRows, gridCols, width, height, gridFromPixel, special, maxValue }) => {
    const cells = maxValue === 0 ? new Float32Array(gridRows * gridCols) : matrix(gridRows, gridCols, gridRows * 7 + gridCols, special).map(Math.abs);
    const max = maxValue ?? cells.reduce((a, v) => (Number.isFinite(v) ? Math.max(a, v) : a), 0);
    const args: HeatmapArgs = { gridRows, gridCols, bits: bitsOf(cells), width, height, gridFromPixel, maxValue: max };
    const gpu = await runner.call<number[]>('heatmap', args);
    const ref = heatmapRef({ cells, gridRows, gridCols, width, height, gridFromPixel, maxValue: max });
    expect(gpu.length).toBe(ref.length);
    const off: string[] = [];
    for (let i = 0; i < ref.length; i++) if (Math.abs(gpu[i]! - ref[i]!) > 1) off.push(`pixel ${Math.floor(i / 4)} channel ${i % 4}: ${gpu[i]} vs ${ref[i]}`);
    expect(off.slice(0, 10)).toEqual([]);
    // Not one flat colour, except where the case is meant to be.
    if (gridRows * gridCols > 1 && maxValue !== 0) expect(new Set(Array.from({ length: ref.length / 4 }, (_, p) => ref.slice(p * 4, p * 4 + 3).join())).size).toBeGreaterThan(2);
  });
});
