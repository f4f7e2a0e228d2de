/**
 * The merge, in the page: the CLI's road (open → plan once → settle the tie → apply → prove) with
 * core's steps, ΔW on WebGPU with the kernels' `withLoraDelta` and W + ΔW on the host with core's
 * `addDeltaThenDora` — what `lorafuse merge --device webgpu` does, so the bytes are the same. Each
 * tensor goes to the output (a chosen directory or a download's Blob parts) as soon as it is made,
 * and the proof — core's `proveLoads` — reads back what was written. A failure discards the output.
 */
import {
  addDeltaThenDora,
  computeTokenRows,
  canonicalName,
  compareDotNatural,
  compareTiePair,
  computeLoraBias,
  decodeToF32,
  doraInSequence,
  EnvironmentError,
  headerMismatch,
  layoutSafetensors,
  mergeOnCpu,
  mergeIntentOf,
  nonFiniteRefusal,
  planChecked,
  proofFailure,
  proveLoads,
  rangesEqualOnce,
  readSafetensorsHeader,
  resolveTie,
  SafetensorsPositionalWriter,
  withLookAhead,
  writtenHeaderProblems,
  type CheckedPlan,
  type FloatCodecDtype,
  type Intended,
  type MergePlan,
  type MergeTensor,
  type PlannedTensor,
  type PlanMergeOptions,
  type ByteSource,
  type LookAhead,
  type TensorRef,
  type VerifyReport,
} from '@lorafuse/core';
import { requestLorafuseDevice } from '@lorafuse/kernels';
import { withLoraDelta } from '@lorafuse/kernels/internal';
import { digestBytes, digestRange } from './digest.js';
import { OUTPUT_WEIGHTS, type MergeOutput, type WrittenFiles } from './merge-output.js';
import type { OpenedInputs } from './open-inputs.js';
import { fileSource } from './picked-files.js';

/** Bytes of merged tensors computed ahead of their turn. */
const MERGE_AHEAD_BYTES = 32 * 2 ** 20;
/** Checks of the proof in flight at once: each holds two compared slices, or one merged tensor it hashes. */
const PROOF_CONCURRENCY = 4;

/** The CLI's merge options the page takes: the plan's, and `--allow-nonfinite`. */
export interface PageMergeOptions extends PlanMergeOptions {
  /** Write merged tensors even if they hold NaN or Inf once rounded (`--allow-nonfinite`). */
  readonly allowNonFinite?: boolean;
}

/** What the page shows and offers after a merge. */
export interface PageMergeResult {
  readonly plan: MergePlan;
  readonly doctorNotes: CheckedPlan['doctorNotes'];
  readonly adapterDescription: string;
  /** model.safetensors and config.json where they were written. */
  readonly files: WrittenFiles;
  readonly proof: VerifyReport;
}

/** Step reports for the page's status line. */
export type OnStep = (text: string) => void;

/**
 * Called once per merged tensor while its ΔW is on the device (`delta`: row-major f32 `[rows, cols]`
 * as W is stored; undefined when empty), valid until the returned promise settles: take what a
 * picture needs there, since ΔW itself is gone after it.
 */
export type OnDelta = (device: GPUDevice, tensor: { name: string; rows: number; cols: number }, delta: GPUBuffer | undefined) => Promise<void>;

/** The WebGPU device of the page, or an `EnvironmentError` saying why there is none. */
async function startDevice(): Promise<{ device: GPUDevice; description: string }> {
  const hint = 'Open the app in a browser with WebGPU (a recent Chrome or Edge), or merge with the CLI: `lorafuse merge --device cpu`.';
  if (!('gpu' in navigator) || !navigator.gpu) throw new EnvironmentError('WEBGPU_UNAVAILABLE', 'this browser has no WebGPU (navigator.gpu is missing)', { hint });
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) throw new EnvironmentError('WEBGPU_UNAVAILABLE', 'WebGPU gave no adapter (navigator.gpu.requestAdapter() returned null)', { hint });
  const info = adapter.info;
  const description = [info.vendor, info.architecture, info.description].filter((s) => s).join(' ') || 'WebGPU adapter';
  return { device: await requestLorafuseDevice(adapter, 'lorafuse app device'), description };
}

