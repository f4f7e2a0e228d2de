/**
 * The WGSL kernels of a transformer forward pass over `GPUBuffer`s: layer norm, matmul in both weight
 * layouts (with a scale and accumulation, which is how LoRA terms and residual adds are applied),
 * causal attention over a key/value cache, activations, the cache append, and embedding gathers. Each
 * has its CPU twin in this folder. Every call records one dispatch into the given pass; the small
 * uniform buffers it creates are released by {@link ForwardKernels.release} once the work is done.
 */
import { kernelPipeline, type KernelPipelineSpec } from '../pipeline-cache.js';
import type { Activation } from './activation.ref.js';
import type { WeightOrder } from './matmul.ref.js';
import attentionSource from './attention.wgsl';
import elementwiseSource from './elementwise.wgsl';
import gatherSource from './gather.wgsl';
import layerNormSource from './layer-norm.wgsl';
import matmulSource from './matmul.wgsl';
import reduceSource from './workgroup-reduce.wgsl';

/** Key/value positions the attention kernel holds in workgroup memory. */
export const ATTENTION_MAX_POSITIONS = 2048;

/** One row chunk of a matrix on the GPU (big matrices are split to fit the binding-size limit). */
export interface GpuMatrixChunk {
  readonly buffer: GPUBuffer;
  readonly rowStart: number;
  readonly rowCount: number;
}

/** A `[rows, cols]` f32 matrix uploaded in row chunks. */
export interface GpuMatrix {
  readonly rows: number;
  readonly cols: number;
  readonly chunks: readonly GpuMatrixChunk[];
}

const ACTIVATION_CODE: Readonly<Record<Activation, number>> = { gelu_new: 0, gelu_pytorch_tanh: 0, gelu_fast: 0, gelu: 1, relu: 2, silu: 3, swish: 3, quick_gelu: 4 };

const RW: GPUBufferBindingType = 'storage';
const RO: GPUBufferBindingType = 'read-only-storage';
const SPECS = {
  layerNorm: { kernel: 'forward-layer-norm', code: reduceSource + layerNormSource, entryPoint: 'main', constants: {}, paramsBytes: 16, storage: [RO, RO, RO, RW] },
  attention: { kernel: 'forward-attention', code: reduceSource + attentionSource, entryPoint: 'main', constants: {}, paramsBytes: 32, storage: [RO, RO, RO, RW] },
  activation: { kernel: 'forward-elementwise', code: elementwiseSource, entryPoint: 'activation', constants: {}, paramsBytes: 16, storage: [RW, RW, RW] },
  appendKv: { kernel: 'forward-elementwise', code: elementwiseSource, entryPoint: 'append_kv', constants: {}, paramsBytes: 16, storage: [RW, RW, RW] },
  gather: { kernel: 'forward-gather', code: gatherSource, entryPoint: 'main', constants: {}, paramsBytes: 32, storage: [RO, RO, RW] },
} satisfies Record<string, KernelPipelineSpec>;

/** The matmul pipeline for a weight layout (0: in-out, 1: out-in) and rows of y per invocation (1 or 4). */
function matmulSpec(order: number, rows: number): KernelPipelineSpec {
  return { kernel: 'forward-matmul', code: matmulSource, entryPoint: 'main', constants: { ORDER: order, ROWS: rows }, paramsBytes: 48, storage: [RO, RO, RO, RW] };
}

/** Splits `count` workgroups of a 1-D kernel into a grid the device accepts. */
function grid1d(count: number, maxPerDimension: number): [number, number] {
  if (count <= maxPerDimension) return [Math.max(1, count), 1];
  const y = Math.ceil(count / maxPerDimension);
  return [Math.ceil(count / y), y];
}

/** The forward-pass kernels, prepared for one device. */
export class ForwardKernels {
  private readonly temporaries: GPUBuffer[] = [];
  /** Bindings a kernel declares but a call does not use (two: writable bindings may not alias). */
  private readonly dummy: GPUBuffer;
  private readonly dummy2: GPUBuffer;

  private constructor(readonly device: GPUDevice) {
    this.dummy = device.createBuffer({ label: 'forward unused binding', size: 16, usage: GPUBufferUsage.STORAGE });
    this.dummy2 = device.createBuffer({ label: 'forward unused binding 2', size: 16, usage: GPUBufferUsage.STORAGE });
  }

  /** Builds the pipelines (cached per device) and returns the kernels. */
  static prepare(device: GPUDevice): ForwardKernels {
    for (const spec of Object.values(SPECS)) kernelPipeline(device, spec);
    for (const order of [0, 1]) for (const rows of [1, 4]) kernelPipeline(device, matmulSpec(order, rows));
    return new ForwardKernels(device);
  }

