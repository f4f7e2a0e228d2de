/**
 * The size benchmark: a GPT-2-XL-shaped checkpoint (1.56 B parameters, 6.2 GB in f32) generated into
 * the benchmark's temporary directory, with a c_attn r=8 adapter; one run each of `cp + fsync` and
 * `lorafuse merge` on the default device, wall time and peak RSS. The files are removed as soon as
 * the section ends, whatever happens in it.
 */
import { rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { CP_FSYNC_COMMAND, lorafuseCommand, PEER_IDS, reportedDevice, runContender, type E2eCommand, type E2eFigures } from './e2e.js';
import { GPT2_XL, writeBenchAdapter, writeGpt2Base, type BenchAdapterSpec } from './fixture.js';
import { readHeaderOf } from './output-check.js';
import { ratio, summarize } from './stats.js';

/** What the size benchmark measured (or why it did not). */
export interface XlResult {
  /** Layers of the checkpoint that ran; the XL shape has {@link XlResult.fullLayers}. */
  readonly layers: number;
  readonly fullLayers: number;
  readonly shape: string;
  /** The adapter's id (as in the end-to-end section) and description. */
  readonly adapterId: string;
  readonly adapter: string;
  /** Set when the section did not run, with the reason. */
  readonly skipped?: string;
  readonly modelBytes?: number;
  readonly parameters?: number;
  readonly tensors?: number;
  /** Seconds it took to generate the checkpoint (not part of any figure). */
  readonly generateS?: number;
  /** `cp + fsync` and lorafuse, one run each. */
  readonly figures: E2eFigures[];
  /** Wall time of each / the `cp + fsync` one. */
  readonly wallVsFsync: Record<string, number>;
}

/** The XL adapter: LoRA r=8, alpha=16 on every attn.c_attn. */
export const XL_ADAPTER: BenchAdapterSpec = { id: 'c_attn-r8', description: 'LoRA r=8, alpha=16 on every attn.c_attn', leaves: ['attn.c_attn'], rank: 8, alpha: 16 };

/** Runs the size benchmark at `layers` layers of the XL shape (48 for the real thing). */
export async function benchXl(options: { repoRoot: string; workDir: string; layers: number; device: string; floorSkipped?: string; log: (line: string) => void }): Promise<XlResult> {
  const { workDir, layers, log } = options;
  const shapeText = `GPT-2-XL (n_embd ${GPT2_XL.nEmbd}, n_head ${GPT2_XL.nHead}, vocab ${GPT2_XL.vocabSize}, n_positions ${GPT2_XL.nPositions}, ${layers === GPT2_XL.nLayer ? '' : `${layers} of `}${GPT2_XL.nLayer} layers)`;
  const base = { layers, fullLayers: GPT2_XL.nLayer, shape: shapeText, adapterId: XL_ADAPTER.id, adapter: `c_attn r=${XL_ADAPTER.rank}, alpha=${XL_ADAPTER.alpha} on all ${layers} attn.c_attn` };
  const commands: E2eCommand[] = [options.floorSkipped ? { ...CP_FSYNC_COMMAND, skipped: options.floorSkipped } : CP_FSYNC_COMMAND, lorafuseCommand(options.repoRoot, options.device)];
  const shape = { ...GPT2_XL, nLayer: layers };
  // The base, one copy of it and the merge's output side by side never exist: each output is
  // removed after its run. The base and one output must fit, with a margin.
  const layerParams = 12 * shape.nEmbd * shape.nEmbd + 13 * shape.nEmbd;
  const estimate = 4 * (shape.vocabSize * shape.nEmbd + shape.nPositions * shape.nEmbd + layers * layerParams + 2 * shape.nEmbd);
  const fs = await statfs(workDir);
  const free = fs.bavail * fs.bsize;
  if (free < 2 * estimate + 2 ** 30) {
    return { ...base, skipped: `not enough free disk in ${workDir}: ${(free / 1e9).toFixed(1)} GB free, ${((2 * estimate + 2 ** 30) / 1e9).toFixed(1)} GB needed (the base and one output, plus 1 GiB)`, figures: [], wallVsFsync: {} };
  }
  const dir = join(workDir, 'xl');
  try {
    log(`xl: writing the ${shapeText} checkpoint (${(estimate / 1e9).toFixed(2)} GB) ...`);
    const t0 = performance.now();
    const written = await writeGpt2Base(dir, 'gpt2-xl', shape, 1558);
    const adapterDir = await writeBenchAdapter(join(dir, 'adapter-c_attn-r8'), shape, XL_ADAPTER, 1558, 'gpt2-xl');
    const generateS = Number(((performance.now() - t0) / 1000).toFixed(1));
    log(`xl: wrote ${(written.modelBytes / 1e9).toFixed(2)} GB, ${written.parameters} parameters, in ${generateS} s`);
    const expected = await readHeaderOf(join(written.baseDir, 'model.safetensors'));
    const figures: E2eFigures[] = [];
    for (const command of commands) {
      if (command.skipped) {
        figures.push({ id: command.id, label: command.label, status: `not run: ${command.skipped}` });
        continue;
      }
      const out = join(dir, `out-${command.id}`);
      const { sample, failure } = await runContender(command, { base: written.baseDir, adapter: adapterDir, out }, workDir, expected);
      await rm(out, { recursive: true, force: true });
      if (failure) {
        log(`xl ${command.id}: FAILED ${failure}`);
        figures.push({ id: command.id, label: command.label, status: `failed: ${failure}` });
        continue;
      }
      log(`xl ${command.id}: ${sample.wallS.toFixed(2)} s, peak RSS ${sample.rssMB?.toFixed(0) ?? '?'} MB`);
      const device = command.kind === 'merge' ? reportedDevice(sample.stdout) : undefined;
      figures.push({
        id: command.id,
        label: command.label,
        wallS: summarize([sample.wallS], 's'),
        ...(sample.rssMB !== null ? { peakRssMB: summarize([sample.rssMB], 'MB') } : {}),
        status: 'ok',
        ...(device ? { device: device.device, ...(device.reason ? { deviceReason: device.reason } : {}) } : {}),
      });
    }
    const floor = figures.find((f) => f.id === PEER_IDS.fsync)?.wallS;
    const wallVsFsync: Record<string, number> = {};
    if (floor) for (const f of figures) if (f.wallS) wallVsFsync[f.id] = ratio(f.wallS.median, floor.median);
    return { ...base, modelBytes: written.modelBytes, parameters: written.parameters, tensors: written.tensors, generateS, figures, wallVsFsync };
  } catch (e) {
    // A full disk while generating, say: the section reports it and the rest of the benchmark stands.
    log(`xl: FAILED ${(e as Error).message}`);
    return { ...base, skipped: `failed: ${(e as Error).message.slice(0, 300)}`, figures: [], wallVsFsync: {} };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
