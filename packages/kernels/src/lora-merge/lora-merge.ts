import { kernelPipeline } from '../pipeline-cache.js';
import { foldDispatch, planRowChunks, type RowChunk } from '../dispatch.js';
import { loraMergeSizes, type LoraMergeShape } from './lora-merge.shape.js';
import shaderSource from './lora-merge.wgsl';
import { popCallScopes, pushCallScopes } from '../error-scopes.js';

/** Workgroup size of the merge kernel (override constants `WG_X`, `WG_Y`). */
export const LORA_MERGE_WORKGROUP = { x: 16, y: 16 } as const;
/** Outputs per invocation (rows `TM` × columns `TN`, constants in the WGSL). */
const TM = 4;
const TN = 4;
/** Rows and columns of W covered by one workgroup of the general entry point (`main`). */
export const LORA_MERGE_TILE = { rows: LORA_MERGE_WORKGROUP.y * TM, cols: LORA_MERGE_WORKGROUP.x * TN } as const;
/**
 * The vec4 entry point (`main_vec4`, for W with a multiple of 4 columns): invocations per workgroup
 * (override `VEC4_WG`), each covering 4 columns, and rows per invocation (override `VEC4_ROWS`).
 */
export const LORA_MERGE_VEC4 = { workgroup: 64, rows: 32 } as const;

/** Size in bytes of the WGSL `Params` uniform (12 u32 + 1 f32). */
const PARAMS_BYTES = 13 * 4;

/**
 * Lower limits to use instead of the device's, to exercise chunking and dispatch folding in tests
 * without huge buffers. Values above the device's limits are ignored.
 */
export interface LoraMergeLimits {
  /** Bytes; W is split into row chunks that fit, A and B must fit whole. */
  maxStorageBufferBindingSize?: number;
  /** Workgroups per dispatch dimension; more tiles fold into a 2-D dispatch. */
  maxComputeWorkgroupsPerDimension?: number;
}

/** Parameters of {@link encodeLoraMerge}. All buffers hold row-major f32 starting at offset 0. */
export interface EncodeLoraMergeParams extends LoraMergeShape {
  /** W `[rows, cols]`, updated in place. Usage must include STORAGE. */
  w: GPUBuffer;
  /** A `[rank, in]`. Usage must include STORAGE. */
  a: GPUBuffer;
  /** B `[out, rank]`. Usage must include STORAGE. */
  b: GPUBuffer;
  /** LoRA scaling s (`lora_alpha / r`, or `/ sqrt(r)` with rsLoRA). Finite. */
  scale: number;
  /** Prefix of the labels of the GPU objects created (default `'lora-merge'`). */
  label?: string;
  /** See {@link LoraMergeLimits}. */
  limits?: LoraMergeLimits;
  /**
   * Timestamps written at the beginning and end of the merge's compute pass (device feature
   * `timestamp-query`), for benchmarks. Ignored when nothing is dispatched.
   */
  timestampWrites?: GPUComputePassTimestampWrites;
}

/** What {@link encodeLoraMerge} recorded. */
export interface EncodedLoraMerge {
  /** Row chunks of W (one per bind group and dispatch); 0 for an empty W. */
  chunks: number;
  /** Workgroups dispatched over all chunks (including idle ones of folded dispatches). */
  workgroups: number;
  /**
   * The uniform buffer created for this merge (undefined when nothing was dispatched). The caller
   * may `destroy()` it once the command buffer has been submitted; otherwise it is garbage-collected.
   */
  uniforms: GPUBuffer | undefined;
}

type Variant = 'main' | 'main_vec4';

function getPipeline(device: GPUDevice, variant: Variant): GPUComputePipeline {
  return kernelPipeline(device, {
    kernel: 'lora-merge',
    code: shaderSource,
    entryPoint: variant,
    constants: variant === 'main' ? { WG_X: LORA_MERGE_WORKGROUP.x, WG_Y: LORA_MERGE_WORKGROUP.y } : { VEC4_WG: LORA_MERGE_VEC4.workgroup, VEC4_ROWS: LORA_MERGE_VEC4.rows },
    paramsBytes: PARAMS_BYTES,
    storage: ['storage', 'read-only-storage', 'read-only-storage'],
  });
}