  /** Rows of a `cols`-wide f32 matrix one binding may hold on this device. */
  rowsPerChunk(cols: number): number {
    const limit = Math.min(this.device.limits.maxStorageBufferBindingSize, this.device.limits.maxBufferSize);
    return Math.max(1, Math.floor(limit / (Math.max(1, cols) * 4)));
  }

  /**
   * Uploads a `[rows, cols]` matrix in row chunks that fit the binding limit (`maxChunkRows` makes
   * them smaller, to exercise chunking on small matrices).
   */
  uploadMatrix(values: Float32Array, rows: number, cols: number, label = 'forward weight', maxChunkRows = Infinity): GpuMatrix {
    const per = Math.max(1, Math.min(this.rowsPerChunk(cols), maxChunkRows));
    const chunks: GpuMatrixChunk[] = [];
    for (let rowStart = 0; rowStart < rows || chunks.length === 0; rowStart += per) {
      const rowCount = Math.min(per, rows - rowStart);
      const buffer = this.storage(Math.max(1, rowCount * cols), `${label} rows ${rowStart}+${rowCount}`);
      if (rowCount > 0) this.device.queue.writeBuffer(buffer, 0, values as Float32Array<ArrayBuffer>, rowStart * cols, rowCount * cols);
      chunks.push({ buffer, rowStart, rowCount });
      if (rows === 0) break;
    }
    return { rows, cols, chunks };
  }

