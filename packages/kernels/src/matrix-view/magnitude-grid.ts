import { foldDispatch, planRowChunks, type RowChunk } from '../dispatch.js';
import { kernelPipeline } from '../pipeline-cache.js';
import { magnitudeGridShape, type MagnitudeGridShape } from './magnitude-grid.shape.js';
import shaderSource from './magnitude-grid.wgsl';
import { popCallScopes, pushCallScopes } from '../error-scopes.js';

/** Invocations per workgroup of the magnitude-grid kernel (override `WG`); one invocation per cell. */
export const MAGNITUDE_GRID_WORKGROUP = 64;

/** Size in bytes of the WGSL `Params` uniform (10 u32). */
const PARAMS_BYTES = 10 * 4;

/** Lower limits than the device's, to exercise chunking and dispatch folding in tests. */
export interface MagnitudeGridLimits {
  /** Bytes; the matrix is bound in chunks of whole block rows that fit. */
  maxStorageBufferBindingSize?: number;
  /** Workgroups per dispatch dimension; more fold into a 2-D dispatch. */
  maxComputeWorkgroupsPerDimension?: number;
}

/** Parameters of {@link encodeMagnitudeGrid}. */
export interface EncodeMagnitudeGridParams {
  /** The matrix, row-major f32 `[rows, cols]` from offset 0. Usage must include STORAGE. */
  matrix: GPUBuffer;
  rows: number;
  cols: number;
  /** Most cells per side of the grid (see {@link magnitudeGridShape}). */
  maxSide: number;
  /** Receives max |m| per cell as f32, row-major `[gridRows, gridCols]`. STORAGE usage. */
  maxAbs: GPUBuffer;
  /** Receives Σ m² per cell as f32, row-major `[gridRows, gridCols]`. STORAGE usage. */
  sumSquares: GPUBuffer;
  /** Prefix of the labels of the GPU objects created (default `'magnitude-grid'`). */
  label?: string;
  limits?: MagnitudeGridLimits;
}

/** What {@link encodeMagnitudeGrid} recorded. */
export interface EncodedMagnitudeGrid {
  shape: MagnitudeGridShape;
  /** Chunks of block rows (one bind group and dispatch each); 0 for an empty matrix. */
  chunks: number;
  /** The uniform buffer created (undefined when nothing was dispatched); destroy it after submitting. */
  uniforms: GPUBuffer | undefined;
}

function getPipeline(device: GPUDevice): GPUComputePipeline {
  return kernelPipeline(device, {
    kernel: 'magnitude-grid',
    code: shaderSource,
    entryPoint: 'main',
    constants: { WG: MAGNITUDE_GRID_WORKGROUP },
    paramsBytes: PARAMS_BYTES,
    storage: ['read-only-storage', 'storage', 'storage'],
  });
}

interface GridProgram {
  shape: MagnitudeGridShape;
  /** Chunks in units of block rows: `rowStart`/`rowCount` count grid rows. */
  chunks: RowChunk[];
  groups: Array<[x: number, y: number]>;
}

