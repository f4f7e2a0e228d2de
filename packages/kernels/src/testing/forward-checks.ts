/// <reference types="@webgpu/types" />
/**
 * The forward-pass kernels against their CPU twins on one device, on shapes chosen to be awkward:
 * sizes not multiples of the 64-wide workgroups, rank 1, one row, chunked matrices, a cache with a
 * past. No Node APIs: the Chromium page and the Dawn test both run these.
 */
import { ForwardKernels, type GpuMatrix } from '../index.js';
import { activationRef, causalAttentionRef, embeddingRef, layerNormRef, matmulRef, type Activation, type WeightOrder } from '../reference.js';
import { seededUniform } from './float-arrays.js';
import { readBufferBytes } from './gpu-buffers.js';

/** Largest error of one check, and how many elements broke `|gpu - ref| <= atol + rtol·|ref|`. */
export interface CheckResult {
  readonly name: string;
  readonly elements: number;
  readonly maxAbs: number;
  readonly violations: number;
}

const ATOL = 1e-5;
const RTOL = 1e-5;

async function readBack(device: GPUDevice, buffer: GPUBuffer, floats: number): Promise<Float32Array> {
  return new Float32Array((await readBufferBytes(device, buffer, floats * 4)).buffer);
}

function compare(name: string, got: Float32Array, want: Float32Array): CheckResult {
  let maxAbs = got.length === want.length ? 0 : Infinity;
  let violations = got.length === want.length ? 0 : Math.max(got.length, want.length);
  for (let i = 0; i < Math.min(got.length, want.length); i++) {
    const d = Math.abs(got[i]! - want[i]!);
    if (!(d <= maxAbs)) maxAbs = d;
    if (!(d <= ATOL + RTOL * Math.abs(want[i]!))) violations++;
  }
  return { name, elements: want.length, maxAbs, violations };
}

