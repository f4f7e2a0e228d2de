/**
 * The Dawn executor: the same WGSL merge kernel as the Chromium executor, on Dawn inside this Node
 * process (see dawn-device.ts). No browser to start (a device in ~15 ms instead of ~0.7 s) and no
 * loopback transfers: A and B are written to the GPU, ΔW is read back and added to W in Node exactly
 * as the Chromium executor does it, so both WebGPU paths give the same bytes for the same kernel build.
 */
import { decodeToF32, EnvironmentError, type FloatCodecDtype } from '@lorafuse/core';
import { encodeLoraMerge, type AdapterIdentity } from '@lorafuse/kernels';
import type { OpenFiles } from '../fs/inputs.js';
import { addDelta } from './add-delta.js';
import { startDawnDevice } from './dawn-device.js';
import { withPrefetch, type MergedBytes, type MergeExecutor, type MergeTensor } from './executor.js';

const CPU_HINT = 'Or run the merge with `--device webgpu` (Chromium) or `--device cpu`.';

/** What the Dawn executor reports about its adapter. */
export interface DawnExecutor extends MergeExecutor {
  readonly device: 'dawn';
  readonly adapterInfo: AdapterIdentity;
}

/** Options of {@link createDawnExecutor} (tests and device selection). */
export interface DawnExecutorOptions {
  /** Environment (default `process.env`): `VK_ICD_FILENAMES`, `CHROME_PATH`. */
  env?: Record<string, string | undefined>;
  /** Merges in flight when the caller prefetches (default 2: one read while one runs). */
  depth?: number;
}

/** Starts Dawn in this process and returns the executor; `close()` destroys the device. */
export async function createDawnExecutor(files: OpenFiles, options: DawnExecutorOptions = {}): Promise<DawnExecutor> {
  const dawn = await startDawnDevice(options.env ?? process.env, CPU_HINT);
  const { device, adapterInfo, description } = dawn;
  const read = (ref: { file: string; fileOffset: number; byteLength: number }) => files.get(ref.file).read(ref.fileOffset, ref.byteLength);
  const f32Buffer = (label: string, values: Float32Array): GPUBuffer => {
    const buffer = device.createBuffer({ label, size: Math.max(4, values.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    if (values.byteLength > 0) device.queue.writeBuffer(buffer, 0, values.buffer, values.byteOffset, values.byteLength);
    return buffer;
  };

  const mergeOne = async (t: MergeTensor): Promise<MergedBytes> => {
    if (dawn.lostReason !== undefined) throw new EnvironmentError('DEVICE_LOST', `the Dawn WebGPU device was lost: ${dawn.lostReason}`, { hint: CPU_HINT });
    const { base, deltas } = t.source;
    const { rows, cols } = deltas[0]!;
    const byteLength = rows * cols * 4;
    const [wBytes, ...factorBytes] = await Promise.all([read(base), ...deltas.flatMap((d) => [read(d.a), read(d.b)])]);
    const buffers: GPUBuffer[] = [];
    try {
      device.pushErrorScope('validation');
      device.pushErrorScope('out-of-memory');
      // A new buffer is zero-filled: the kernel's in-place W += ... leaves ΔW in it.
      const dBuf = device.createBuffer({ label: `ΔW ${t.name}`, size: Math.max(4, byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
      const readback = device.createBuffer({ label: `readback ${t.name}`, size: dBuf.size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      buffers.push(dBuf, readback);
      const encoder = device.createCommandEncoder({ label: `delta ${t.name}` });
      deltas.forEach((d, i) => {
        const a = f32Buffer(`A ${d.modulePath}`, decodeToF32(d.a.dtype as FloatCodecDtype, factorBytes[2 * i]!));
        const b = f32Buffer(`B ${d.modulePath}`, decodeToF32(d.b.dtype as FloatCodecDtype, factorBytes[2 * i + 1]!));
        buffers.push(a, b);
        encodeLoraMerge(device, encoder, { w: dBuf, a, b, rows, cols, rank: d.rank, orientation: d.orientation, scale: d.scale, label: d.modulePath });
      });
      encoder.copyBufferToBuffer(dBuf, 0, readback, 0, dBuf.size);
      device.queue.submit([encoder.finish()]);
      const oom = await device.popErrorScope();
      const validation = await device.popErrorScope();
      if (oom) throw new EnvironmentError('GPU_OUT_OF_MEMORY', `out of GPU memory merging "${t.name}": ${oom.message}`, { subject: t.name, hint: CPU_HINT });
      if (validation) throw new Error(`WebGPU validation error merging "${t.name}": ${validation.message}`);
      await readback.mapAsync(GPUMapMode.READ);
      try {
        return addDelta(wBytes!, base.dtype as FloatCodecDtype, new Uint8Array(readback.getMappedRange(0, byteLength)), t.dtype as FloatCodecDtype);
      } finally {
        readback.unmap();
      }
    } finally {
      for (const b of buffers) b.destroy();
    }
  };
  const prefetcher = withPrefetch(mergeOne, options.depth ?? 2);
  return {
    device: 'dawn',
    description,
    adapterInfo,
    merge: (t) => prefetcher.merge(t),
    prefetch: (tensors) => prefetcher.prefetch(tensors),
    close: async () => {
      await prefetcher.drain();
      dawn.destroy();
    },
  };
}