  /** A storage buffer of `floats` f32 values (copyable both ways). */
  storage(floats: number, label = 'forward buffer'): GPUBuffer {
    return this.device.createBuffer({ label, size: Math.max(16, Math.ceil((floats * 4) / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
  }

  private uniform(words: ArrayBuffer): GPUBuffer {
    const buffer = this.device.createBuffer({ label: 'forward params', size: words.byteLength, usage: GPUBufferUsage.UNIFORM, mappedAtCreation: true });
    new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(words));
    buffer.unmap();
    this.temporaries.push(buffer);
    return buffer;
  }

  private dispatch(pass: GPUComputePassEncoder, spec: KernelPipelineSpec, params: ArrayBuffer, buffers: readonly GPUBuffer[], x: number, y = 1): void {
    const pipeline = kernelPipeline(this.device, spec);
    const bindGroup = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: this.uniform(params) } }, ...buffers.map((buffer, i) => ({ binding: i + 1, resource: { buffer } }))],
    });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y);
  }

  /**
   * `y[r, :] (+)= alpha·(x[r, :]·W) + bias` for `rows` rows; W is `[in, out]` (`in-out`, one chunk)
   * or `[out, in]` (`out-in`, chunked by output rows).
   */
  matmul(pass: GPUComputePassEncoder, p: { x: GPUBuffer; w: GpuMatrix; order: WeightOrder; bias: GPUBuffer | null; y: GPUBuffer; rows: number; inDim: number; outDim: number; alpha?: number; accumulate?: boolean }): void {
    if (p.rows === 0 || p.outDim === 0) return;
    if (p.order === 'in-out' && p.w.chunks.length !== 1) throw new RangeError(`a [${p.inDim}, ${p.outDim}] Conv1D weight does not fit one binding on this device`);
    for (const chunk of p.w.chunks) {
      const outDim = p.order === 'in-out' ? p.outDim : chunk.rowCount;
      const col0 = p.order === 'in-out' ? 0 : chunk.rowStart;
      const params = new ArrayBuffer(48);
      const u = new Uint32Array(params);
      const f = new Float32Array(params);
      u[0] = p.rows;
      u[1] = p.inDim;
      u[2] = outDim;
      u[3] = p.order === 'in-out' ? 0 : 1;
      f[4] = p.alpha ?? 1;
      u[5] = p.accumulate ? 1 : 0;
      u[6] = p.bias ? 1 : 0;
      u[7] = p.outDim;
      u[8] = col0;
      // GPT-2's chunked Linear weights (lm_head, score) have no bias; a biased one must fit one binding.
      if (p.bias && p.w.chunks.length > 1) throw new RangeError('a bias on a chunked Linear weight is not supported');
      // One row (a decoding step) takes the 1-row pipeline; each layout has its own.
      const rowsPerInvocation = p.rows === 1 ? 1 : 4;
      this.dispatch(pass, matmulSpec(u[3]!, rowsPerInvocation), params, [p.x, chunk.buffer, p.bias ?? this.dummy, p.y], Math.ceil(outDim / 256), Math.ceil(p.rows / rowsPerInvocation));
    }
  }

  /** Layer norm of `rows` rows of `dim` values. */
  layerNorm(pass: GPUComputePassEncoder, p: { x: GPUBuffer; weight: GPUBuffer; bias: GPUBuffer; y: GPUBuffer; rows: number; dim: number; eps: number }): void {
    if (p.rows === 0) return;
    const params = new ArrayBuffer(16);
    new Uint32Array(params).set([p.rows, p.dim]);
    new Float32Array(params)[2] = p.eps;
    this.dispatch(pass, SPECS.layerNorm, params, [p.x, p.weight, p.bias, p.y], p.rows);
  }

  /** Causal attention of the last `queries` positions; q from fused qkv rows of stride 3·heads·headDim. */
  attention(pass: GPUComputePassEncoder, p: { qkv: GPUBuffer; keys: GPUBuffer; values: GPUBuffer; out: GPUBuffer; queries: number; past: number; heads: number; headDim: number; scale: number }): void {
    if (p.past + p.queries > ATTENTION_MAX_POSITIONS) throw new RangeError(`attention over ${p.past + p.queries} positions: the kernel holds at most ${ATTENTION_MAX_POSITIONS}`);
    if (p.queries === 0) return;
    const params = new ArrayBuffer(32);
    const u = new Uint32Array(params);
    u.set([p.queries, p.past, p.heads, p.headDim]);
    new Float32Array(params)[4] = p.scale;
    u[5] = 3 * p.heads * p.headDim;
    this.dispatch(pass, SPECS.attention, params, [p.qkv, p.keys, p.values, p.out], p.queries, p.heads);
  }

  /** Applies an activation to `count` values in place. */
  activation(pass: GPUComputePassEncoder, p: { x: GPUBuffer; count: number; kind: Activation }): void {
    if (p.count === 0) return;
    const params = new ArrayBuffer(16);
    new Uint32Array(params).set([p.count, ACTIVATION_CODE[p.kind], 0, 0]);
    const [x, y] = grid1d(Math.ceil(p.count / 64), this.device.limits.maxComputeWorkgroupsPerDimension);
    this.dispatch(pass, SPECS.activation, params, [p.x, this.dummy, this.dummy2], x, y);
  }

  /** Appends the k and v parts of `rows` fused qkv rows to the caches at row `past`. */
  appendKv(pass: GPUComputePassEncoder, p: { qkv: GPUBuffer; keys: GPUBuffer; values: GPUBuffer; rows: number; width: number; past: number }): void {
    const count = p.rows * p.width;
    if (count === 0) return;
    const params = new ArrayBuffer(16);
    new Uint32Array(params).set([count, 0, p.width, p.past]);
    const [x, y] = grid1d(Math.ceil(count / 64), this.device.limits.maxComputeWorkgroupsPerDimension);
    this.dispatch(pass, SPECS.appendKv, params, [p.qkv, p.keys, p.values], x, y);
  }

  /**
   * `out[i, :] (+)= alpha·table[ids[i], :]` (rows of a chunked table), or with `columns`,
   * `alpha·table[:, ids[i]]` of a `[dim, tableRows]` matrix.
   */
  gather(pass: GPUComputePassEncoder, p: { ids: GPUBuffer; count: number; table: GpuMatrix; out: GPUBuffer; columns?: boolean; alpha?: number; accumulate?: boolean }): void {
    const dim = p.columns ? p.table.rows : p.table.cols;
    if (p.count === 0 || dim === 0) return;
    const chunks = p.columns ? [p.table.chunks[0]!] : p.table.chunks;
    if (p.columns && p.table.chunks.length !== 1) throw new RangeError('a column gather needs the matrix in one binding');
    for (const chunk of chunks) {
      const params = new ArrayBuffer(32);
      const u = new Uint32Array(params);
      u.set([p.count, dim, p.columns ? 1 : 0, chunk.rowStart, chunk.rowCount, p.table.cols, p.accumulate ? 1 : 0]);
      new Float32Array(params)[7] = p.alpha ?? 1;
      const [x, y] = grid1d(Math.ceil((p.count * dim) / 64), this.device.limits.maxComputeWorkgroupsPerDimension);
      this.dispatch(pass, SPECS.gather, params, [p.ids, chunk.buffer, p.out], x, y);
    }
  }

  /** Destroys the uniform buffers of every dispatch recorded so far (call after their work is done). */
  release(): void {
    for (const b of this.temporaries.splice(0)) b.destroy();
  }

  /** Destroys the kernels' own buffers too. */
  destroy(): void {
    this.release();
    this.dummy.destroy();
    this.dummy2.destroy();
  }
}