/** Validates the buffers against the shape and limits; plans chunks of whole block rows. */
function planGrid(device: GPUDevice, params: EncodeMagnitudeGridParams): GridProgram {
  const shape = magnitudeGridShape(params.rows, params.cols, params.maxSide);
  const cells = shape.gridRows * shape.gridCols;
  const need: Array<[string, GPUBuffer, number]> = [
    ['matrix', params.matrix, shape.rows * shape.cols * 4],
    ['maxAbs', params.maxAbs, cells * 4],
    ['sumSquares', params.sumSquares, cells * 4],
  ];
  for (const [name, buffer, bytes] of need) {
    if (buffer.size < bytes) throw new RangeError(`magnitude-grid: buffer ${name} (${buffer.label}) has ${buffer.size} bytes, needs ${bytes}.`);
    if ((buffer.usage & GPUBufferUsage.STORAGE) === 0) throw new TypeError(`magnitude-grid: buffer ${name} (${buffer.label}) lacks STORAGE usage.`);
  }
  const program: GridProgram = { shape, chunks: [], groups: [] };
  if (cells === 0) return program;
  const maxBinding = Math.min(device.limits.maxStorageBufferBindingSize, params.limits?.maxStorageBufferBindingSize ?? Infinity);
  const maxGroups = Math.min(device.limits.maxComputeWorkgroupsPerDimension, params.limits?.maxComputeWorkgroupsPerDimension ?? Infinity);
  if (cells * 4 > maxBinding) throw new RangeError(`magnitude-grid: a grid of ${cells} cells (${cells * 4} bytes) is larger than maxStorageBufferBindingSize (${maxBinding} bytes); use a smaller maxSide.`);
  // A "row" for the chunk planner is one block row: a cell's block then never straddles two chunks.
  let chunks: RowChunk[];
  try {
    chunks = planRowChunks(shape.gridRows, shape.blockRows * shape.cols, maxBinding, device.limits.minStorageBufferOffsetAlignment);
  } catch (e) {
    throw new RangeError(`magnitude-grid: blocks of ${shape.blockRows} rows × ${shape.cols} columns cannot be bound: ${(e as Error).message}`);
  }
  // The last block row may be short: its binding ends with the matrix.
  const total = shape.rows * shape.cols * 4;
  program.chunks = chunks.map((c) => ({ ...c, bindingSize: Math.min(c.bindingSize, total - c.bindingOffset) }));
  program.groups = program.chunks.map((c) => foldDispatch(Math.ceil((c.rowCount * shape.gridCols) / MAGNITUDE_GRID_WORKGROUP), maxGroups));
  return program;
}

/**
 * Records the reduction of a matrix to its magnitude grid into `encoder` (one compute pass): per
 * cell of {@link magnitudeGridShape}, the largest |m| of its block (max pooling: a lone spike stays
 * visible however far the matrix is shrunk) and Σ m² (the squared Frobenius norm is the sum of the
 * cells). A matrix larger than `maxStorageBufferBindingSize` is bound in chunks of whole block rows.
 * An empty matrix records nothing.
 *
 * @throws RangeError / TypeError for bad shapes, buffers too small or lacking STORAGE, and a block
 *   row or the grid larger than `maxStorageBufferBindingSize` (the message names the limit).
 */
export function encodeMagnitudeGrid(device: GPUDevice, encoder: GPUCommandEncoder, params: EncodeMagnitudeGridParams): EncodedMagnitudeGrid {
  const program = planGrid(device, params);
  const { shape } = program;
  if (program.chunks.length === 0) return { shape, chunks: 0, uniforms: undefined };
  const label = params.label ?? 'magnitude-grid';
  const align = device.limits.minUniformBufferOffsetAlignment;
  const stride = Math.ceil(PARAMS_BYTES / align) * align;
  const uniforms = device.createBuffer({ label: `${label} params`, size: stride * program.chunks.length, usage: GPUBufferUsage.UNIFORM, mappedAtCreation: true });
  const mapped = uniforms.getMappedRange();
  program.chunks.forEach((chunk, i) => {
    new Uint32Array(mapped, i * stride, 10).set([
      shape.rows, shape.cols, shape.blockRows, shape.blockCols, shape.gridCols,
      chunk.rowStart * shape.gridCols, chunk.rowCount * shape.gridCols, chunk.rowStart * shape.blockRows, chunk.elementOffset, program.groups[i]![0],
    ]);
  });
  uniforms.unmap();
  const pipeline = getPipeline(device);
  const layout = pipeline.getBindGroupLayout(0);
  const cells = shape.gridRows * shape.gridCols * 4;
  const pass = encoder.beginComputePass({ label: `${label} pass` });
  pass.setPipeline(pipeline);
  program.chunks.forEach((chunk, i) => {
    pass.setBindGroup(0, device.createBindGroup({
      label: `${label} bind group (block rows ${chunk.rowStart}..${chunk.rowStart + chunk.rowCount})`,
      layout,
      entries: [
        { binding: 0, resource: { buffer: uniforms, offset: i * stride, size: PARAMS_BYTES } },
        { binding: 1, resource: { buffer: params.matrix, offset: chunk.bindingOffset, size: chunk.bindingSize } },
        { binding: 2, resource: { buffer: params.maxAbs, offset: 0, size: cells } },
        { binding: 3, resource: { buffer: params.sumSquares, offset: 0, size: cells } },
      ],
    }));
    pass.dispatchWorkgroups(...program.groups[i]!);
  });
  pass.end();
  return { shape, chunks: program.chunks.length, uniforms };
}

