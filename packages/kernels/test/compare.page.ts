/// <reference types="@webgpu/types" />
/**
 * Page entry of the compare kernel's browser tests (compare.browser.test.ts). Tensor bytes arrive
 * from the runner server; the statistics go back as JSON text in which non-finite numbers are the
 * strings "Infinity", "-Infinity" and "NaN" (DevTools results cannot carry them inside objects).
 */
import { fetchBytes, getDevice, registerPageApi, startPage } from '@lorafuse/runner/page';
import { requestLorafuseDevice, runCompare, type CompareElementType } from '../src/index.js';
import { compareWorkShape, encodeCompare, readCompareStats, type CompareLimits, type CompareWorkShape } from '../src/internal.js';

startPage({ requestDevice: (adapter) => requestLorafuseDevice(adapter, 'compare test device') });

/** Arguments of `compareFromUrls` (small JSON). */
export interface CompareFromUrlsArgs {
  count: number;
  aUrl: string;
  bUrl: string;
  aType: CompareElementType;
  bType: CompareElementType;
  atol: number;
  rtol: number;
  equalNan: boolean;
  limits?: CompareLimits;
  /** The work split to use instead of the device's own. */
  workShape?: CompareWorkShape;
  /**
   * Run encodeCompare + readCompareStats on GPU buffers without host copies (the worst elements'
   * candidates are then copied back from the GPU), instead of runCompare.
   */
  resident?: boolean;
}

/** Arguments of `timeCompare`. */
export interface TimeCompareArgs {
  count: number;
  iterations: number;
}

/** Uploads both tensors (padded to whole words) and compares them with the GPU-only API. */
async function compareResident(device: GPUDevice, args: CompareFromUrlsArgs, a: Uint8Array, b: Uint8Array) {
  const upload = (name: string, bytes: Uint8Array) => {
    const padded = new Uint8Array(Math.max(4, Math.ceil(bytes.byteLength / 4) * 4));
    padded.set(bytes);
    const buffer = device.createBuffer({ label: `resident ${name}`, size: padded.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
    device.queue.writeBuffer(buffer, 0, padded);
    return buffer;
  };
  const ab = upload('a', a);
  const bb = upload('b', b);
  try {
    const encoder = device.createCommandEncoder({ label: 'resident compare' });
    const encoded = encodeCompare(device, encoder, {
      count: args.count,
      a: { buffer: ab, type: args.aType },
      b: { buffer: bb, type: args.bType },
      atol: args.atol,
      rtol: args.rtol,
      equalNan: args.equalNan,
      label: 'resident compare',
      ...(args.limits === undefined ? {} : { limits: args.limits }),
      ...(args.workShape === undefined ? {} : { workShape: args.workShape }),
    });
    device.queue.submit([encoder.finish()]);
    return await readCompareStats(device, encoded);
  } finally {
    ab.destroy();
    bb.destroy();
  }
}

function toWire(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
}

registerPageApi({
  /** The work shape the kernel picks for this page's device. */
  async deviceWorkShape() {
    return compareWorkShape(await getDevice());
  },

  async compareFromUrls(args: CompareFromUrlsArgs) {
    const device = await getDevice();
    const [a, b] = await Promise.all([fetchBytes(args.aUrl), fetchBytes(args.bUrl)]);
    if (args.resident) return toWire(await compareResident(device, args, a, b));
    const stats = await runCompare(device, {
      count: args.count,
      a: { type: args.aType, bytes: a },
      b: { type: args.bType, bytes: b },
      atol: args.atol,
      rtol: args.rtol,
      equalNan: args.equalNan,
      label: `test compare ${args.count}`,
      ...(args.limits === undefined ? {} : { limits: args.limits }),
      ...(args.workShape === undefined ? {} : { workShape: args.workShape }),
    });
    return toWire(stats);
  },

  /** GPU time of the compare pass alone (buffers resident; median and min) and of one upload-compare-readback. */
  async timeCompare(args: TimeCompareArgs) {
    const device = await getDevice();
    const a = new Float32Array(args.count).map(() => Math.random() * 2 - 1);
    const b = a.map((x, i) => (i % 1000 === 0 ? x + 1e-3 : x));
    const make = (name: string, data: Float32Array<ArrayBuffer>) => {
      const buffer = device.createBuffer({ label: `time ${name}`, size: data.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
      device.queue.writeBuffer(buffer, 0, data);
      return buffer;
    };
    const ab = make('a', a);
    const bb = make('b', b);
    const once = async () => {
      const encoder = device.createCommandEncoder({ label: 'time compare' });
      const encoded = encodeCompare(device, encoder, { count: args.count, a: { buffer: ab, type: 'f32' }, b: { buffer: bb, type: 'f32' }, atol: 1e-6, rtol: 1e-5, equalNan: false, label: 'time compare' });
      device.queue.submit([encoder.finish()]);
      return readCompareStats(device, encoded);
    };
    await once();
    const times: number[] = [];
    for (let i = 0; i < args.iterations; i++) {
      const t0 = performance.now();
      await once();
      times.push(performance.now() - t0);
    }
    times.sort((x, y) => x - y);
    const t1 = performance.now();
    const bytes = (x: Float32Array) => new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
    await runCompare(device, { count: args.count, a: { type: 'f32', bytes: bytes(a) }, b: { type: 'f32', bytes: bytes(b) }, atol: 1e-6, rtol: 1e-5, equalNan: false });
    const roundTripMs = performance.now() - t1;
    ab.destroy();
    bb.destroy();
    return { kernelMs: times[Math.floor(times.length / 2)]!, minKernelMs: times[0]!, roundTripMs };
  },
});
