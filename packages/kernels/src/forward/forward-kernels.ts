/**
 * The WGSL kernels of a transformer forward pass over `GPUBuffer`s: layer norm, matmul in both weight
 * layouts (with a scale and accumulation, which is how LoRA terms and residual adds are applied),
 * causal attention over a key/value cache, activations, the cache append, and embedding gathers. Each
 * has its CPU twin in this folder. Every call records its dispatches into the given pass; the small
 * uniform and scratch buffers it creates are released by {@link ForwardKernels.release} once the
 * work is done.
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

/** Most bytes of attention scores one block of queries holds (the scores buffer of a call). */
const ATTENTION_SCORES_BYTES = 32 * 1024 * 1024;

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
  attentionScores: { kernel: 'forward-attention', code: attentionSource, entryPoint: 'scores', constants: {}, paramsBytes: 48, storage: [RO, RO, RO, RW, RW, RW] },
  attentionSoftmax: { kernel: 'forward-attention', code: attentionSource, entryPoint: 'softmax', constants: {}, paramsBytes: 48, storage: [RO, RO, RO, RW, RW, RW] },
  attentionWeigh: { kernel: 'forward-attention', code: attentionSource, entryPoint: 'weigh', constants: {}, paramsBytes: 48, storage: [RO, RO, RO, RW, RW, RW] },
  activation: { kernel: 'forward-elementwise', code: elementwiseSource, entryPoint: 'activation', constants: {}, paramsBytes: 16, storage: [RW, RW, RW] },
  appendKv: { kernel: 'forward-elementwise', code: elementwiseSource, entryPoint: 'append_kv', constants: {}, paramsBytes: 16, storage: [RW, RW, RW] },
  gather: { kernel: 'forward-gather', code: gatherSource, entryPoint: 'main', constants: {}, paramsBytes: 32, storage: [RO, RO, RW] },
} satisfies Record<string, KernelPipelineSpec>;

/**
 * The matmul pipeline for a weight layout (0: in-out, 1: out-in): `main_block` (8 x 8 blocks of y
 * per invocation, 32 invocations per workgroup) for several rows, `main` (1 x 4, 64) for one.
 */
function matmulSpec(order: number, block: boolean): KernelPipelineSpec {
  return { kernel: 'forward-matmul', code: matmulSource, entryPoint: block ? 'main_block' : 'main', constants: { ORDER: order }, paramsBytes: 48, storage: [RO, RO, RO, RW] };
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
    for (const order of [0, 1]) for (const block of [false, true]) kernelPipeline(device, matmulSpec(order, block));
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

  /** A storage buffer destroyed with the uniforms by {@link release}. */
  private scratch(floats: number, label: string): GPUBuffer {
    const buffer = this.storage(floats, label);
    this.temporaries.push(buffer);
    return buffer;
  }

  private dispatch(pass: GPUComputePassEncoder, spec: KernelPipelineSpec, params: ArrayBuffer, buffers: readonly GPUBuffer[], x: number, y = 1, z = 1): void {
    const pipeline = kernelPipeline(this.device, spec);
    const bindGroup = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: this.uniform(params) } }, ...buffers.map((buffer, i) => ({ binding: i + 1, resource: { buffer } }))],
    });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
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
      const buffers = [p.x, chunk.buffer, p.bias ?? this.dummy, p.y];
      if (p.rows === 1) this.dispatch(pass, matmulSpec(u[3]!, false), params, buffers, Math.ceil(outDim / 256), 1);
      else this.dispatch(pass, matmulSpec(u[3]!, true), params, buffers, Math.ceil(outDim / 256), Math.ceil(p.rows / 8));
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

  /**
   * Causal attention of the last `queries` positions; q from fused qkv rows of stride 3·heads·headDim.
   * Queries go in blocks whose scores fit `scoresBytes` (default {@link ATTENTION_SCORES_BYTES}; tests
   * make it small to get several blocks); each block is three
   * dispatches (scores, softmax, weighted sum) into scratch buffers released with the uniforms.
   */
  attention(pass: GPUComputePassEncoder, p: { qkv: GPUBuffer; keys: GPUBuffer; values: GPUBuffer; out: GPUBuffer; queries: number; past: number; heads: number; headDim: number; scale: number; scoresBytes?: number }): void {
    if (p.queries === 0 || p.heads === 0 || p.headDim === 0) return;
    const span = p.past + p.queries;
    const maxGroups = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (p.heads > maxGroups) throw new RangeError(`attention with ${p.heads} heads: the device takes at most ${maxGroups} workgroups per dimension`);
    const limit = Math.min(p.scoresBytes ?? ATTENTION_SCORES_BYTES, this.device.limits.maxStorageBufferBindingSize);
    const block = Math.max(1, Math.min(p.queries, maxGroups, Math.floor(limit / (4 * p.heads * span))));
    const scores = this.scratch(p.heads * block * span, 'forward attention scores');
    const totals = this.scratch(p.heads * block, 'forward attention totals');
    const buffers = [p.qkv, p.keys, p.values, p.out, scores, totals];
    for (let q0 = 0; q0 < p.queries; q0 += block) {
      const rows = Math.min(block, p.queries - q0);
      const params = new ArrayBuffer(48);
      const u = new Uint32Array(params);
      u.set([p.queries, p.past, p.heads, p.headDim]);
      new Float32Array(params)[4] = p.scale;
      u.set([3 * p.heads * p.headDim, q0, rows, span], 5);
      this.dispatch(pass, SPECS.attentionScores, params, buffers, Math.ceil((p.past + q0 + rows) / 64), rows, p.heads);
      this.dispatch(pass, SPECS.attentionSoftmax, params, buffers, Math.ceil(rows / 64), p.heads);
      this.dispatch(pass, SPECS.attentionWeigh, params, buffers, Math.ceil(p.headDim / 64), rows, p.heads);
    }
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
