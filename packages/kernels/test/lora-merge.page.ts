/// <reference types="@webgpu/types" />
/**
 * Page entry of the kernel browser tests: the page API that lora-merge.browser.test.ts calls.
 * Inputs arrive as bytes from the runner server (never through DevTools messages); results go back
 * by POST.
 */
import { fetchBytes, getDevice, postBytes, registerPageApi, startPage } from '@lorafuse/runner/page';
import { requestLorafuseDevice } from '../src/index.js';
import { encodeLoraMerge, runLoraMerge, withLoraDelta, type LoraMergeLimits, type LoraMergeOrientation } from '../src/internal.js';
import { readBufferBytes } from '../src/testing/index.js';

startPage({ requestDevice: (adapter) => requestLorafuseDevice(adapter, 'lora-merge test device') });

/** Arguments of `mergeFromUrls` (small JSON). */
export interface MergeFromUrlsArgs {
  rows: number;
  cols: number;
  rank: number;
  orientation: LoraMergeOrientation;
  scale: number;
  wUrl: string;
  aUrl: string;
  bUrl: string;
  outUrl: string;
  limits?: LoraMergeLimits;
}

/** Arguments of `deltaFromUrls` (small JSON): ΔW of several terms, POSTed to `outUrl`. */
export interface DeltaFromUrlsArgs {
  rows: number;
  cols: number;
  terms: Array<{ aUrl: string; bUrl: string; rank: number; orientation: LoraMergeOrientation; scale: number }>;
  outUrl: string;
  limits?: LoraMergeLimits;
}

/** Arguments of `timeMerge`. */
export interface TimeMergeArgs {
  rows: number;
  cols: number;
  rank: number;
  orientation: LoraMergeOrientation;
  iterations: number;
}

function f32(bytes: Uint8Array): Float32Array {
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  return new Float32Array(bytes.slice().buffer);
}

function randomF32(n: number): Float32Array<ArrayBuffer> {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.random() * 2 - 1;
  return out;
}

registerPageApi({
  async deltaFromUrls(args: DeltaFromUrlsArgs) {
    const device = await getDevice();
    const terms = await Promise.all(
      args.terms.map(async (t) => ({ a: f32(await fetchBytes(t.aUrl)), b: f32(await fetchBytes(t.bUrl)), rank: t.rank, orientation: t.orientation, scale: t.scale })),
    );
    // The device buffer `use` gets must still hold the ΔW that was read back.
    let deviceMatches = false;
    await withLoraDelta(device, { rows: args.rows, cols: args.cols, terms, label: 'test delta', ...(args.limits === undefined ? {} : { limits: args.limits }) }, async (delta, onDevice) => {
      const again = onDevice === undefined ? new Uint8Array(0) : await readBufferBytes(device, onDevice, delta.byteLength);
      deviceMatches = again.length === delta.length && again.every((b, i) => b === delta[i]);
      await postBytes(args.outUrl, delta);
    });
    return { values: args.rows * args.cols, deviceMatches };
  },

  async mergeFromUrls(args: MergeFromUrlsArgs) {
    const device = await getDevice();
    const [w, a, b] = await Promise.all([fetchBytes(args.wUrl), fetchBytes(args.aUrl), fetchBytes(args.bUrl)]);
    const merged = await runLoraMerge(device, {
      w: f32(w), a: f32(a), b: f32(b),
      rows: args.rows, cols: args.cols, rank: args.rank, orientation: args.orientation, scale: args.scale,
      label: `test merge ${args.rows}x${args.cols} r${args.rank}`,
      ...(args.limits === undefined ? {} : { limits: args.limits }),
    });
    await postBytes(args.outUrl, new Uint8Array(merged.buffer, merged.byteOffset, merged.byteLength));
    return { values: merged.length };
  },

  /** GPU time of the merge kernel alone (buffers resident; median and min), and of one upload-merge-readback. */
  async timeMerge(args: TimeMergeArgs) {
    const device = await getDevice();
    const { rows, cols, rank, orientation } = args;
    const [outF, inF] = orientation === 'linear' ? [rows, cols] : [cols, rows];
    const w = randomF32(rows * cols);
    const a = randomF32(rank * inF);
    const b = randomF32(outF * rank);
    const make = (name: string, data: Float32Array<ArrayBuffer>) => {
      const buffer = device.createBuffer({ label: `time ${name}`, size: data.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
      device.queue.writeBuffer(buffer, 0, data);
      return buffer;
    };
    const wb = make('w', w);
    const ab = make('a', a);
    const bb = make('b', b);
    const once = () => {
      const encoder = device.createCommandEncoder({ label: 'time merge' });
      const { uniforms } = encodeLoraMerge(device, encoder, { w: wb, a: ab, b: bb, rows, cols, rank, orientation, scale: 1e-3, label: 'time merge' });
      device.queue.submit([encoder.finish()]);
      uniforms?.destroy();
    };
    once();
    await device.queue.onSubmittedWorkDone();
    // Each merge timed alone (submit → done); the median resists other load on the machine.
    const times: number[] = [];
    for (let i = 0; i < args.iterations; i++) {
      const t0 = performance.now();
      once();
      await device.queue.onSubmittedWorkDone();
      times.push(performance.now() - t0);
    }
    times.sort((x, y) => x - y);
    const kernelMs = times[Math.floor(times.length / 2)]!;
    const minKernelMs = times[0]!;
    const t1 = performance.now();
    await runLoraMerge(device, { w, a, b, rows, cols, rank, orientation, scale: 1e-3, label: 'time roundtrip' });
    const roundTripMs = performance.now() - t1;
    for (const buffer of [wb, ab, bb]) buffer.destroy();
    return { kernelMs, minKernelMs, roundTripMs };
  },
});