/**
 * Runs the whole merge on the opened inputs with the CLI's options (`--tie`, `--force`,
 * `--follow`, `--pad-token-id`, `--allow-nonfinite`), writing into `output`, and hands each ΔW to `onDelta` (the picture
 * of what the adapters changed); throws the typed errors the CLI throws, and then `output` holds nothing.
 */
export async function mergeInPage(inputs: OpenedInputs, onStep: OnStep, output: MergeOutput, onDelta?: OnDelta, options: PageMergeOptions = {}): Promise<PageMergeResult> {
  onStep('planning');
  const { allowNonFinite = false, ...planOptions } = options;
  const planned = planChecked(inputs.planInput, { tie: 'auto', force: false, ...planOptions });
  const read = (ref: TensorRef) => inputs.sourceOf(ref.file).read(ref.fileOffset, ref.byteLength);

  onStep('starting WebGPU');
  const { device, description } = await startDevice();
  let ahead: LookAhead<PlannedTensor, Uint8Array | undefined> | undefined;
  try {
    const computeMerge = async (t: MergeTensor) => {
      // DoRA adapters among several: the per-adapter steps run on the CPU (core), as on every device.
      if (doraInSequence(t.source)) return mergeOnCpu(t.source, t.dtype as FloatCodecDtype, read);
      const { base, deltas } = t.source;
      const { rows, cols } = deltas[0]!;
      const terms = [];
      for (const d of deltas) {
        terms.push({ a: decodeToF32(d.a.dtype as FloatCodecDtype, await read(d.a)), b: decodeToF32(d.b.dtype as FloatCodecDtype, await read(d.b)), rank: d.rank, orientation: d.orientation, scale: d.scale, label: d.modulePath });
      }
      // A fresh read: W + ΔW is summed into these bytes.
      const w = await read(base);
      return withLoraDelta(device, { rows, cols, terms, label: `ΔW ${t.name}` }, async (delta, onDevice) => {
        await onDelta?.(device, { name: t.name, rows, cols }, onDevice);
        return addDeltaThenDora(t.source, w, delta, t.dtype as FloatCodecDtype, read);
      });
    };
    const computed = async (t: PlannedTensor): Promise<Uint8Array | undefined> => {
      const s = t.source;
      let out: { bytes: Uint8Array; nonFinite: number } | undefined;
      if (s.kind === 'merge') out = await computeMerge(t as MergeTensor);
      else if (s.kind === 'bias') out = await computeLoraBias(s, read);
      else if (s.kind === 'rows') return computeTokenRows(s, read);
      if (!out) return undefined;
      const refusal = allowNonFinite ? undefined : nonFiniteRefusal(t, out, 'tick "--allow-nonfinite" in the options to write the tensor anyway');
      if (refusal) throw refusal;
      return out.bytes;
    };

    // The tie, as the CLI's settle-tie step settles it: a pending plan is decided from the computed pair.
    let plan = planned.plan;
    const precomputed = new Map<string, Uint8Array>();
    let lmHeadIntent: Intended | undefined;
    if (plan.tie.state === 'pending') {
      onStep('settling the tie');
      const wteName = plan.tie.wte.name;
      const wte = plan.tensors.find((t) => canonicalName(t.name) === canonicalName(wteName))!;
      const head = plan.tie.lmHead;
      const wteBytes = (await computed(wte)) ?? (await copiedBytes(wte, read));
      const headBytes = (await computed(head)) ?? (await copiedBytes(head, read));
      plan = resolveTie(plan, compareTiePair(wteBytes, wte.dtype, headBytes, head.dtype, wte.shape[1] ?? 1));
      precomputed.set(wte.name, wteBytes).set(head.name, headBytes);
      lmHeadIntent = { kind: 'digest', digest: await digestBytes(headBytes) };
    }

    // One weight file, its tensors in transformers' sorted order, as the CLI lays it out.
    const specs = plan.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape] })).sort((a, b) => compareDotNatural(a.name, b.name));
    const layout = layoutSafetensors(specs);
    const weights = await output.openWeights(layout.totalSize, inputs.carried.map((c) => c.name));
    const writer = new SafetensorsPositionalWriter(weights, layout);
    await writer.start();
    const byName = new Map(plan.tensors.map((t) => [t.name, t] as const));
    // Merges run ahead of their turn, within MERGE_AHEAD_BYTES of results: the device computes the
    // next ones while the tensors in between go to the output, instead of the two taking turns.
    const sizeOf = new Map(layout.entries.map((e) => [e.name, e.end - e.begin] as const));
    ahead = withLookAhead(computed, { limit: MERGE_AHEAD_BYTES, cost: (t) => sizeOf.get(t.name)! });
    ahead.prefetch(layout.entries.map((e) => byName.get(e.name)!).filter((t) => t.source.kind === 'merge' && !precomputed.has(t.name)));
    const intents = new Map<string, Intended>();
    let done = 0;
    for (const entry of layout.entries) {
      const t = byName.get(entry.name)!;
      onStep(`merging ${++done}/${layout.entries.length}: ${t.name}`);
      const ready = precomputed.get(t.name) ?? (t.source.kind === 'merge' ? await ahead.run(t) : await computed(t));
      // Written, a tensor is the output's: the page keeps only its digest.
      precomputed.delete(t.name);
      if (ready) {
        await writer.writeTensorChunk(t.name, ready);
        intents.set(canonicalName(t.name), { kind: 'digest', digest: await digestBytes(ready) });
      } else {
        // A copied tensor goes from the picked file to the output without passing through the page.
        const from = copiedRef(t);
        await weights.writeBlobAt(writer.placeTensor(t.name), inputs.sourceOf(from.file).slice(from.fileOffset, from.byteLength));
        intents.set(canonicalName(t.name), { kind: 'range', ref: from });
      }
    }
    await writer.finish();
    onStep('closing the output');
    const written = fileSource(`merged/${OUTPUT_WEIGHTS}`, await weights.close());
    const config = plan.outputConfig ? new TextEncoder().encode(`${JSON.stringify(plan.outputConfig, null, 2)}\n`) : inputs.base.configBytes;

    onStep('proving what transformers loads');
    const proof = await proveModel(written, plan, intents, lmHeadIntent, inputs);
    const files = await output.commit(config, inputs.carried);
    return { plan, doctorNotes: planned.doctorNotes, adapterDescription: description, files, proof };
  } catch (e) {
    // Whatever was written goes: a failed merge leaves nothing in the output.
    await output.discard();
    throw e;
  } finally {
    // After a failure, merges still ahead settle before their device goes.
    await ahead?.drain();
    device.destroy();
  }
}

