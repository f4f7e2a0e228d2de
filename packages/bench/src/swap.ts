/**
 * The adapter hot-swap benchmark, on Dawn in Node with the app-facing weight kernels: how far W drifts
 * in f32, f16 and bf16 after repeated cycles — merge + unmerge in place (PEFT's measurement), swaps
 * between two adapters in place (each step rounds to the element type), and the drift-free rebuild
 * from a pristine copy — and what a cycle costs. PEFT's own bf16 figure sits next to it.
 */
import { startDawnDevice, type DawnDevice } from '@lorafuse/cli/devices';
import { WeightKernels, type LoraFactors, type WeightElement, type WeightView } from '@lorafuse/kernels';
import { applyTermsRef } from '@lorafuse/kernels/reference';
import { readBufferBytes, SeededRandom, storageBufferOf } from '@lorafuse/kernels/testing';
import { decodeToF32, encodeFromF32, loraMergeRowsSimd } from '@lorafuse/core';
import { summarize, type Summary } from './stats.js';

/**
 * W's shape (32 input rows of GPT-2's attn.c_proj, Conv1D [in, out]: drift per element does not
 * depend on the row count, and 1000 cycles of the whole matrix take too long on SwiftShader) and the
 * adapters' rank and alpha.
 */
export const SWAP_SHAPE = { rows: 32, cols: 768, rank: 16, alpha: 32 } as const;
/** After how many cycles the drift is read. */
export const SWAP_CHECKPOINTS = [1, 10, 100, 1000] as const;
/** PEFT's measured max drift of in-place merge/unmerge on bf16 weights. */
export const PEFT_BF16_DRIFT: { readonly after1: number; readonly after1000: number } = { after1: 2.4e-4, after1000: 1.5e-2 };

/** One element type in one mode. */
export interface SwapFigure {
  readonly element: WeightElement;
  /**
   * `merge-unmerge`: merge X, unmerge X, in place; drift against the base W₀.
   * `swap`: X → Y → X in place (two fused swaps); `rebuild`: the same from the pristine copy; drift
   * against W₀ + ΔX rounded once.
   */
  readonly mode: 'merge-unmerge' | 'swap' | 'rebuild';
  /** Largest |W − expected| after n cycles. */
  readonly drift: ReadonlyArray<{ readonly cycles: number; readonly maxAbs: number }>;
  /** Wall time of one cycle (two dispatches, waited for). */
  readonly msPerCycle: Summary;
}

/** GPT-2 shapes of the speed figures (Conv1D and Embedding weights are `in-out`). */
export const SWAP_SPEED_SHAPES = [
  { id: 'attn.c_attn 768x2304', rows: 768, cols: 2304, element: 'f32' },
  { id: 'attn.c_attn 768x2304', rows: 768, cols: 2304, element: 'f16' },
  { id: 'attn.c_attn 768x2304', rows: 768, cols: 2304, element: 'bf16' },
  { id: 'mlp.c_proj 3072x768', rows: 3072, cols: 768, element: 'f32' },
  { id: 'wte 50257x768', rows: 50257, cols: 768, element: 'f32' },
] as const;
/** Rank of the speed figures' adapters. */
export const SWAP_SPEED_RANK = 8;

/** Time of an in-place merge and of a fused swap on app-owned weights, next to the CPU executor. */
export interface SwapSpeedFigure {
  readonly shape: string;
  readonly element: WeightElement;
  readonly mergeMs: Summary;
  /** One adapter out and another in, one read and one write of W. */
  readonly swapMs: Summary;
  /**
   * The CPU executor's work for the same weight on one thread: its merge loop on W in f32, and for a
   * 16-bit W also the decoding to f32 before and the rounding back after, as it does for such a weight.
   */
  readonly cpuMs: Summary;
  /** CPU single thread time / GPU merge time (>= 1 means the kernel is at least as fast). */
  readonly mergeVsCpu: number;
  /** Swap time / merge time. */
  readonly swapVsMerge: number;
}

/** What the section measured, or why it did not run. */
export type SwapResult =
  | { readonly adapter: string; readonly shape: string; readonly figures: readonly SwapFigure[]; readonly speed?: readonly SwapSpeedFigure[]; readonly peft: typeof PEFT_BF16_DRIFT; readonly notes: readonly string[] }
  | { readonly status: string };

/** Median-ready samples of `run`, each waited for on the GPU, after one warm-up. */
async function timeGpu(device: GPUDevice, iterations: number, run: () => Promise<void>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i <= iterations; i++) {
    const t0 = performance.now();
    await run();
    await device.queue.onSubmittedWorkDone();
    if (i > 0) times.push(performance.now() - t0);
  }
  return times;
}

