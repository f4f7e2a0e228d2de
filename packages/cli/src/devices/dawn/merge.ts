/**
 * The Dawn executor: the same WGSL merge kernel as the Chromium executor, on Dawn inside this Node
 * process (see device.ts). No browser to start (a device in ~15 ms instead of ~0.7 s) and no
 * loopback transfers: A and B are written to the GPU, ΔW is read back and added to W in Node exactly
 * as the Chromium executor does it, so both WebGPU paths give the same bytes for the same kernel build.
 */
import { addDeltaThenDora, decodeToF32, doraInSequence, EnvironmentError, mergeOnCpu, withLookAhead, type FloatCodecDtype } from '@lorafuse/core';
import type { AdapterIdentity } from '@lorafuse/kernels';
import { withLoraDelta } from '@lorafuse/kernels/internal';
import type { OpenFiles } from '../../fs/inputs.js';
import type { MergedBytes, MergeExecutor, MergeTensor } from '../device.js';
import { startDawnDevice } from './device.js';

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

  const mergeOne = async (t: MergeTensor): Promise<MergedBytes> => {
    if (dawn.lostReason !== undefined) throw new EnvironmentError('DEVICE_LOST', `the Dawn WebGPU device was lost: ${dawn.lostReason}`, { hint: CPU_HINT });
    // DoRA adapters among several: the per-adapter steps run on the CPU (core), as on every device.
    if (doraInSequence(t.source)) return mergeOnCpu(t.source, t.dtype as FloatCodecDtype, read);
    const { base, deltas } = t.source;
    const [wBytes, ...factorBytes] = await Promise.all([read(base), ...deltas.flatMap((d) => [read(d.a), read(d.b)])]);
    const terms = deltas.map((d, i) => ({ a: decodeToF32(d.a.dtype as FloatCodecDtype, factorBytes[2 * i]!), b: decodeToF32(d.b.dtype as FloatCodecDtype, factorBytes[2 * i + 1]!), rank: d.rank, orientation: d.orientation, scale: d.scale, label: d.modulePath }));
    let added = false;
    try {
      return await withLoraDelta(device, { rows: deltas[0]!.rows, cols: deltas[0]!.cols, terms, label: `ΔW ${t.name}` }, (delta) => {
        added = true;
        return addDeltaThenDora(t.source, wBytes!, delta, t.dtype as FloatCodecDtype, read);
      });
    } catch (e) {
      // The GPU's own failures (out of memory, validation) are the environment's; ours are bugs.
      if (added) throw e;
      throw new EnvironmentError('GPU_ERROR', `merging "${t.name}" on Dawn failed: ${(e as Error).message}`, { subject: t.name, hint: CPU_HINT });
    }
  };
  const prefetcher = withLookAhead(mergeOne, { limit: options.depth ?? 2 });
  return {
    device: 'dawn',
    description,
    adapterInfo,
    merge: (t) => prefetcher.run(t),
    prefetch: (tensors) => prefetcher.prefetch(tensors),
    close: async () => {
      await prefetcher.drain();
      dawn.destroy();
    },
  };
}