/** A magnitude grid on the host, row-major `[shape.gridRows, shape.gridCols]`. */
export interface MagnitudeGrid {
  shape: MagnitudeGridShape;
  /** Largest |m| per cell (f32). */
  maxAbs: Float32Array;
  /** Σ m² per cell (f32 sums of f32 squares). */
  sumSquares: Float32Array;
}

/** Parameters of {@link readMagnitudeGrid}: those of {@link encodeMagnitudeGrid} less the outputs. */
export type ReadMagnitudeGridParams = Omit<EncodeMagnitudeGridParams, 'maxAbs' | 'sumSquares'>;

/**
 * Runs {@link encodeMagnitudeGrid} on a matrix already on the device (nothing of it is uploaded or
 * read back) and reads the grid back. GPU validation and out-of-memory errors are thrown; every
 * buffer it created is destroyed, also on failure.
 */
export async function readMagnitudeGrid(device: GPUDevice, params: ReadMagnitudeGridParams): Promise<MagnitudeGrid> {
  const shape = magnitudeGridShape(params.rows, params.cols, params.maxSide);
  const bytes = shape.gridRows * shape.gridCols * 4;
  if (bytes === 0) return { shape, maxAbs: new Float32Array(0), sumSquares: new Float32Array(0) };
  const label = params.label ?? 'magnitude-grid';
  const created: GPUBuffer[] = [];
  const make = (name: string, usage: number, size = bytes) => {
    const buffer = device.createBuffer({ label: `${label} ${name}`, size, usage });
    created.push(buffer);
    return buffer;
  };
  pushCallScopes(device);
  let thrown: unknown;
  let readback: GPUBuffer | undefined;
  try {
    const maxAbs = make('max |m|', GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
    const sumSquares = make('Σ m²', GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
    // Both grids come back through one staging buffer (one map instead of two).
    readback = make('readback', GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, bytes * 2);
    const encoder = device.createCommandEncoder({ label: `${label} encoder` });
    const encoded = encodeMagnitudeGrid(device, encoder, { ...params, maxAbs, sumSquares });
    if (encoded.uniforms !== undefined) created.push(encoded.uniforms);
    encoder.copyBufferToBuffer(maxAbs, 0, readback, 0, bytes);
    encoder.copyBufferToBuffer(sumSquares, 0, readback, bytes, bytes);
    device.queue.submit([encoder.finish({ label: `${label} commands` })]);
  } catch (e) {
    thrown = e;
  }
  const { validation, outOfMemory: oom } = await popCallScopes(device);
  try {
    if (thrown !== undefined) throw thrown;
    if (validation !== null || oom !== null || readback === undefined) {
      throw new Error(`readMagnitudeGrid (${label}): WebGPU ${validation !== null ? 'validation' : 'out-of-memory'} error: ${(validation ?? oom)?.message}`);
    }
    await readback.mapAsync(GPUMapMode.READ);
    const copy = readback.getMappedRange().slice(0);
    readback.unmap();
    return { shape, maxAbs: new Float32Array(copy, 0, bytes / 4), sumSquares: new Float32Array(copy, bytes, bytes / 4) };
  } finally {
    for (const buffer of created) buffer.destroy();
  }
}