interface MergeProgram {
  variant: Variant;
  chunks: RowChunk[];
  /** Per chunk: [tiles_x, tile_count, groups_x, groups_y]. */
  grids: Array<[tilesX: number, tileCount: number, groupsX: number, groupsY: number]>;
  aBytes: number;
  bBytes: number;
}

/** Validates inputs against the buffers and limits; plans chunks and dispatch sizes. */
function planMerge(device: GPUDevice, params: EncodeLoraMergeParams): MergeProgram {
  const sizes = loraMergeSizes(params);
  if (!Number.isFinite(params.scale)) throw new RangeError(`lora-merge: scale must be finite, got ${params.scale}.`);
  const need: Array<[string, GPUBuffer, number]> = [
    ['w', params.w, sizes.w * 4],
    ['a', params.a, sizes.a * 4],
    ['b', params.b, sizes.b * 4],
  ];
  for (const [name, buffer, bytes] of need) {
    if (buffer.size < bytes) throw new RangeError(`lora-merge: buffer ${name} (${buffer.label}) has ${buffer.size} bytes, needs ${bytes}.`);
    if ((buffer.usage & GPUBufferUsage.STORAGE) === 0) throw new TypeError(`lora-merge: buffer ${name} (${buffer.label}) lacks STORAGE usage.`);
  }
  const maxBinding = Math.min(device.limits.maxStorageBufferBindingSize, params.limits?.maxStorageBufferBindingSize ?? Infinity);
  const maxGroups = Math.min(device.limits.maxComputeWorkgroupsPerDimension, params.limits?.maxComputeWorkgroupsPerDimension ?? Infinity);
  const program: MergeProgram = { variant: 'main', chunks: [], grids: [], aBytes: sizes.a * 4, bBytes: sizes.b * 4 };
  if (sizes.w === 0) return program;
  for (const [name, bytes] of [['A', program.aBytes], ['B', program.bBytes]] as const) {
    if (bytes > maxBinding) {
      throw new RangeError(`lora-merge: ${name} (${bytes} bytes) is larger than maxStorageBufferBindingSize (${maxBinding} bytes).`);
    }
  }
  program.chunks = planRowChunks(params.rows, params.cols, maxBinding, device.limits.minStorageBufferOffsetAlignment);
  // W as vec4 words needs whole words per row and bindings starting on a word.
  if (params.cols % 4 === 0 && program.chunks.every((c) => c.elementOffset % 4 === 0 && c.bindingSize % 16 === 0)) program.variant = 'main_vec4';
  const [tileRows, tileCols] = program.variant === 'main' ? [LORA_MERGE_TILE.rows, LORA_MERGE_TILE.cols] : [LORA_MERGE_VEC4.rows, LORA_MERGE_VEC4.workgroup * 4];
  const tilesX = Math.ceil(params.cols / tileCols);
  for (const chunk of program.chunks) {
    const tileCount = tilesX * Math.ceil(chunk.rowCount / tileRows);
    const [groupsX, groupsY] = foldDispatch(tileCount, maxGroups);
    program.grids.push([tilesX, tileCount, groupsX, groupsY]);
  }
  return program;
}

/**
 * Records the in-place merge `W += scale · delta` into `encoder` (one compute pass), where delta is
 * `B @ A` for `'linear'` (W `[out, in]`) or `(B @ A)ᵀ` for `'transposed'` (W `[in, out]` of a Conv1D,
 * or `[num_embeddings, dim]` of an Embedding). All tensors are row-major f32; A is `[rank, in]`, B is
 * `[out, rank]`. Computes in f32. An empty W (rows or cols 0) records nothing.
 *
 * W larger than `maxStorageBufferBindingSize` is processed in row chunks bound at offsets aligned
 * to `minStorageBufferOffsetAlignment`; more than `maxComputeWorkgroupsPerDimension` workgroups are
 * folded into a 2-D dispatch.
 *
 * @throws RangeError for bad shapes, buffers too small for the shape, or a row of W / the whole of A
 *   or B larger than `maxStorageBufferBindingSize` (the message names the limit).
 */
