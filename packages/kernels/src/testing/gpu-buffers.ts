/// <reference types="@webgpu/types" />
/**
 * Moving test and benchmark data to and from the GPU: a storage buffer holding given bytes, and the
 * bytes of a buffer read back through a staging buffer. No Node APIs (pages use them too).
 */

/** A STORAGE | COPY_SRC | COPY_DST buffer holding `bytes` (its size rounded up to whole words). */
export function storageBufferOf(device: GPUDevice, bytes: Uint8Array<ArrayBuffer>, label: string): GPUBuffer {
  const buffer = device.createBuffer({ label, size: Math.max(4, Math.ceil(bytes.length / 4) * 4), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  if (bytes.length > 0) device.queue.writeBuffer(buffer, 0, bytes, 0, Math.floor(bytes.length / 4) * 4);
  if (bytes.length % 4 !== 0) {
    const tail = new Uint8Array(4);
    tail.set(bytes.subarray(Math.floor(bytes.length / 4) * 4));
    device.queue.writeBuffer(buffer, Math.floor(bytes.length / 4) * 4, tail);
  }
  return buffer;
}

/** The first `size` bytes of `buffer` (default: all of it; COPY_SRC usage needed). */
export async function readBufferBytes(device: GPUDevice, buffer: GPUBuffer, size = buffer.size): Promise<Uint8Array<ArrayBuffer>> {
  const copied = Math.ceil(size / 4) * 4;
  const staging = device.createBuffer({ size: Math.max(4, copied), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder();
  if (copied > 0) enc.copyBufferToBuffer(buffer, 0, staging, 0, copied);
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = new Uint8Array(staging.getMappedRange().slice(0, size));
  staging.unmap();
  staging.destroy();
  return out;
}
