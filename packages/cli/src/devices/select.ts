/**
 * `--device auto|webgpu|dawn|cpu`: which device runs the merges, and why; and the devices of
 * verify's and diff's explicit `--device`.
 *
 * `auto` takes WebGPU only when it runs on real hardware. A software adapter such as SwiftShader
 * runs the kernels on this same CPU behind extra copies (into GPU buffers, and for Chromium over
 * the loopback), so the CPU executor (the same merge, summed in f64 where the kernels sum in f32) is faster end to end there;
 * `npm run bench` measures this.
 */
import { existsSync, readdirSync } from 'node:fs';
import { isSoftwareAdapter } from '@lorafuse/kernels';
import type { OpenFiles } from '../fs/inputs.js';
import { createCpuCompareExecutor } from './cpu/compare.js';
import { createCpuExecutor } from './cpu/merge.js';
import type { CpuMergePool } from './cpu/workers.js';
import type { createDawnExecutor } from './dawn/merge.js';
import type { DeviceChoice, DeviceKind, MergeExecutor } from './device.js';
import { LazyExecutor } from './lazy-compare.js';

// The GPU wings and the browser runner are loaded only when a device needs them (see index.ts).
const createWebGpuExecutor: typeof import('./chromium/merge.js').createWebGpuExecutor = async (...args) => (await import('./chromium/merge.js')).createWebGpuExecutor(...args);
const createDawnExecutorLazily: typeof createDawnExecutor = async (...args) => (await import('./dawn/merge.js')).createDawnExecutor(...args);

/** What {@link createExecutor} chose. */
export interface SelectedExecutor {
  readonly executor: MergeExecutor;
  /** One sentence for the report: which device runs the merges and why. */
  readonly reason: string;
}

/** Options of {@link createExecutor} (tests and benchmarks). */
export interface SelectDeviceOptions {
  /** Environment (default `process.env`): `CHROME_PATH`, `LORAFUSE_WEBGPU_ADAPTER`. */
  env?: Record<string, string | undefined>;
  /** Paths probed for GPU device nodes (default: the real ones). */
  gpuProbe?: () => string[];
  /** Starts the Dawn executor (default: `createDawnExecutor` of the Dawn wing). */
  startDawn?: typeof createDawnExecutor;
  /** The run's CPU pool, lent to the CPU executor (default: it starts its own). */
  cpuPool?: CpuMergePool;
}

/**
 * GPU device nodes of this machine: DRM render nodes, NVIDIA's and WSL's devices. Empty means no GPU
 * driver is exposed, so Chromium could only offer a software adapter.
 */
export function gpuDeviceNodes(): string[] {
  const found: string[] = [];
  try {
    for (const name of readdirSync('/dev/dri')) if (name.startsWith('renderD')) found.push(`/dev/dri/${name}`);
  } catch {
    // no DRM
  }
  for (const path of ['/dev/nvidia0', '/dev/dxg', '/dev/kfd']) if (existsSync(path)) found.push(path);
  return found;
}

/** Why `auto` prefers the CPU executor to a software adapter, for the reason sentence. */
const SOFTWARE_ADAPTER_RULE =
  'on such machines the CPU executor (the same merge, summed in f64 where the kernels sum in f32) is faster end to end: a software adapter such as SwiftShader runs the kernels on this same CPU behind extra copies (npm run bench measures this)';

/**
 * Creates the executor for `device`. `webgpu`, `dawn` and `cpu` are taken as given (a missing
 * WebGPU adapter is an error, never a silent fallback). `auto` uses WebGPU on a hardware adapter,
 * found by Dawn in Node first and by Chromium's page second, and the CPU executor when there is no
 * GPU device on this machine (checked without starting anything), or only a software adapter, or
 * neither Dawn nor Chromium; the reason says which.
 */
