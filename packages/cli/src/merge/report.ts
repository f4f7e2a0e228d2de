/** The report of a merge, as `merge --json` prints it. */
import { doraInSequence, PARAMETER_LAYOUT, tieOutcome, weightLayoutOfModule, type Finding, type LoraDeltaSpec, type MergePlan, type MergeTensor, type VerifyReport } from '@lorafuse/core';

/** The report `merge --json` prints. */
export interface MergeReport {
  ok: true;
  device: 'cpu' | 'webgpu' | 'dawn';
  deviceDescription: string;
  /** Why this device ran the merges (`--device auto` explains its choice). */
  deviceReason: string;
  base: string;
  /** The first adapter's directory (the only one, unless several were merged). */
  adapter: string;
  /** Every adapter merged, in order, with its weight. */
  adapters: Array<{ dir: string; weight: number }>;
  /**
   * For several or weighted adapters: what the merge computes and how it relates to PEFT's ways of
   * combining adapters; null for one adapter at weight 1.
   */
  combination: { formula: string; peftEquivalent: string } | null;
  out: string;
  tensors: { merged: number; replaced: number; added: number; copied: number };
  /**
   * One entry per LoRA delta: a module several adapters train appears once per adapter. `scale`
   * includes the weight; `dora`: this adapter's DoRA magnitude vector rescales the module per output feature.
   */
  loraModules: Array<{ module: string; adapter: string; weight: number; rank: number; alpha: number; scale: number; orientation: string; dora: boolean }>;
  tie: { decision: string; reason: string };
  configChanges: readonly string[];
  findings: readonly Finding[];
  verified: Array<{ transformers: string; tied: boolean; parameters: number }>;
  /**
   * The files lorafuse wrote, in order: config.json, model.safetensors.index.json when the weights
   * are sharded, then model.safetensors or model-0000i-of-0000n.safetensors.
   */
  filesWritten: string[];
  /** The shard size limit the weights were split by, in bytes (`--max-shard-size`). */
  maxShardSize: number;
  filesCopied: string[];
  filesCopiedFromAdapter: string[];
  /** The adapter directory those tokenizer files come from, or null. */
  tokenizerFrom: string | null;
  /** Files of an earlier output in `out` that this one replaced or removed (`--overwrite`). */
  replaced: string[];
  bytesWritten: number;
  /**
   * Weight files that began as the operating system's copy of an input file (in the kernel, or a
   * reflink), because the input's tensors already lay where the output puts them; `bytes` of
   * tensor data were left as copied (and proven like the rest), only the others were written.
   */
  copiedByOs: Array<{ file: string; from: string; bytes: number }>;
  seconds: number;
}

/** What the report is made of. */
export interface MergeOutcome {
  readonly plan: MergePlan;
  readonly doctorNotes: readonly Finding[];
  readonly device: { readonly device: MergeReport['device']; readonly description: string; readonly reason: string };
  readonly dirs: { readonly base: string; readonly out: string };
  /** The adapter whose tokenizer the output carries, or null. */
  readonly tokenizerFrom: string | null;
  readonly proof: VerifyReport;
  readonly filesWritten: readonly string[];
  readonly maxShardSize: number;
  readonly filesCopied: string[];
  /** The adapter's tokenizer files, which replace the base's. */
  readonly filesCopiedFromAdapter: string[];
  readonly replaced: string[];
  readonly bytesWritten: number;
  readonly copiedByOs: ReadonlyArray<{ readonly file: string; readonly from: string; readonly bytes: number }>;
  readonly seconds: number;
}

/** Builds the report of a finished merge. */
export function mergeReport(o: MergeOutcome): MergeReport {
  const { plan } = o;
  const merges = plan.tensors.filter((t): t is MergeTensor => t.source.kind === 'merge');
  return {
    ok: true,
    device: o.device.device,
    deviceDescription: o.device.description,
    deviceReason: o.device.reason,
    base: o.dirs.base,
    adapter: plan.adapters[0]!.label,
    adapters: plan.adapters.map((a) => ({ dir: a.label, weight: a.weight })),
    combination: plan.adapters.length === 1 && plan.adapters[0]!.weight === 1 ? null : combinationOf(merges.some((t) => doraInSequence(t.source))),
    out: o.dirs.out,
    tensors: { merged: plan.summary.merged, replaced: plan.summary.replaced, added: plan.summary.added, copied: plan.summary.copied },
    loraModules: merges.flatMap((t) => t.source.deltas.map((d) => ({ module: d.modulePath, adapter: d.adapter, weight: d.weight, rank: d.rank, alpha: d.alpha, scale: d.scale, orientation: layoutLabel(d), dora: t.source.dora?.some((s) => s.adapter === d.adapter) === true }))),
    tie: tieOutcome(plan),
    configChanges: plan.configChanges,
    findings: [...o.doctorNotes, ...plan.findings],
    verified: o.proof.byVersion.map((v) => ({ transformers: v.version, tied: v.tied, parameters: v.checks.length })),
    filesWritten: [...o.filesWritten],
    maxShardSize: o.maxShardSize,
    filesCopied: o.filesCopied,
    filesCopiedFromAdapter: o.filesCopiedFromAdapter,
    tokenizerFrom: o.tokenizerFrom,
    replaced: o.replaced,
    bytesWritten: o.bytesWritten,
    copiedByOs: o.copiedByOs.map((c) => ({ ...c })),
    seconds: o.seconds,
  };
}

/** How a delta was laid on its weight, in words: a Conv1D given `B·A` as stored was a wrapped parameter. */
function layoutLabel(d: LoraDeltaSpec): string {
  const layout = weightLayoutOfModule(d.modulePath);
  if (layout?.kind === 'conv1d' && d.orientation === PARAMETER_LAYOUT.orientation) return PARAMETER_LAYOUT.label;
  return layout?.label ?? 'Conv1D [in, out]';
}

/** How several adapters (or one with a weight) were combined, and what in PEFT gives the same. */
function combinationOf(doraAmongSeveral: boolean): { formula: string; peftEquivalent: string } {
  const lora = {
    formula: 'W + Σ wᵢ·sᵢ·BᵢAᵢ per merged weight (wᵢ the adapter\'s weight, sᵢ its LoRA scaling), each product exact, added in f32 in adapter order, rounded once',
    peftEquivalent: 'PEFT\'s add_weighted_adapter(adapters, weights, combination_type="cat") followed by merge_and_unload, without the cross terms of "linear" or the doubled scaling of "svd" in PEFT <= 0.20; full tensors and trainable-token rows are not weighted',
  };
  if (!doraAmongSeveral) return lora;
  return {
    formula: `${lora.formula}; where a DoRA adapter trains a weight, the adapters apply in order: V = W, then V + ΔWᵢ for a LoRA adapter and mᵢ/‖W + ΔWᵢ‖ ⊙ (V + ΔWᵢ) for a DoRA one (ΔWᵢ = wᵢ·sᵢ·BᵢAᵢ), in f32, rounded once`,
    peftEquivalent: 'PEFT 0.21\'s model with every adapter active (set_adapter([...]), each scaling times its weight), unmerged, and its merge_and_unload of them in that order, which takes each DoRA norm from the unmerged weight; add_weighted_adapter builds a plain LoRA without the magnitude vectors, so it does not give this',
  };
}