function copiedRef(t: PlannedTensor): TensorRef {
  if (t.source.kind !== 'copy' && t.source.kind !== 'replace') throw new Error(`internal: unhandled tensor source of ${t.name}`);
  return t.source.from;
}

function copiedBytes(t: PlannedTensor, read: (ref: TensorRef) => Promise<Uint8Array>): Promise<Uint8Array> {
  return read(copiedRef(t));
}

/**
 * The CLI's proof of a written checkpoint, on the bytes read back from where they were written: the
 * header must hold every planned tensor as planned, and what transformers v4 and v5 load must be what
 * was meant.
 */
async function proveModel(written: ByteSource, plan: MergePlan, intents: ReadonlyMap<string, Intended>, lmHeadIntent: Intended | undefined, inputs: OpenedInputs): Promise<VerifyReport> {
  const header = await readSafetensorsHeader(written);
  const problems = writtenHeaderProblems(plan, [{ file: OUTPUT_WEIGHTS, header }], () => OUTPUT_WEIGHTS);
  if (problems.length > 0) throw headerMismatch(OUTPUT_WEIGHTS, problems, OUTPUT_WEIGHTS);
  const report = await proveLoads({
    config: plan.outputConfig ?? plan.baseConfig,
    headers: [header],
    sourceOf: (file) => (file === written.label ? written : inputs.sourceOf(file)),
    intendedOf: mergeIntentOf(plan, intents, lmHeadIntent, 'the tie was kept by force'),
    meantBy: 'the merge',
    digestRange,
    rangesEqual: rangesEqualOnce(),
    // Reads of picked files and Blob parts wait on the browser's file threads: several checks at
    // once keep them busy (one at a time, the proof took a third of the app's merge time).
    concurrency: PROOF_CONCURRENCY,
  });
  if (!report.ok) throw proofFailure(report, 'the merged checkpoint', 'Nothing was kept or offered for download. This is a bug in lorafuse: please report it with the inputs.');
  return report;
}