export function encodeLoraMerge(device: GPUDevice, encoder: GPUCommandEncoder, params: EncodeLoraMergeParams): EncodedLoraMerge {
  const program = planMerge(device, params);
  if (program.chunks.length === 0) return { chunks: 0, workgroups: 0, uniforms: undefined };
  const label = params.label ?? 'lora-merge';
  const { rows, cols, rank } = params;
  const linear = params.orientation === 'linear';
  // L[row, k] and R[k, col] of the shader (see lora-merge.wgsl).
  const [lBuffer, lBytes, lRowStride, lKStride] = linear ? [params.b, program.bBytes, rank, 1] : [params.a, program.aBytes, 1, rows];
  const [rBuffer, rBytes, rKStride, rColStride] = linear ? [params.a, program.aBytes, cols, 1] : [params.b, program.bBytes, 1, rank];

  const stride = Math.ceil(PARAMS_BYTES / device.limits.minUniformBufferOffsetAlignment) * device.limits.minUniformBufferOffsetAlignment;
  const uniforms = device.createBuffer({
    label: `${label} params`,
    size: stride * program.chunks.length,
    usage: GPUBufferUsage.UNIFORM,
    mappedAtCreation: true,
  });
  const mapped = uniforms.getMappedRange();
  program.chunks.forEach((chunk, c) => {
    const [tilesX, tileCount, groupsX] = program.grids[c]!;
    const u32 = new Uint32Array(mapped, c * stride, 13);
    u32.set([chunk.rowCount, cols, rank, chunk.rowStart, chunk.elementOffset, lRowStride, lKStride, rKStride, rColStride, tilesX, tileCount, groupsX]);
    new Float32Array(mapped, c * stride + 12 * 4, 1)[0] = params.scale;
  });
  uniforms.unmap();

  const pipeline = getPipeline(device, program.variant);
  const layout = pipeline.getBindGroupLayout(0);
  const pass = encoder.beginComputePass({ label: `${label} pass`, ...(params.timestampWrites === undefined ? {} : { timestampWrites: params.timestampWrites }) });
  pass.setPipeline(pipeline);
  let workgroups = 0;
  program.chunks.forEach((chunk, c) => {
    const [, , groupsX, groupsY] = program.grids[c]!;
    pass.setBindGroup(
      0,
      device.createBindGroup({
        label: `${label} bind group (rows ${chunk.rowStart}..${chunk.rowStart + chunk.rowCount})`,
        layout,
        entries: [
          { binding: 0, resource: { buffer: uniforms, offset: c * stride, size: PARAMS_BYTES } },
          { binding: 1, resource: { buffer: params.w, offset: chunk.bindingOffset, size: chunk.bindingSize } },
          { binding: 2, resource: { buffer: lBuffer, offset: 0, size: lBytes } },
          { binding: 3, resource: { buffer: rBuffer, offset: 0, size: rBytes } },
        ],
      }),
    );
    pass.dispatchWorkgroups(groupsX, groupsY);
    workgroups += groupsX * groupsY;
  });
  pass.end();
  return { chunks: program.chunks.length, workgroups, uniforms };
}

/** Parameters of {@link runLoraMerge}: {@link EncodeLoraMergeParams} with host arrays. */
export interface RunLoraMergeParams extends LoraMergeShape {
  /** W, row-major f32 `[rows, cols]`. Not modified. */
  w: Float32Array;
  /** A, row-major f32 `[rank, in]`. */
  a: Float32Array;
  /** B, row-major f32 `[out, rank]`. */
  b: Float32Array;
  /** LoRA scaling s. */
  scale: number;
  label?: string;
  limits?: LoraMergeLimits;
}

