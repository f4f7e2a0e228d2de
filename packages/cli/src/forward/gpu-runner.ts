/**
 * GPT-2's forward pass on a GPUDevice with the WGSL kernels: the same composition as the CPU
 * reference (core's forwardGpt2), recorded as one compute pass per call, with the key/value cache
 * kept on the GPU while decoding. No Node APIs: it runs wherever a GPUDevice is.
 */
import { argmaxRow, attentionScale, EnvironmentError, checkForwardInput, foldDora, type EmbeddingUnit, type Gpt2Model, type LinearUnit, type LogitsRunner, type NormUnit } from '@lorafuse/core';
import { ForwardKernels, type GpuMatrix } from '@lorafuse/kernels';

interface GpuCache {
  readonly keys: GPUBuffer[];
  readonly values: GPUBuffer[];
  length: number;
}

/** A runner over `kernels.device`; `description` names the device in reports. */
export function gpuLogitsRunner(kernels: ForwardKernels, asBuilt: Gpt2Model): LogitsRunner & { destroy(): void } {
  // The kernels have matrix products only: DoRA's fixed per-feature factors go into the weights.
  const model = foldDora(asBuilt);
  const { config } = model;
  const device = kernels.device;
  const E = config.nEmbd;
  const uploaded = new Map<Float32Array, GpuMatrix>();
  const matrix = (values: Float32Array, rows: number, cols: number): GpuMatrix => {
    let m = uploaded.get(values);
    if (!m) {
      m = kernels.uploadMatrix(values, rows, cols);
      uploaded.set(values, m);
    }
    return m;
  };
  const vector = (values: Float32Array): GPUBuffer => matrix(values, 1, values.length).chunks[0]!.buffer;

  // Upload everything up front: decoding then moves only ids and one row of logits.
  const weightOf = (u: LinearUnit) => (u.order === 'in-out' ? matrix(u.weight, u.inDim, u.outDim) : matrix(u.weight, u.outDim, u.inDim));
  const linears = [...model.blocks.flatMap((b) => [b.attn, b.attnProj, b.fc, b.proj]), model.head];
  for (const u of linears) {
    weightOf(u);
    if (u.bias) vector(u.bias);
    for (const t of u.lora) {
      matrix(t.a, t.rank, u.inDim);
      matrix(t.b, u.outDim, t.rank);
    }
  }
  for (const n of [...model.blocks.flatMap((b) => [b.ln1, b.ln2]), model.lnF]) {
    vector(n.weight);
    vector(n.bias);
  }
  const wte = matrix(model.wte.table, model.wte.rows, E);
  const wpe = matrix(model.wpe, config.nPositions, E);
  for (const t of model.wte.lora) {
    matrix(t.a, t.rank, model.wte.rows);
    matrix(t.b, E, t.rank);
  }

  const scratch: GPUBuffer[] = [];
  const temp = (floats: number) => {
    const b = kernels.storage(floats, 'forward activation');
    scratch.push(b);
    return b;
  };
  const u32Buffer = (values: readonly number[]) => {
    const b = device.createBuffer({ label: 'forward ids', size: Math.max(16, Math.ceil((values.length * 4) / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(b, 0, Uint32Array.from(values));
    scratch.push(b);
    return b;
  };

  const linear = (pass: GPUComputePassEncoder, u: LinearUnit, x: GPUBuffer, rows: number, into?: GPUBuffer): GPUBuffer => {
    const y = into ?? temp(rows * u.outDim);
    kernels.matmul(pass, { x, w: weightOf(u), order: u.order, bias: u.bias ? vector(u.bias) : null, y, rows, inDim: u.inDim, outDim: u.outDim, accumulate: into !== undefined });
    for (const t of u.lora) {
      const down = temp(rows * t.rank);
      kernels.matmul(pass, { x, w: matrix(t.a, t.rank, u.inDim), order: 'out-in', bias: null, y: down, rows, inDim: u.inDim, outDim: t.rank });
      kernels.matmul(pass, { x: down, w: matrix(t.b, u.outDim, t.rank), order: 'out-in', bias: null, y, rows, inDim: t.rank, outDim: u.outDim, alpha: t.scale, accumulate: true });
    }
    return y;
  };
  const norm = (pass: GPUComputePassEncoder, n: NormUnit, x: GPUBuffer, rows: number) => {
    const y = temp(rows * E);
    kernels.layerNorm(pass, { x, weight: vector(n.weight), bias: vector(n.bias), y, rows, dim: E, eps: config.eps });
    return y;
  };
  const embed = (pass: GPUComputePassEncoder, unit: EmbeddingUnit, ids: readonly number[], past: number) => {
    const T = ids.length;
    const h = temp(T * E);
    const idBuf = u32Buffer(ids);
    kernels.gather(pass, { ids: idBuf, count: T, table: wte, out: h });
    kernels.gather(pass, { ids: u32Buffer(ids.map((_, i) => past + i)), count: T, table: wpe, out: h, accumulate: true });
    for (const t of unit.lora) {
      const picked = temp(T * t.rank);
      kernels.gather(pass, { ids: idBuf, count: T, table: matrix(t.a, t.rank, unit.rows), out: picked, columns: true });
      kernels.matmul(pass, { x: picked, w: matrix(t.b, E, t.rank), order: 'out-in', bias: null, y: h, rows: T, inDim: t.rank, outDim: E, alpha: t.scale, accumulate: true });
    }
    return h;
  };

  const newCache = (): GpuCache => ({
    keys: model.blocks.map(() => kernels.storage(config.nPositions * E, 'forward key cache')),
    values: model.blocks.map(() => kernels.storage(config.nPositions * E, 'forward value cache')),
    length: 0,
  });
  const dropCache = (c: GpuCache) => [...c.keys, ...c.values].forEach((b) => b.destroy());

  /** Runs `ids` after the cache and reads back logits of rows `fromRow..T-1`. */
  const forward = async (ids: readonly number[], cache: GpuCache, fromRow: number): Promise<Float32Array> => {
    checkForwardInput(model, ids, cache.length);
    const T = ids.length;
    const past = cache.length;
    // A kernel misuse must fail the command, not read back zeros.
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    const encoder = device.createCommandEncoder({ label: 'gpt2 forward' });
    const pass = encoder.beginComputePass({ label: 'gpt2 forward' });
    const h = embed(pass, model.wte, ids, past);
    model.blocks.forEach((b, l) => {
      const qkv = linear(pass, b.attn, norm(pass, b.ln1, h, T), T);
      kernels.appendKv(pass, { qkv, keys: cache.keys[l]!, values: cache.values[l]!, rows: T, width: E, past });
      const o = temp(T * E);
      kernels.attention(pass, { qkv, keys: cache.keys[l]!, values: cache.values[l]!, out: o, queries: T, past, heads: config.nHead, headDim: config.headDim, scale: attentionScale(config, l) });
      linear(pass, b.attnProj, o, T, h);
      const inner = linear(pass, b.fc, norm(pass, b.ln2, h, T), T);
      kernels.activation(pass, { x: inner, count: T * config.nInner, kind: config.activation });
      linear(pass, b.proj, inner, T, h);
    });
    const logits = linear(pass, model.head, norm(pass, model.lnF, h, T), T);
    pass.end();
    const width = model.head.outDim;
    const bytes = (T - fromRow) * width * 4;
    const readback = device.createBuffer({ label: 'forward logits readback', size: Math.max(16, Math.ceil(bytes / 16) * 16), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    if (bytes > 0) encoder.copyBufferToBuffer(logits, fromRow * width * 4, readback, 0, bytes);
    device.queue.submit([encoder.finish()]);
    const validation = await device.popErrorScope();
    const memory = await device.popErrorScope();
    try {
      if (validation) throw new Error(`internal: the forward pass's GPU commands are invalid: ${validation.message}`);
      if (memory) throw new EnvironmentError('GPU_OUT_OF_MEMORY', `the GPU ran out of memory for the forward pass: ${memory.message}`, { hint: 'Use --device cpu, or a machine with more GPU memory.' });
      await readback.mapAsync(GPUMapMode.READ);
      const out = new Float32Array(readback.getMappedRange(0, Math.max(16, Math.ceil(bytes / 16) * 16)).slice(0, bytes));
      readback.unmap();
      cache.length += T;
      return out;
    } finally {
      readback.destroy();
      kernels.release();
      for (const b of scratch.splice(0)) b.destroy();
    }
  };

  return {
    model: asBuilt,
    async logits(ids) {
      const cache = newCache();
      try {
        return await forward(ids, cache, 0);
      } finally {
        dropCache(cache);
      }
    },
    async greedy(prompt, tokens, stopId = null) {
      const cache = newCache();
      const width = model.head.outDim;
      try {
        const out: number[] = [];
        let last = await forward(prompt, cache, prompt.length - 1);
        while (out.length < tokens && cache.length < config.nPositions) {
          const next = argmaxRow(last, 0, width);
          out.push(next);
          if (next === stopId || out.length === tokens || cache.length >= config.nPositions) break;
          last = await forward([next], cache, 0);
        }
        return out;
      } finally {
        dropCache(cache);
      }
    },
    destroy() {
      for (const m of uploaded.values()) for (const c of m.chunks) c.buffer.destroy();
      uploaded.clear();
    },
  };
}