/** Runs every check on `device`. */
export async function runForwardChecks(device: GPUDevice): Promise<CheckResult[]> {
  const k = ForwardKernels.prepare(device);
  const results: CheckResult[] = [];
  let seed = 1;
  const run = async (name: string, floats: number, record: (pass: GPUComputePassEncoder) => GPUBuffer, want: Float32Array) => {
    device.pushErrorScope('validation');
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    const out = record(pass);
    pass.end();
    device.queue.submit([enc.finish()]);
    const error = await device.popErrorScope();
    if (error) throw new Error(`${name}: ${error.message}`);
    results.push(compare(name, await readBack(device, out, floats), want));
    k.release();
  };
  const upload = (values: Float32Array, rows: number, cols: number, maxChunkRows = Infinity): GpuMatrix => k.uploadMatrix(values, rows, cols, 'test', maxChunkRows);
  const vec = (values: Float32Array) => upload(values, 1, values.length).chunks[0]!.buffer;

  // matmul: both layouts, bias, scale, accumulation, one row, odd sizes, output chunks, and rows
  // and columns past one 8 x 8 block and one 256-column workgroup (17 rows, 263 columns, odd in_dim).
  const shapes: Array<[number, number, number]> = [[1, 1, 1], [3, 7, 65], [2, 129, 5], [5, 64, 300], [1, 256, 1], [1, 67, 130], [17, 33, 263], [9, 8, 8]];
  for (const [rows, inDim, outDim] of shapes) {
    for (const order of ['in-out', 'out-in'] as WeightOrder[]) {
      for (const variant of ['plain', 'bias+accumulate+alpha', 'chunked'] as const) {
        if (variant === 'chunked' && (order === 'in-out' || outDim < 3)) continue;
        const x = seededUniform(seed++, rows * inDim);
        const w = seededUniform(seed++, inDim * outDim);
        const bias = variant === 'bias+accumulate+alpha' ? seededUniform(seed++, outDim) : null;
        const start = seededUniform(seed++, rows * outDim);
        const alpha = variant === 'bias+accumulate+alpha' ? 0.37 : 1;
        const accumulate = variant === 'bias+accumulate+alpha';
        // The reference applies alpha to x·W only, as the kernel does: scale the product, then add the bias and the start.
        const product = matmulRef(x, w, { rows, inDim, outDim, order });
        const want = new Float32Array(rows * outDim);
        for (let i = 0; i < want.length; i++) want[i] = alpha * product[i]! + (bias ? bias[i % outDim]! : 0) + (accumulate ? start[i]! : 0);
        const wm = order === 'in-out' ? upload(w, inDim, outDim) : upload(w, outDim, inDim, variant === 'chunked' ? Math.ceil(outDim / 3) : Infinity);
        await run(`matmul ${order} ${rows}x${inDim}x${outDim} ${variant}${variant === 'chunked' ? ` (${wm.chunks.length} chunks)` : ''}`, rows * outDim, (pass) => {
          const y = upload(accumulate ? start : new Float32Array(rows * outDim), rows, outDim).chunks[0]!.buffer;
          k.matmul(pass, { x: vec(x), w: wm, order, bias: bias ? vec(bias) : null, y, rows, inDim, outDim, alpha, accumulate });
          return y;
        }, want);
      }
    }
  }

  for (const [rows, dim] of [[1, 1], [3, 5], [2, 64], [4, 130], [1, 768]] as const) {
    const x = seededUniform(seed++, rows * dim, 3);
    const w = seededUniform(seed++, dim);
    const b = seededUniform(seed++, dim);
    await run(`layer norm ${rows}x${dim}`, rows * dim, (pass) => {
      const y = k.storage(rows * dim);
      k.layerNorm(pass, { x: vec(x), weight: vec(w), bias: vec(b), y, rows, dim, eps: 1e-5 });
      return y;
    }, layerNormRef(x, rows, dim, w, b, 1e-5));
  }

  // attention: queries after a past, more positions than threads, head dims 1 and 65.
  for (const [queries, past, heads, headDim] of [[1, 0, 1, 1], [3, 0, 2, 4], [1, 69, 3, 65], [5, 130, 2, 8], [70, 0, 1, 3]] as const) {
    const width = heads * headDim;
    const positions = past + queries;
    const qkv = seededUniform(seed++, queries * 3 * width, 2);
    const pastK = seededUniform(seed++, past * width, 2);
    const pastV = seededUniform(seed++, past * width, 2);
    const keys = new Float32Array(positions * width);
    const values = new Float32Array(positions * width);
    keys.set(pastK);
    values.set(pastV);
    const q = new Float32Array(queries * width);
    for (let i = 0; i < queries; i++) {
      q.set(qkv.subarray(i * 3 * width, i * 3 * width + width), i * width);
      keys.set(qkv.subarray(i * 3 * width + width, i * 3 * width + 2 * width), (past + i) * width);
      values.set(qkv.subarray(i * 3 * width + 2 * width, (i + 1) * 3 * width), (past + i) * width);
    }
    const scale = 1 / Math.sqrt(headDim);
    const want = causalAttentionRef({ q, k: keys, v: values, queries, positions, heads, headDim, scale });
    const kc = new Float32Array(positions * width);
    kc.set(pastK);
    const vc = new Float32Array(positions * width);
    vc.set(pastV);
    const kBuf = upload(kc, positions, width).chunks[0]!.buffer;
    const vBuf = upload(vc, positions, width).chunks[0]!.buffer;
    const qkvBuf = vec(qkv);
    await run(`append kv ${queries} after ${past}`, positions * width, (pass) => {
      k.appendKv(pass, { qkv: qkvBuf, keys: kBuf, values: vBuf, rows: queries, width, past });
      return kBuf;
    }, keys);
    await run(`attention ${queries} queries after ${past}, ${heads}x${headDim}`, queries * width, (pass) => {
      const out = k.storage(queries * width);
      k.attention(pass, { qkv: qkvBuf, keys: kBuf, values: vBuf, out, queries, past, heads, headDim, scale });
      return out;
    }, want);
    // Blocks of 2 queries (the last one shorter where `queries` is odd).
    await run(`attention ${queries} queries after ${past}, ${heads}x${headDim}, in blocks of 2`, queries * width, (pass) => {
      const out = k.storage(queries * width);
      k.attention(pass, { qkv: qkvBuf, keys: kBuf, values: vBuf, out, queries, past, heads, headDim, scale, scoresBytes: 2 * 4 * heads * positions });
      return out;
    }, want);
  }

  for (const kind of ['gelu_new', 'gelu', 'relu', 'silu', 'quick_gelu'] as Activation[]) {
    const x = seededUniform(seed++, 131, 6);
    x[0] = 40;
    x[1] = -40;
    await run(`activation ${kind} (131 values, |x| up to 40)`, x.length, (pass) => {
      const buf = vec(x.slice());
      k.activation(pass, { x: buf, count: x.length, kind });
      return buf;
    }, activationRef(kind, x.slice()));
  }

  // gathers: rows of a chunked table, then columns of a [rank, rows] matrix added with a scale.
  const rowsT = 37;
  const dim = 5;
  const table = seededUniform(seed++, rowsT * dim);
  const ids = [36, 0, 17, 17, 5];
  const idBuf = device.createBuffer({ size: 32, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(idBuf, 0, Uint32Array.from(ids));
  await run('gather rows of a table in 4 chunks', ids.length * dim, (pass) => {
    const out = k.storage(ids.length * dim);
    k.gather(pass, { ids: idBuf, count: ids.length, table: upload(table, rowsT, dim, 10), out });
    return out;
  }, embeddingRef(table, dim, ids));
  const rank = 3;
  const a = seededUniform(seed++, rank * rowsT);
  const start = seededUniform(seed++, ids.length * rank);
  const wantCols = new Float32Array(ids.length * rank);
  ids.forEach((id, i) => {
    for (let r = 0; r < rank; r++) wantCols[i * rank + r] = start[i * rank + r]! + 0.5 * a[r * rowsT + id]!;
  });
  await run('gather columns, scaled and accumulated', ids.length * rank, (pass) => {
    const out = vec(start.slice());
    k.gather(pass, { ids: idBuf, count: ids.length, table: upload(a, rank, rowsT), out, columns: true, alpha: 0.5, accumulate: true });
    return out;
  }, wantCols);
  k.destroy();
  return results;
}