export async function createExecutor(device: DeviceChoice, files: OpenFiles, options: SelectDeviceOptions = {}): Promise<SelectedExecutor> {
  const env = options.env ?? process.env;
  const cpu = options.cpuPool ? { pool: options.cpuPool } : {};
  if (device === 'cpu') return { executor: createCpuExecutor(files, cpu), reason: '--device cpu' };
  if (device === 'webgpu') {
    const executor = await createWebGpuExecutor(files);
    return { executor, reason: `--device webgpu (${executor.description})` };
  }
  if (device === 'dawn') {
    const executor = await createDawnExecutorLazily(files, { env });
    return { executor, reason: `--device dawn (${executor.description})` };
  }
  if (env['LORAFUSE_WEBGPU_ADAPTER'] === 'swiftshader') {
    return { executor: createCpuExecutor(files, cpu), reason: `auto: LORAFUSE_WEBGPU_ADAPTER=swiftshader asks for a software adapter, and ${SOFTWARE_ADAPTER_RULE}` };
  }
  const nodes = (options.gpuProbe ?? gpuDeviceNodes)();
  const assumeGpu = process.platform === 'darwin' || process.platform === 'win32';
  if (nodes.length === 0 && !assumeGpu) {
    return {
      executor: createCpuExecutor(files, cpu),
      reason: `auto: no GPU device on this machine (no /dev/dri/renderD*, /dev/nvidia0, /dev/dxg or /dev/kfd), so WebGPU could only run on SwiftShader, and ${SOFTWARE_ADAPTER_RULE}`,
    };
  }
  // Dawn first: it starts in milliseconds and moves no bytes through a browser.
  let dawnFailure: string;
  try {
    const dawn = await (options.startDawn ?? createDawnExecutorLazily)(files, { env });
    if (!isSoftwareAdapter(dawn.adapterInfo)) {
      return { executor: dawn, reason: `auto: WebGPU adapter ${dawn.description} is hardware (GPU device ${nodes.join(', ') || 'of the OS'})` };
    }
    await dawn.close();
    dawnFailure = `Dawn's only adapter is ${dawn.description}, a software one`;
  } catch (e) {
    dawnFailure = `Dawn did not start: ${(e as Error).message.split('\n')[0]}`;
  }
  const { findChromium, isRunnerError } = await import('@lorafuse/runner');
  try {
    findChromium(env);
  } catch (e) {
    return { executor: createCpuExecutor(files, cpu), reason: `auto: ${dawnFailure}, and no Chromium for WebGPU (${isRunnerError(e) ? e.message : String(e)})` };
  }
  let webgpu;
  try {
    webgpu = await createWebGpuExecutor(files, { webgpuAdapter: 'auto' });
  } catch (e) {
    return { executor: createCpuExecutor(files, cpu), reason: `auto: WebGPU did not start (${(e as Error).message.split('\n')[0]}), so the CPU executor runs` };
  }
  if (isSoftwareAdapter(webgpu.adapterInfo)) {
    await webgpu.close();
    const a = webgpu.adapterInfo;
    const name = [a.vendor, a.architecture, a.description].filter(Boolean).join(' ') || 'unnamed';
    return { executor: createCpuExecutor(files, cpu), reason: `auto: Chromium's only WebGPU adapter is ${name}, a software fallback, and ${SOFTWARE_ADAPTER_RULE}` };
  }
  return { executor: webgpu, reason: `auto: WebGPU adapter ${webgpu.description} is hardware (GPU device ${nodes.join(', ') || 'of the OS'})` };
}

/**
 * The merge device of `kind`, taken as given (verify's `--device`): the same device `merge
 * --device <kind>` would start, without the reason.
 */
export async function openMergeDeviceOfKind(kind: DeviceKind, files: OpenFiles, options: Pick<SelectDeviceOptions, 'env' | 'cpuPool'> = {}): Promise<MergeExecutor> {
  return (await createExecutor(kind, files, options)).executor;
}

/** Options of {@link openCompareDevice}. */
export interface CompareDeviceOptions {
  /** Environment of Dawn (default `process.env`): `VK_ICD_FILENAMES`, `CHROME_PATH`. */
  env?: Record<string, string | undefined>;
  /** Time limit of one page call in Chromium, in ms. */
  timeoutMs?: number;
}

/**
 * The compare device of `kind` (diff's `--device`), started on its first comparison: a diff whose
 * pairs are all settled by their bytes never starts a browser or a GPU device.
 */
export function openCompareDevice(kind: DeviceKind, files: OpenFiles, options: CompareDeviceOptions = {}): LazyExecutor {
  return new LazyExecutor(kind, () =>
    kind === 'cpu'
      ? Promise.resolve(createCpuCompareExecutor(files))
      : kind === 'dawn'
        ? import('./dawn/compare.js').then((w) => w.createDawnCompareExecutor(files, options.env))
        : import('./chromium/compare.js').then((w) => w.createWebGpuCompareExecutor({ timeoutMs: options.timeoutMs })),
  );
}