async function speedFigures(device: GPUDevice, kernels: WeightKernels, quick: boolean, log: (line: string) => void): Promise<SwapSpeedFigure[]> {
  const figures: SwapSpeedFigure[] = [];
  const rank = SWAP_SPEED_RANK;
  for (const shape of SWAP_SPEED_SHAPES) {
    if (quick && shape.rows > 10_000) continue;
    const { rows, cols, element } = shape;
    const n = rows * cols;
    // Shared 2-core machines swing by tens of percent: a few more samples steady the medians.
    const iterations = n > 10e6 ? 3 : quick ? 3 : 7;
    const rng = new SeededRandom(rows + cols);
    const w = rng.normalArray(n, 0.02);
    const buffers = [storageBufferOf(device, encode(w, element), 'speed W')];
    const term = (seed: number): LoraFactors => {
      const r = new SeededRandom(seed);
      const a = storageBufferOf(device, new Uint8Array(r.normalArray(rank * rows, 0.05).buffer), 'speed A');
      const b = storageBufferOf(device, new Uint8Array(r.normalArray(cols * rank, 0.05).buffer), 'speed B');
      buffers.push(a, b);
      return { a: { buffer: a }, b: { buffer: b }, rank, scale: 2 };
    };
    const [x, y] = [term(1), term(2)];
    const view: WeightView = { binding: { buffer: buffers[0]! }, rows, cols, layout: 'in-out', element };
    const merge = await timeGpu(device, iterations, () => kernels.merge(view, [x]));
    const swap = await timeGpu(device, iterations, () => kernels.swap(view, { remove: [x], add: [y] }));
    for (const buffer of buffers) buffer.destroy();
    const a = new SeededRandom(1).normalArray(rank * rows, 0.05);
    const b = new SeededRandom(2).normalArray(cols * rank, 0.05);
    const stored = element === 'f32' ? null : encode(w, element);
    const cpu: number[] = [];
    // One untimed run first, as timeGpu does: the first call runs before the JIT has compiled the loop.
    for (let i = 0; i <= iterations; i++) {
      const t0 = performance.now();
      const values = stored === null ? w : decodeToF32(DTYPE[element], stored);
      loraMergeRowsSimd({ w: values, a, b, rows, cols, rank, orientation: 'transposed', scale: 2 });
      if (stored !== null) encodeFromF32(DTYPE[element], values);
      if (i > 0) cpu.push(performance.now() - t0);
    }
    const [mergeMs, swapMs, cpuMs] = [summarize(merge, 'ms'), summarize(swap, 'ms'), summarize(cpu, 'ms')];
    const figure: SwapSpeedFigure = { shape: shape.id, element, mergeMs, swapMs, cpuMs, mergeVsCpu: cpuMs.median / mergeMs.median, swapVsMerge: swapMs.median / mergeMs.median };
    figures.push(figure);
    log(`swap speed ${shape.id} ${element} r${rank}: merge ${mergeMs.median} ms, swap ${swapMs.median} ms, CPU 1 thread ${cpuMs.median} ms (x${figure.mergeVsCpu.toFixed(2)})`);
  }
  return figures;
}

const DTYPE = { f32: 'F32', f16: 'F16', bf16: 'BF16' } as const;

function encode(values: Float32Array, element: WeightElement): Uint8Array<ArrayBuffer> {
  return new Uint8Array(encodeFromF32(DTYPE[element], values));
}

function decode(bytes: Uint8Array, element: WeightElement, n: number): Float32Array {
  return decodeToF32(DTYPE[element], bytes.subarray(0, n * (element === 'f32' ? 4 : 2)));
}

