/** The report of a merge, as `merge --json` prints it. */
import { PARAMETER_LAYOUT, weightLayoutOfModule, type Finding, type LoraDeltaSpec, type MergePlan, type MergeTensor, type VerifyReport } from '@lorafuse/core';

/** The report `merge --json` prints. */
export interface MergeReport {
  ok: true;
  device: 'cpu' | 'webgpu' | 'dawn';
  deviceDescription: string;
  /** Why this device ran the merges (`--device auto` explains its choice). */
  deviceReason: string;
  base: string;
  adapter: string;
  out: string;
  tensors: { merged: number; replaced: number; added: number; copied: number };
  loraModules: Array<{ module: string; rank: number; alpha: number; scale: number; orientation: string }>;
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
  /** Files of an earlier output in `out` that this one replaced or removed (`--overwrite`). */
  replaced: string[];
  bytesWritten: number;
  seconds: number;
}

/** What the report is made of. */
export interface MergeOutcome {
  readonly plan: MergePlan;
  readonly doctorNotes: readonly Finding[];
  readonly device: { readonly device: MergeReport['device']; readonly description: string; readonly reason: string };
  readonly dirs: { readonly base: string; readonly adapter: string; readonly out: string };
  readonly proof: VerifyReport;
  readonly filesWritten: readonly string[];
  readonly maxShardSize: number;
  readonly filesCopied: string[];
  /** The adapter's tokenizer files, which replace the base's. */
  readonly filesCopiedFromAdapter: string[];
  readonly replaced: string[];
  readonly bytesWritten: number;
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
    adapter: o.dirs.adapter,
    out: o.dirs.out,
    tensors: { merged: plan.summary.merged, replaced: plan.summary.replaced, added: plan.summary.added, copied: plan.summary.copied },
    loraModules: merges.flatMap((t) => t.source.deltas.map((d) => ({ module: d.modulePath, rank: d.rank, alpha: d.alpha, scale: d.scale, orientation: layoutLabel(d) }))),
    tie: plan.tie.state === 'decided'
      ? { decision: plan.tie.decision, reason: plan.tie.reason }
      : { decision: plan.tie.state === 'base-untied' ? 'base-untied' : 'unchanged', reason: plan.tie.state === 'base-untied' ? 'the base stores its own lm_head' : 'the adapter does not touch wte or lm_head' },
    configChanges: plan.configChanges,
    findings: [...o.doctorNotes, ...plan.findings],
    verified: o.proof.byVersion.map((v) => ({ transformers: v.version, tied: v.tied, parameters: v.checks.length })),
    filesWritten: [...o.filesWritten],
    maxShardSize: o.maxShardSize,
    filesCopied: o.filesCopied,
    filesCopiedFromAdapter: o.filesCopiedFromAdapter,
    replaced: o.replaced,
    bytesWritten: o.bytesWritten,
    seconds: o.seconds,
  };
}

/** How a delta was laid on its weight, in words: a Conv1D given `B·A` as stored was a wrapped parameter. */
function layoutLabel(d: LoraDeltaSpec): string {
  const layout = weightLayoutOfModule(d.modulePath);
  if (layout?.kind === 'conv1d' && d.orientation === PARAMETER_LAYOUT.orientation) return PARAMETER_LAYOUT.label;
  return layout?.label ?? 'Conv1D [in, out]';
}
