/// <reference types="@webgpu/types" />
/**
 * Page entry of the matrix-view browser tests (matrix-view.browser.test.ts): the magnitude-grid
 * kernel and the heatmap render pipeline on the page's device. Matrices arrive as f32 bit patterns
 * in JSON (so NaN and Inf survive); grids go back as bit patterns, pictures as RGBA bytes.
 */
import { getDevice, registerPageApi, startPage } from '@lorafuse/runner/page';
import { requestLorafuseDevice } from '../src/index.js';
import { encodeHeatmap, readMagnitudeGrid, type MagnitudeGridLimits } from '../src/view.js';
import { storageBufferOf } from '../src/testing/index.js';

startPage({ requestDevice: (adapter) => requestLorafuseDevice(adapter, 'matrix-view test device') });

/** Arguments of `magnitudeGrid`. */
export interface MagnitudeGridArgs {
  rows: number;
  cols: number;
  maxSide: number;
  /** The matrix as f32 bits, row-major. */
  bits: number[];
  limits?: MagnitudeGridLimits;
}

/** Arguments of `heatmap`. */
export interface HeatmapArgs {
  gridRows: number;
  gridCols: number;
  /** The grid as f32 bits, row-major. */
  bits: number[];
  width: number;
  height: number;
  gridFromPixel: number[];
  maxValue: number;
}

const bytesOf = (bits: number[]) => new Uint8Array(new Uint32Array(bits).buffer);

registerPageApi({
  async magnitudeGrid(args: MagnitudeGridArgs) {
    const device = await getDevice();
    const matrix = storageBufferOf(device, bytesOf(args.bits), 'matrix-view test matrix');
    try {
      const grid = await readMagnitudeGrid(device, { matrix, rows: args.rows, cols: args.cols, maxSide: args.maxSide, ...(args.limits === undefined ? {} : { limits: args.limits }) });
      return { shape: grid.shape, maxBits: Array.from(new Uint32Array(grid.maxAbs.buffer, grid.maxAbs.byteOffset, grid.maxAbs.length)), sumSquares: Array.from(grid.sumSquares) };
    } finally {
      matrix.destroy();
    }
  },

  async heatmap(args: HeatmapArgs) {
    const device = await getDevice();
    const cells = storageBufferOf(device, bytesOf(args.bits), 'heatmap test grid');
    const target = device.createTexture({ label: 'heatmap test target', size: [args.width, args.height], format: 'rgba8unorm', usage: GPUTextureUsage.RENDER_ATTACHMENT | GPUTextureUsage.COPY_SRC });
    const bytesPerRow = Math.ceil((args.width * 4) / 256) * 256;
    const staging = device.createBuffer({ label: 'heatmap test readback', size: bytesPerRow * args.height, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    try {
      device.pushErrorScope('validation');
      const encoder = device.createCommandEncoder({ label: 'heatmap test' });
      const drawn = encodeHeatmap(device, encoder, { target: target.createView(), format: 'rgba8unorm', cells, gridRows: args.gridRows, gridCols: args.gridCols, gridFromPixel: new Float32Array(args.gridFromPixel), maxValue: args.maxValue });
      encoder.copyTextureToBuffer({ texture: target }, { buffer: staging, bytesPerRow }, [args.width, args.height]);
      device.queue.submit([encoder.finish()]);
      drawn.destroy();
      const error = await device.popErrorScope();
      if (error) throw new Error(`heatmap test: ${error.message}`);
      await staging.mapAsync(GPUMapMode.READ);
      const rows = new Uint8Array(staging.getMappedRange());
      const out: number[] = [];
      for (let y = 0; y < args.height; y++) out.push(...rows.subarray(y * bytesPerRow, y * bytesPerRow + args.width * 4));
      staging.unmap();
      return out;
    } finally {
      for (const b of [cells, staging]) b.destroy();
      target.destroy();
    }
  },

  async refusals() {
    const device = await getDevice();
    const small = device.createBuffer({ label: 'too small', size: 16, usage: GPUBufferUsage.STORAGE });
    const messages: string[] = [];
    for (const run of [
      () => readMagnitudeGrid(device, { matrix: small, rows: 3, cols: 3, maxSide: 2 }),
      () => readMagnitudeGrid(device, { matrix: small, rows: 2, cols: 2, maxSide: 0 }),
      () => readMagnitudeGrid(device, { matrix: small, rows: 4, cols: 1, maxSide: 1, limits: { maxStorageBufferBindingSize: 8 } }),
    ]) {
      try {
        await run();
        messages.push('no error');
      } catch (e) {
        messages.push((e as Error).message);
      }
    }
    small.destroy();
    return messages;
  },
});