/**
 * Uploads W, A and B, runs {@link encodeLoraMerge} and reads the merged W back (a new row-major f32
 * array `[rows, cols]`). GPU validation and out-of-memory errors are thrown, not just logged.
 */
export async function runLoraMerge(device: GPUDevice, params: RunLoraMergeParams): Promise<Float32Array> {
  const sizes = loraMergeSizes(params);
  const label = params.label ?? 'lora-merge';
  for (const [name, array, n] of [['w', params.w, sizes.w], ['a', params.a, sizes.a], ['b', params.b, sizes.b]] as const) {
    if (array.length !== n) throw new RangeError(`runLoraMerge: ${name} has ${array.length} values, the shape needs ${n}.`);
  }
  if (sizes.w === 0) return params.w.slice();
  if (sizes.w * 4 > device.limits.maxBufferSize) {
    throw new RangeError(`runLoraMerge: W (${sizes.w * 4} bytes) is larger than the device's maxBufferSize (${device.limits.maxBufferSize} bytes).`);
  }

  pushCallScopes(device);
  const created: GPUBuffer[] = [];
  const upload = (name: string, data: Float32Array, extraUsage: number): GPUBuffer => {
    const buffer = device.createBuffer({ label: `${label} ${name}`, size: data.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | extraUsage });
    created.push(buffer);
    device.queue.writeBuffer(buffer, 0, data as Float32Array<ArrayBuffer>);
    return buffer;
  };
  let readback: GPUBuffer | undefined;
  let thrown: unknown;
  try {
    const w = upload('w', params.w, GPUBufferUsage.COPY_SRC);
    const a = upload('a', params.a, 0);
    const b = upload('b', params.b, 0);
    readback = device.createBuffer({ label: `${label} readback`, size: w.size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    created.push(readback);
    const encoder = device.createCommandEncoder({ label: `${label} encoder` });
    const encoded = encodeLoraMerge(device, encoder, {
      w, a, b,
      rows: params.rows, cols: params.cols, rank: params.rank, orientation: params.orientation, scale: params.scale,
      label,
      ...(params.limits === undefined ? {} : { limits: params.limits }),
    });
    if (encoded.uniforms !== undefined) created.push(encoded.uniforms);
    encoder.copyBufferToBuffer(w, 0, readback, 0, w.size);
    device.queue.submit([encoder.finish({ label: `${label} commands` })]);
  } catch (err) {
    thrown = err;
  }
  const { validation, outOfMemory: oom } = await popCallScopes(device);
  if (thrown !== undefined || validation !== null || oom !== null || readback === undefined) {
    for (const buffer of created) buffer.destroy();
    if (thrown !== undefined) throw thrown;
    const kind = validation !== null ? 'validation' : 'out-of-memory';
    throw new Error(`runLoraMerge (${label}): WebGPU ${kind} error: ${(validation ?? oom)?.message}`);
  }
  try {
    await readback.mapAsync(GPUMapMode.READ);
    return new Float32Array(readback.getMappedRange().slice(0));
  } finally {
    for (const buffer of created) buffer.destroy();
  }
}

/** One term of {@link withLoraDelta}: A, B (host arrays) and how they apply. */
export interface LoraDeltaTerm {
  /** A, row-major f32 `[rank, in]`. */
  a: Float32Array;
  /** B, row-major f32 `[out, rank]`. */
  b: Float32Array;
  rank: number;
  orientation: LoraMergeShape['orientation'];
  scale: number;
  label?: string;
}

/** Parameters of {@link withLoraDelta}: the shape of W and the terms summed into ΔW. */
export interface LoraDeltaParams {
  rows: number;
  cols: number;
  terms: readonly LoraDeltaTerm[];
  label?: string;
  limits?: LoraMergeLimits;
}

/**
 * ΔW = Σ scale·delta over `terms`, computed by {@link encodeLoraMerge} on a zero matrix (so each sum
 * is rounded as the kernel's own `W += …` rounds), without W ever going to the device: callers that
 * hold W elsewhere add ΔW themselves. `use` gets the f32 bytes of ΔW straight from the mapped
 * read-back buffer (valid only until its promise settles; no copy is made) and its result is
 * returned. `use` also gets the device buffer that holds ΔW (row-major f32 `[rows, cols]`, STORAGE |
 * COPY_SRC; undefined for an empty ΔW), alive until its promise settles, for more GPU work on ΔW
 * (a picture of it, say) without uploading it again. GPU validation and out-of-memory errors are
 * thrown before `use` is called; every buffer created is destroyed, also on failure.
 */
export async function withLoraDelta<T>(device: GPUDevice, params: LoraDeltaParams, use: (delta: Uint8Array, onDevice: GPUBuffer | undefined) => T | Promise<T>): Promise<T> {
  const label = params.label ?? 'lora-delta';
  const byteLength = params.rows * params.cols * 4;
  for (const [i, t] of params.terms.entries()) {
    const sizes = loraMergeSizes({ rows: params.rows, cols: params.cols, rank: t.rank, orientation: t.orientation });
    if (t.a.length !== sizes.a || t.b.length !== sizes.b) throw new RangeError(`withLoraDelta: term ${i} has A ${t.a.length} and B ${t.b.length} values, the shape needs ${sizes.a} and ${sizes.b}.`);
  }
  if (byteLength === 0) return use(new Uint8Array(0), undefined);
  if (byteLength > device.limits.maxBufferSize) {
    throw new RangeError(`withLoraDelta: ΔW (${byteLength} bytes) is larger than the device's maxBufferSize (${device.limits.maxBufferSize} bytes).`);
  }
  pushCallScopes(device);
  const created: GPUBuffer[] = [];
  const upload = (name: string, data: Float32Array): GPUBuffer => {
    const buffer = device.createBuffer({ label: `${label} ${name}`, size: Math.max(4, data.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    created.push(buffer);
    if (data.byteLength > 0) device.queue.writeBuffer(buffer, 0, data as Float32Array<ArrayBuffer>);
    return buffer;
  };
  let readback: GPUBuffer | undefined;
  let delta: GPUBuffer | undefined;
  let thrown: unknown;
  try {
    // A new buffer is zero-filled: the kernel's in-place W += ... leaves ΔW in it.
    delta = device.createBuffer({ label: `${label} ΔW`, size: byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    created.push(delta);
    readback = device.createBuffer({ label: `${label} readback`, size: byteLength, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    created.push(readback);
    const encoder = device.createCommandEncoder({ label: `${label} encoder` });
    for (const t of params.terms) {
      const encoded = encodeLoraMerge(device, encoder, {
        w: delta, a: upload('A', t.a), b: upload('B', t.b),
        rows: params.rows, cols: params.cols, rank: t.rank, orientation: t.orientation, scale: t.scale,
        label: t.label ?? label,
        ...(params.limits === undefined ? {} : { limits: params.limits }),
      });
      if (encoded.uniforms !== undefined) created.push(encoded.uniforms);
    }
    encoder.copyBufferToBuffer(delta, 0, readback, 0, byteLength);
    device.queue.submit([encoder.finish({ label: `${label} commands` })]);
  } catch (err) {
    thrown = err;
  }
  const { validation, outOfMemory: oom } = await popCallScopes(device);
  try {
    if (thrown !== undefined) throw thrown;
    if (validation !== null || oom !== null || readback === undefined) {
      throw new Error(`withLoraDelta (${label}): WebGPU ${validation !== null ? 'validation' : 'out-of-memory'} error: ${(validation ?? oom)?.message}`);
    }
    await readback.mapAsync(GPUMapMode.READ);
    try {
      return await use(new Uint8Array(readback.getMappedRange(0, byteLength)), delta);
    } finally {
      readback.unmap();
    }
  } finally {
    for (const buffer of created) buffer.destroy();
  }
}
