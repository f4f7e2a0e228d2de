/**
 * Kernel benchmarks on GPT-2 shapes: the WebGPU merge kernel (wall time and GPU timestamps),
 * `copyBufferToBuffer` of the same bytes on the same device, the CPU executor's merge in Node, and
 * PyTorch's `addmm_`. Throughput is GB/s of W read and written (8 bytes per f32 element).
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as core from '@lorafuse/core';
import { compareRef } from '@lorafuse/kernels/reference';
import { startCpuMergePool } from '@lorafuse/cli/devices';
import type { BrowserRunner } from '@lorafuse/runner';
import type { BenchKernelArgs, BenchKernelResult } from './kernel-timing.js';
import { TORCH_KERNEL_SCRIPT, type TorchPeer } from './python.js';
import { mapSummary, ratio, summarize, type Summary } from './stats.js';
import { seededUniform } from '@lorafuse/kernels/testing';

/** One benchmarked merge shape. */
export interface KernelShape {
  readonly id: string;
  readonly module: string;
  readonly rows: number;
  readonly cols: number;
  readonly rank: number;
  readonly orientation: 'linear' | 'transposed';
}

/** GPT-2 small (124M) weights the benchmark merges into: c_attn r=8, mlp.c_proj r=16, lm_head r=8, and c_attn at r=64. */
export const KERNEL_SHAPES: readonly KernelShape[] = [
  { id: '768x2304 r8', module: 'attn.c_attn (Conv1D [in, out])', rows: 768, cols: 2304, rank: 8, orientation: 'transposed' },
  { id: '3072x768 r16', module: 'mlp.c_proj (Conv1D [in, out])', rows: 3072, cols: 768, rank: 16, orientation: 'transposed' },
  { id: '50257x768 r8', module: 'lm_head (Linear [out, in])', rows: 50257, cols: 768, rank: 8, orientation: 'linear' },
  { id: '768x2304 r64', module: 'attn.c_attn (Conv1D [in, out])', rows: 768, cols: 2304, rank: 64, orientation: 'transposed' },
];

/** Throughput figures of one shape. */
export interface KernelResult {
  readonly shape: KernelShape;
  /** Bytes of W read + written by one merge. */
  readonly bytes: number;
  readonly webgpu: { wallMs: Summary; gbps: Summary; gpuMs: Summary | null; gpuGbps: Summary | null };
  readonly copyBufferToBuffer: { wallMs: Summary; gbps: Summary };
  readonly cpuExecutor: { implementation: string; ms: Summary; gbps: Summary };
  /** The CLI's CPU executor with its worker threads (W's rows split over the cores), when built. */
  readonly cpuExecutorThreads: { threads: number; ms: Summary; gbps: Summary } | { status: string };
  readonly torch: { defaultThreads: { ms: Summary; gbps: Summary }; singleThread: { ms: Summary; gbps: Summary } } | { status: string };
  /** Ratios of median throughputs (WebGPU kernel, by GPU timestamps when available, else wall time). */
  readonly ratios: { webgpuVsCopy: number; webgpuVsCpuExecutor: number; webgpuVsTorch: number | null; cpuExecutorVsTorch: number | null };
}

/** GB/s of moving `bytes` in a given number of ms. */
export const gbps = (bytes: number) => (ms: number) => bytes / (ms * 1e6);


/**
 * Times the CPU executor's merge of one tensor in this Node process (one thread): core's
 * `mergeOnCpu` with bytes already in memory (decode, merge, non-finite count, encode), as
 * `lorafuse merge --device cpu` runs it per tensor.
 */
async function timeCpuExecutor(shape: KernelShape, iterations: number, mergeFn: (source: Parameters<typeof core.mergeOnCpu>[0], outDtype: 'F32', read: core.ReadTensorBytes) => Promise<unknown> = core.mergeOnCpu): Promise<number[]> {
  const { rows, cols, rank, orientation } = shape;
  const [outF, inF] = orientation === 'linear' ? [rows, cols] : [cols, rows];
  const bytes = (x: Float32Array) => new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  const w = bytes(seededUniform(1, rows * cols, 0.1));
  const a = bytes(seededUniform(2, rank * inF, 0.05));
  const b = bytes(seededUniform(3, outF * rank, 0.05));
  const ref = (file: string, shape: number[], data: Uint8Array): core.TensorRef => ({ file, name: file, dtype: 'F32', shape, fileOffset: 0, byteLength: data.byteLength });
  const source: Parameters<typeof core.mergeOnCpu>[0] = {
    kind: 'merge',
    base: ref('w', [rows, cols], w),
    deltas: [{ modulePath: 'bench', a: ref('a', [rank, inF], a), b: ref('b', [outF, rank], b), rank, alpha: 1, scale: 1e-3, adapter: 'bench', weight: 1, orientation, rows, cols }],
  };
  const files: Record<string, Uint8Array> = { w, a, b };
  const read = async (r: core.TensorRef) => files[r.file]!;
  const times: number[] = [];
  // Worker threads compile the merge loop on their own: give them a few calls to warm up.
  const warmups = mergeFn === core.mergeOnCpu ? 1 : 4;
  for (let i = -warmups; i < iterations; i++) {
    const t0 = performance.now();
    await mergeFn(source, 'F32', read);
    if (i >= 0) times.push(performance.now() - t0);
  }
  return times;
}