/** Runs the drift and cost figures (`cycles` up to 1000; fewer in a quick run). */
export async function benchSwap(options: { quick: boolean; log: (line: string) => void }): Promise<SwapResult> {
  let dawn: DawnDevice;
  try {
    dawn = await startDawnDevice(process.env, '');
  } catch (e) {
    return { status: `Dawn did not start: ${(e as Error).message}` };
  }
  const device = dawn.device;
  const { rows, cols, rank, alpha } = SWAP_SHAPE;
  const n = rows * cols;
  const checkpoints = SWAP_CHECKPOINTS.filter((c) => !options.quick || c <= 100);
  try {
    const kernels = await WeightKernels.prepare(device);
    // GPT-2-like magnitudes: weights ~N(0, 0.02); the deltas of the same order.
    const base = new SeededRandom(20261201).normalArray(n, 0.02);
    const factors = (seed: number): { gpu: LoraFactors; host: { a: Float32Array; b: Float32Array; rank: number; scale: number }; buffers: GPUBuffer[] } => {
      const r = new SeededRandom(seed);
      const a = r.normalArray(rank * rows, 0.05);
      const b = r.normalArray(cols * rank, 0.05);
      const buffers = [storageBufferOf(device, new Uint8Array(a.buffer), `swap A ${seed}`), storageBufferOf(device, new Uint8Array(b.buffer), `swap B ${seed}`)];
      return { gpu: { a: { buffer: buffers[0]! }, b: { buffer: buffers[1]! }, rank, scale: alpha / rank }, host: { a, b, rank, scale: alpha / rank }, buffers };
    };
    const x = factors(1);
    const y = factors(2);
    const figures: SwapFigure[] = [];
    for (const element of ['f32', 'f16', 'bf16'] as const) {
      const initial = encode(base, element);
      const w0 = decode(initial, element, n);
      const withX = decode(applyTermsRef({ w: initial, rows, cols, layout: 'in-out', element, terms: [x.host] }), element, n);
      for (const mode of ['merge-unmerge', 'swap', 'rebuild'] as const) {
        const wBuffer = storageBufferOf(device, initial, `swap W ${element}`);
        const pristine = storageBufferOf(device, initial, `swap pristine ${element}`);
        const view: WeightView = { binding: { buffer: wBuffer, offset: 0, size: wBuffer.size }, rows, cols, layout: 'in-out', element };
        if (mode === 'swap') await kernels.merge(view, [x.gpu]);
        if (mode === 'rebuild') await kernels.rebuild(view, { buffer: pristine }, [x.gpu]);
        const expected = mode === 'merge-unmerge' ? w0 : withX;
        const drift: Array<{ cycles: number; maxAbs: number }> = [];
        const times: number[] = [];
        let done = 0;
        for (const target of checkpoints) {
          for (; done < target; done++) {
            const t0 = performance.now();
            if (mode === 'merge-unmerge') {
              await kernels.merge(view, [x.gpu]);
              await kernels.unmerge(view, [x.gpu]);
            } else if (mode === 'swap') {
              await kernels.swap(view, { remove: [x.gpu], add: [y.gpu] });
              await kernels.swap(view, { remove: [y.gpu], add: [x.gpu] });
            } else {
              await kernels.rebuild(view, { buffer: pristine }, [y.gpu]);
              await kernels.rebuild(view, { buffer: pristine }, [x.gpu]);
            }
            await device.queue.onSubmittedWorkDone();
            times.push(performance.now() - t0);
          }
          const w = decode(await readBufferBytes(device, wBuffer), element, n);
          let maxAbs = 0;
          for (let i = 0; i < n; i++) maxAbs = Math.max(maxAbs, Math.abs(w[i]! - expected[i]!));
          drift.push({ cycles: target, maxAbs });
        }
        wBuffer.destroy();
        pristine.destroy();
        const figure: SwapFigure = { element, mode, drift, msPerCycle: summarize(times, 'ms') };
        figures.push(figure);
        options.log(`swap ${element} ${mode}: drift ${drift.map((d) => `${d.cycles}: ${d.maxAbs.toExponential(2)}`).join(', ')}; ${figure.msPerCycle.median} ms per cycle`);
      }
    }
    for (const buffer of [...x.buffers, ...y.buffers]) buffer.destroy();
    const speed = await speedFigures(device, kernels, options.quick, options.log);
    kernels.destroy();
    return {
      adapter: dawn.description,
      shape: `W [${rows}, ${cols}] (rows of GPT-2's attn.c_proj, Conv1D) ~N(0, 0.02), adapters X and Y of rank ${rank}, alpha ${alpha}, A and B ~N(0, 0.05)`,
      figures,
      speed,
      peft: PEFT_BF16_DRIFT,
      notes: [
        'merge-unmerge: a cycle merges adapter X and unmerges it in place; drift is max |W − W₀| against the base as stored. swap: a cycle swaps X for Y and back in place (one fused read and write of W each); rebuild: the same two changes recomputed from a pristine copy of the base that the app keeps; drift is max |W − (W₀ + ΔX rounded once)|. In place every step rounds to the element type; a rebuild rounds once, so it never drifts.',
      ],
    };
  } finally {
    dawn.destroy();
  }
}
