/// <reference types="@webgpu/types" />
/**
 * Timing of the kernels on a given `GPUDevice`: the same code runs in the benchmark page (Chromium's
 * device) and in Node on Dawn's, so the two runners' figures measure the same thing.
 */
import { encodeCompare, encodeLoraMerge, type LoraMergeOrientation } from '@lorafuse/kernels/internal';
import { seededUniform } from '@lorafuse/kernels/testing';

/** Arguments of `benchKernel`. */
export interface BenchKernelArgs {
  kind: 'merge' | 'copy';
  rows: number;
  cols: number;
  rank: number;
  orientation: LoraMergeOrientation;
  /** Timed repetitions (after one warm-up). */
  iterations: number;
}

/** Result of `benchKernel`: one entry per repetition, in ms. */
export interface BenchKernelResult {
  /** Submit to `onSubmittedWorkDone`, per repetition. */
  wallMs: number[];
  /** GPU time between the pass's timestamps (merge only, when `timestamp-query` is available). */
  gpuMs: number[] | null;
}

/** Times the LoRA merge kernel (or `copyBufferToBuffer` of W) on `device`, W resident. */
export async function timeMergeKernel(device: GPUDevice, args: BenchKernelArgs): Promise<BenchKernelResult> {
  const { rows, cols, rank, orientation } = args;
  const [outF, inF] = orientation === 'linear' ? [rows, cols] : [cols, rows];
  const created: GPUBuffer[] = [];
  const buffer = (label: string, data: Float32Array<ArrayBuffer>, usage: number): GPUBuffer => {
    const b = device.createBuffer({ label: `bench ${label}`, size: Math.max(4, data.byteLength), usage: usage | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(b, 0, data);
    created.push(b);
    return b;
  };
  const w = buffer('W', seededUniform(1, rows * cols, 0.1), GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
  const timestamps = args.kind === 'merge' && device.features.has('timestamp-query');
  let querySet: GPUQuerySet | undefined;
  let resolveBuf: GPUBuffer | undefined;
  let readBuf: GPUBuffer | undefined;
  if (timestamps) {
    querySet = device.createQuerySet({ label: 'bench timestamps', type: 'timestamp', count: 2 });
    resolveBuf = device.createBuffer({ label: 'bench timestamps resolve', size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    readBuf = device.createBuffer({ label: 'bench timestamps read', size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    created.push(resolveBuf, readBuf);
  }
  try {
    let encodeOnce: (encoder: GPUCommandEncoder) => GPUBuffer | undefined;
    if (args.kind === 'copy') {
      const dst = device.createBuffer({ label: 'bench copy dst', size: w.size, usage: GPUBufferUsage.COPY_DST });
      created.push(dst);
      encodeOnce = (encoder) => {
        encoder.copyBufferToBuffer(w, 0, dst, 0, w.size);
        return undefined;
      };
    } else {
      const a = buffer('A', seededUniform(2, rank * inF, 1 / Math.sqrt(inF)), GPUBufferUsage.STORAGE);
      const b = buffer('B', seededUniform(3, outF * rank, 0.05), GPUBufferUsage.STORAGE);
      encodeOnce = (encoder) =>
        encodeLoraMerge(device, encoder, {
          w, a, b, rows, cols, rank, orientation, scale: 1e-3, label: 'bench merge',
          ...(querySet ? { timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : {}),
        }).uniforms;
    }
    const wallMs: number[] = [];
    const gpuMs: number[] = [];
    for (let i = -1; i < args.iterations; i++) {
      const encoder = device.createCommandEncoder({ label: `bench ${args.kind}` });
      const uniforms = encodeOnce(encoder);
      if (querySet && resolveBuf && readBuf) {
        encoder.resolveQuerySet(querySet, 0, 2, resolveBuf, 0);
        encoder.copyBufferToBuffer(resolveBuf, 0, readBuf, 0, 16);
      }
      const commands = encoder.finish();
      const t0 = performance.now();
      device.queue.submit([commands]);
      await device.queue.onSubmittedWorkDone();
      const t1 = performance.now();
      uniforms?.destroy();
      if (readBuf) {
        await readBuf.mapAsync(GPUMapMode.READ);
        const [begin, end] = new BigUint64Array(readBuf.getMappedRange());
        readBuf.unmap();
        if (i >= 0 && begin !== undefined && end !== undefined && end > begin) gpuMs.push(Number(end - begin) / 1e6);
      }
      if (i >= 0) wallMs.push(t1 - t0);
    }
    return { wallMs, gpuMs: timestamps && gpuMs.length === wallMs.length ? gpuMs : null };
  } finally {
    querySet?.destroy();
    for (const b of created) b.destroy();
  }
}

/** Times the compare kernel on two resident f32 tensors of `count` elements; null without one. */
export async function timeCompareKernel(device: GPUDevice, args: { count: number; iterations: number }): Promise<{ wallMs: number[] } | null> {
  const make = (seed: number) => {
    const data = seededUniform(seed, args.count, 0.1);
    const b = device.createBuffer({ label: `bench compare ${seed}`, size: data.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
    device.queue.writeBuffer(b, 0, data);
    return b;
  };
  const a = make(1);
  const b = make(2);
  const wallMs: number[] = [];
  try {
    for (let i = -1; i < args.iterations; i++) {
      const encoder = device.createCommandEncoder({ label: 'bench compare' });
      const encoded = encodeCompare(device, encoder, { count: args.count, a: { buffer: a, type: 'f32' }, b: { buffer: b, type: 'f32' }, atol: 1e-6, rtol: 1e-5, equalNan: false, label: 'bench compare' });
      const commands = encoder.finish();
      const t0 = performance.now();
      device.queue.submit([commands]);
      await device.queue.onSubmittedWorkDone();
      if (i >= 0) wallMs.push(performance.now() - t0);
      for (const buffer of encoded.created) buffer.destroy();
    }
  } finally {
    a.destroy();
    b.destroy();
  }
  return { wallMs };
}