/** Runs `TORCH_KERNEL_SCRIPT`; returns seconds per iteration by shape id and mode, or null on failure. */
function runTorchKernels(torch: TorchPeer, shapes: readonly KernelShape[], iterations: number, workDir: string, log: (s: string) => void): Record<string, { default: number[]; single: number[] }> | null {
  if (!torch.available) return null;
  const script = join(workDir, 'torch_kernels.py');
  writeFileSync(script, TORCH_KERNEL_SCRIPT);
  const r = spawnSync(torch.python, [script, JSON.stringify(shapes), String(iterations)], { encoding: 'utf8', timeout: 600_000, maxBuffer: 1 << 24 });
  if (r.status !== 0) {
    log(`torch kernel benchmark failed: ${r.stderr.slice(-500)}`);
    return null;
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!).results;
}

/** Runs every kernel benchmark of `shapes`. */
export async function benchKernels(options: {
  runner: BrowserRunner;
  torch: TorchPeer;
  shapes: readonly KernelShape[];
  iterations: number;
  workDir: string;
  log: (line: string) => void;
}): Promise<KernelResult[]> {
  const { runner, torch, shapes, iterations, workDir, log } = options;
  const torchTimes = runTorchKernels(torch, shapes, iterations, workDir, log);
  const pool = startCpuMergePool();
  const results: KernelResult[] = [];
  for (const shape of shapes) {
    const bytes = shape.rows * shape.cols * 8;
    const large = shape.rows * shape.cols > 8e6;
    const n = large ? Math.max(3, Math.ceil(iterations / 2)) : iterations;
    const call = (kind: BenchKernelArgs['kind']) =>
      runner.call<BenchKernelResult>('benchKernel', { kind, rows: shape.rows, cols: shape.cols, rank: shape.rank, orientation: shape.orientation, iterations: n } satisfies BenchKernelArgs, { timeoutMs: 600_000 });
    const merge = await call('merge');
    const copy = await call('copy');
    const cpu = await timeCpuExecutor(shape, n);
    // As the CLI calls it: f32 W read straight into shared memory, the result released after use.
    const cpuThreads =
      pool.threads > 1
        ? await timeCpuExecutor(shape, n, async (src, dt, read) => {
            const merged = await pool.merge(src, dt, read, async (ref, target) => target.set(await read(ref)));
            merged.release?.();
          })
        : undefined;
    const wall = summarize(merge.wallMs, 'ms');
    const gpu = merge.gpuMs ? summarize(merge.gpuMs, 'ms') : null;
    const copyWall = summarize(copy.wallMs, 'ms');
    const cpuMs = summarize(cpu, 'ms');
    const g = gbps(bytes);
    const t = torchTimes?.[shape.id];
    const torchResult: KernelResult['torch'] = t
      ? {
          defaultThreads: { ms: summarize(t.default.map((s) => s * 1e3), 'ms'), gbps: summarize(t.default.map((s) => g(s * 1e3)), 'GB/s') },
          singleThread: { ms: summarize(t.single.map((s) => s * 1e3), 'ms'), gbps: summarize(t.single.map((s) => g(s * 1e3)), 'GB/s') },
        }
      : { status: torch.available ? 'failed (see log)' : torch.status };
    const kernelMs = (gpu ?? wall).median;
    const result: KernelResult = {
      shape,
      bytes,
      webgpu: { wallMs: wall, gbps: mapSummary(wall, 'GB/s', g), gpuMs: gpu, gpuGbps: gpu ? mapSummary(gpu, 'GB/s', g) : null },
      copyBufferToBuffer: { wallMs: copyWall, gbps: mapSummary(copyWall, 'GB/s', g) },
      cpuExecutor: { implementation: 'core mergeOnCpu (decode, merge, non-finite count, encode), one thread', ms: cpuMs, gbps: mapSummary(cpuMs, 'GB/s', g) },
      cpuExecutorThreads: cpuThreads
        ? { threads: pool.threads, ms: summarize(cpuThreads, 'ms'), gbps: summarize(cpuThreads.map(g), 'GB/s') }
        : { status: 'one core: no worker threads' },
      torch: torchResult,
      ratios: {
        webgpuVsCopy: ratio(copyWall.median, kernelMs),
        webgpuVsCpuExecutor: ratio(cpuMs.median, kernelMs),
        webgpuVsTorch: 'defaultThreads' in torchResult ? ratio(torchResult.defaultThreads.ms.median, kernelMs) : null,
        cpuExecutorVsTorch: 'defaultThreads' in torchResult ? ratio(torchResult.defaultThreads.ms.median, cpuMs.median) : null,
      },
    };
    log(
      `kernel ${shape.id} ${shape.orientation}: webgpu ${result.webgpu.gbps.median} GB/s (wall)${gpu ? `, ${result.webgpu.gpuGbps!.median} GB/s (timestamps)` : ''}; ` +
        `copyBufferToBuffer ${result.copyBufferToBuffer.gbps.median} GB/s; cpu executor ${result.cpuExecutor.gbps.median} GB/s` +
        ('threads' in result.cpuExecutorThreads ? ` (${result.cpuExecutorThreads.threads} threads ${result.cpuExecutorThreads.gbps.median} GB/s)` : '') +
        ('defaultThreads' in torchResult ? `; torch ${torchResult.defaultThreads.gbps.median} GB/s (1 thread ${torchResult.singleThread.gbps.median})` : `; torch ${torchResult.status}`),
    );
    results.push(result);
  }
  await pool.close();
  return results;
}

