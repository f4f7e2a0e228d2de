/// <reference types="@webgpu/types" />
/**
 * The runner page's merge driver (browser code, bundled by build-page.mjs): fetches the planned byte
 * ranges from the local server, runs the LoRA merge kernel, and POSTs the merged tensor back.
 * Only URLs, shapes and scales arrive through DevTools; tensor bytes travel over HTTP.
 */
import { decodeToF32, encodeFromF32, type FloatCodecDtype } from '@lorafuse/core';
import { encodeLoraMerge } from '@lorafuse/kernels';
import { fetchBytes, getDevice, postBytes, registerPageApi } from '@lorafuse/runner/page';
import type { PageMergeRequest, PageMergeResult } from './protocol.js';

function f32Bytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

function storageBuffer(device: GPUDevice, label: string, values: Float32Array, extraUsage = 0): GPUBuffer {
  // Size rounded up to 4 and at least 4: WebGPU refuses zero-sized mapped writes and unaligned sizes.
  const size = Math.max(4, Math.ceil(values.byteLength / 4) * 4);
  const buffer = device.createBuffer({ label, size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | extraUsage });
  if (values.byteLength > 0) device.queue.writeBuffer(buffer, 0, values.buffer, values.byteOffset, values.byteLength);
  return buffer;
}

async function mergeTensor(req: PageMergeRequest): Promise<PageMergeResult> {
  const device = await getDevice();
  const [wBytes, ...factorBytes] = await Promise.all([
    fetchBytes(req.w.url),
    ...req.deltas.flatMap((d) => [fetchBytes(d.a.url), fetchBytes(d.b.url)]),
  ]);
  // F32 bytes are used in place (fetchBytes returns a fresh, aligned buffer): one copy less.
  const w = req.w.dtype === 'F32' && wBytes!.byteOffset % 4 === 0 && wBytes!.byteLength % 4 === 0 ? new Float32Array(wBytes!.buffer, wBytes!.byteOffset, wBytes!.byteLength / 4) : decodeToF32(req.w.dtype, wBytes!);
  const buffers: GPUBuffer[] = [];
  try {
    const wBuf = storageBuffer(device, `W ${req.name}`, w, GPUBufferUsage.COPY_SRC);
    buffers.push(wBuf);
    device.pushErrorScope('validation');
    device.pushErrorScope('out-of-memory');
    const encoder = device.createCommandEncoder({ label: `merge ${req.name}` });
    req.deltas.forEach((d, i) => {
      const a = storageBuffer(device, `A ${d.modulePath}`, decodeToF32(d.a.dtype, factorBytes[2 * i]!));
      const b = storageBuffer(device, `B ${d.modulePath}`, decodeToF32(d.b.dtype, factorBytes[2 * i + 1]!));
      buffers.push(a, b);
      encodeLoraMerge(device, encoder, { w: wBuf, a, b, rows: req.w.rows, cols: req.w.cols, rank: d.rank, orientation: d.orientation, scale: d.scale, label: d.modulePath });
    });
    const readback = device.createBuffer({ label: `readback ${req.name}`, size: wBuf.size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    buffers.push(readback);
    encoder.copyBufferToBuffer(wBuf, 0, readback, 0, wBuf.size);
    device.queue.submit([encoder.finish()]);
    const oom = await device.popErrorScope();
    const validation = await device.popErrorScope();
    if (oom) throw new Error(`out of GPU memory merging ${req.name}: ${oom.message}`);
    if (validation) throw new Error(`WebGPU validation error merging ${req.name}: ${validation.message}`);
    await readback.mapAsync(GPUMapMode.READ);
    // Counted and uploaded from the mapped range itself (the Blob body copies it once).
    const merged = new Float32Array(readback.getMappedRange(0, w.byteLength));
    let nonFinite = 0;
    for (let i = 0; i < merged.length; i++) {
      const v = merged[i]!;
      if (v - v !== 0) nonFinite++;
    }
    const out = req.outDtype === 'F32' ? f32Bytes(merged) : encodeFromF32(req.outDtype as FloatCodecDtype, merged);
    try {
      await postBytes(req.uploadUrl, out);
    } finally {
      readback.unmap();
    }
    return { nonFinite, bytes: out.byteLength };
  } finally {
    for (const b of buffers) b.destroy();
  }
}

registerPageApi({ mergeTensor });
