/**
 * The merge, in the page: the CLI's road (open → plan once → settle the tie → apply → prove) with
 * core's steps, ΔW on WebGPU with the kernels' `withLoraDelta` and W + ΔW on the host with core's
 * `addDeltaThenDora` — what `lorafuse merge --device webgpu` does, so the bytes are the same. The
 * output is assembled in memory (small checkpoints: a streaming writer is a later step) and proven
 * with core's `proveLoads` before it is offered for download.
 */
import {
  addDeltaThenDora,
  applyTokenRows,
  canonicalName,
  compareDotNatural,
  compareTiePair,
  computeLoraBias,
  decodeToF32,
  EnvironmentError,
  headerMismatch,
  layoutSafetensors,
  memorySource,
  mergeIntentOf,
  nonFiniteRefusal,
  planChecked,
  proofFailure,
  proveLoads,
  readSafetensorsHeader,
  resolveTie,
  SafetensorsPositionalWriter,
  writtenHeaderProblems,
  type CheckedPlan,
  type FloatCodecDtype,
  type Intended,
  type MergePlan,
  type MergeTensor,
  type PlannedTensor,
  type TensorRef,
  type VerifyReport,
} from '@lorafuse/core';
import { requestLorafuseDevice } from '@lorafuse/kernels';
import { withLoraDelta } from '@lorafuse/kernels/internal';
import { digestBytes, digestRange } from './digest.js';
import type { OpenedInputs } from './open-inputs.js';

/** The name the merged weights are saved under (one file: the app does not shard). */
export const OUTPUT_WEIGHTS = 'model.safetensors';

/** What the page shows and offers after a merge. */
export interface PageMergeResult {
  readonly plan: MergePlan;
  readonly doctorNotes: CheckedPlan['doctorNotes'];
  readonly adapterDescription: string;
  readonly model: Uint8Array;
  readonly config: Uint8Array;
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

/** Runs the whole merge on the opened inputs; throws the typed errors the CLI throws. */
export async function mergeInPage(inputs: OpenedInputs, onStep: OnStep, onDelta?: OnDelta): Promise<PageMergeResult> {
  onStep('planning');
  const planned = planChecked(inputs.planInput, { tie: 'auto', force: false });
  const read = (ref: TensorRef) => inputs.sourceOf(ref.file).read(ref.fileOffset, ref.byteLength);

  onStep('starting WebGPU');
  const { device, description } = await startDevice();
  try {
    const computeMerge = async (t: MergeTensor) => {
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
      else if (s.kind === 'rows') return applyTokenRows(await read(s.base), s.base.dtype as FloatCodecDtype, await read(s.rows), s.rows.dtype as FloatCodecDtype, s.indices, s.base.shape[1] ?? 1);
      if (!out) return undefined;
      const refusal = nonFiniteRefusal(t, out, 'merge it with the CLI and --allow-nonfinite');
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
    const model = new Uint8Array(layout.totalSize);
    const writer = new SafetensorsPositionalWriter({ writeAt: async (offset, chunk) => void model.set(chunk, offset) }, layout);
    await writer.start();
    const byName = new Map(plan.tensors.map((t) => [t.name, t] as const));
    const intents = new Map<string, Intended>();
    let done = 0;
    for (const entry of layout.entries) {
      const t = byName.get(entry.name)!;
      onStep(`merging ${++done}/${layout.entries.length}: ${t.name}`);
      const ready = precomputed.get(t.name) ?? (await computed(t));
      if (ready) {
        await writer.writeTensorChunk(t.name, ready);
        intents.set(canonicalName(t.name), { kind: 'digest', digest: await digestBytes(ready) });
      } else {
        const from = copiedRef(t);
        await writer.writeTensorChunk(t.name, await read(from));
        intents.set(canonicalName(t.name), { kind: 'range', ref: from });
      }
    }
    await writer.finish();
    const config = plan.outputConfig ? new TextEncoder().encode(`${JSON.stringify(plan.outputConfig, null, 2)}\n`) : inputs.base.configBytes;

    onStep('proving what transformers loads');
    const proof = await proveModel(model, plan, intents, lmHeadIntent, inputs);
    return { plan, doctorNotes: planned.doctorNotes, adapterDescription: description, model, config, proof };
  } finally {
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
 * The CLI's proof of a written checkpoint on the bytes in memory: the header read back must hold
 * every planned tensor as planned, and what transformers v4 and v5 load must be what was meant.
 */
async function proveModel(model: Uint8Array, plan: MergePlan, intents: ReadonlyMap<string, Intended>, lmHeadIntent: Intended | undefined, inputs: OpenedInputs): Promise<VerifyReport> {
  const written = memorySource(`merged/${OUTPUT_WEIGHTS}`, model);
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
  });
  if (!report.ok) throw proofFailure(report, 'the merged checkpoint', 'Nothing was offered for download. This is a bug in lorafuse: please report it with the inputs.');
  return report;
}