/** Throughput of the compare kernel (two f32 tensors of one shape), when @lorafuse/kernels has one. */
export interface CompareKernelResult {
  readonly shape: { id: string; elements: number };
  /** Bytes read: both tensors. */
  readonly bytes: number;
  readonly webgpu: { wallMs: Summary; gbps: Summary };
  /** The kernels' CPU reference (`compareRef`) in Node, one thread. */
  readonly cpuReference: { ms: Summary; gbps: Summary };
  readonly ratios: { webgpuVsCpuReference: number };
}

/** Tensor pairs of the compare kernel benchmark (GPT-2 sizes). */
export const COMPARE_SHAPES = [{ id: '768x2304 f32', elements: 768 * 2304 }, { id: '50257x768 f32', elements: 50257 * 768 }] as const;

/** Compare kernel vs its CPU reference on GPT-2 tensor sizes; empty when there is no compare kernel. */
export async function benchCompareKernels(options: { runner: BrowserRunner; iterations: number; log: (line: string) => void }): Promise<CompareKernelResult[] | string> {
  const results: CompareKernelResult[] = [];
  for (const shape of COMPARE_SHAPES) {
    const n = shape.elements > 8e6 ? Math.max(3, Math.ceil(options.iterations / 2)) : options.iterations;
    const gpu = await options.runner.call<{ wallMs: number[] } | null>('benchCompare', { count: shape.elements, iterations: n }, { timeoutMs: 600_000 });
    if (gpu === null) return 'the page has no compare kernel';
    const bytes = shape.elements * 8;
    const a = seededUniform(1, shape.elements, 0.1);
    const b = seededUniform(2, shape.elements, 0.1);
    const toBytes = (x: Float32Array) => new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
    const cpu: number[] = [];
    // Three warm-up calls: with one, the reference was measured anywhere from 0.25 to 0.66 GB/s
    // depending on how far V8 had optimised it; the target is against its steady state.
    for (let i = -3; i < n; i++) {
      const t0 = performance.now();
      compareRef({ count: shape.elements, a: { type: 'f32', bytes: toBytes(a) }, b: { type: 'f32', bytes: toBytes(b) }, atol: 1e-6, rtol: 1e-5, equalNan: false });
      if (i >= 0) cpu.push(performance.now() - t0);
    }
    const g = gbps(bytes);
    const wall = summarize(gpu.wallMs, 'ms');
    const cpuMs = summarize(cpu, 'ms');
    const result: CompareKernelResult = {
      shape,
      bytes,
      webgpu: { wallMs: wall, gbps: mapSummary(wall, 'GB/s', g) },
      cpuReference: { ms: cpuMs, gbps: mapSummary(cpuMs, 'GB/s', g) },
      ratios: { webgpuVsCpuReference: ratio(cpuMs.median, wall.median) },
    };
    options.log(`compare ${shape.id}: webgpu ${result.webgpu.gbps.median} GB/s (wall); CPU reference ${result.cpuReference.gbps.median} GB/s; ratio ${result.ratios.webgpuVsCpuReference}`);
    results.push(result);
  }
  return results;
}
