/// <reference types="@webgpu/types" />
/**
 * The runner page's merge driver (browser code, bundled by build-page.mjs): fetches a module's LoRA
 * factors from the local server, runs the LoRA merge kernel on a zero matrix, and POSTs ΔW back
 * (see {@link PageDeltaRequest}). Only URLs, shapes and scales arrive through DevTools; tensor bytes
 * travel over HTTP.
 */
import { decodeToF32 } from '@lorafuse/core';
import { encodeLoraMerge, runLoraMerge } from '@lorafuse/kernels';
import { fetchBytes, getDevice, postBytes, registerPageApi } from '@lorafuse/runner/page';
import type { PageDeltaRequest, PageDeltaResult } from './protocol.js';

function storageBuffer(device: GPUDevice, label: string, values: Float32Array): GPUBuffer {
  // Size rounded up to 4 and at least 4: WebGPU refuses zero-sized mapped writes and unaligned sizes.
  const size = Math.max(4, Math.ceil(values.byteLength / 4) * 4);
  const buffer = device.createBuffer({ label, size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  if (values.byteLength > 0) device.queue.writeBuffer(buffer, 0, values.buffer, values.byteOffset, values.byteLength);
  return buffer;
}

async function loraDelta(req: PageDeltaRequest): Promise<PageDeltaResult> {
  const device = await getDevice();
  const factorBytes = await Promise.all(req.deltas.flatMap((d) => [fetchBytes(d.a.url), fetchBytes(d.b.url)]));
  const byteLength = req.rows * req.cols * 4;
  const buffers: GPUBuffer[] = [];
  try {
    // New buffers are zero-filled: the kernel's in-place W += ... then leaves ΔW in it.
    const dBuf = device.createBuffer({ label: `ΔW ${req.name}`, size: Math.max(4, byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    buffers.push(dBuf);
    device.pushErrorScope('validation');
    device.pushErrorScope('out-of-memory');
    const encoder = device.createCommandEncoder({ label: `delta ${req.name}` });
    req.deltas.forEach((d, i) => {
      const a = storageBuffer(device, `A ${d.modulePath}`, decodeToF32(d.a.dtype, factorBytes[2 * i]!));
      const b = storageBuffer(device, `B ${d.modulePath}`, decodeToF32(d.b.dtype, factorBytes[2 * i + 1]!));
      buffers.push(a, b);
      encodeLoraMerge(device, encoder, { w: dBuf, a, b, rows: req.rows, cols: req.cols, rank: d.rank, orientation: d.orientation, scale: d.scale, label: d.modulePath });
    });
    const readback = device.createBuffer({ label: `readback ${req.name}`, size: dBuf.size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    buffers.push(readback);
    encoder.copyBufferToBuffer(dBuf, 0, readback, 0, dBuf.size);
    device.queue.submit([encoder.finish()]);
    const oom = await device.popErrorScope();
    const validation = await device.popErrorScope();
    if (oom) throw new Error(`out of GPU memory merging ${req.name}: ${oom.message}`);
    if (validation) throw new Error(`WebGPU validation error merging ${req.name}: ${validation.message}`);
    await readback.mapAsync(GPUMapMode.READ);
    try {
      // Uploaded from the mapped range itself (the Blob body copies it once).
      await postBytes(req.uploadUrl, new Uint8Array(readback.getMappedRange(0, byteLength)));
    } finally {
      readback.unmap();
    }
    return { bytes: byteLength };
  } finally {
    for (const b of buffers) b.destroy();
  }
}

registerPageApi({ loraDelta });

// Compile the kernel's pipeline now, while Node copies the unchanged tensors, rather than in the
// first merge: on SwiftShader that is ~0.1 s. A failure here is left for the first merge to report.
void getDevice()
  .then((device) => runLoraMerge(device, { rows: 4, cols: 4, rank: 1, orientation: 'linear', w: new Float32Array(16), a: new Float32Array(4), b: new Float32Array(4), scale: 1, label: 'warm-up' }))
  .catch(() => {});
