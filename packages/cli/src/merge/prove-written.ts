/**
 * Step 5 of a merge: re-open the files just written — every weight file and the shard index — check
 * their headers and the index against the plan, and prove that what transformers v4 and v5 load
 * from them is byte for byte what was meant (the same proof `lorafuse verify` runs). The weights'
 * fsync runs meanwhile; both finish before anything is renamed.
 */
import { canonicalName, headerMismatch, mergeIntentOf, parseShardIndex, proofFailure, readSafetensorsHeader, writtenHeaderProblems, type ByteSource, type MergePlan, type SafetensorsHeader, type ShardSplit, type TensorRef, type VerifyReport } from '@lorafuse/core';
import { readInputText } from '../fs/input-file.js';
import { openFileSource, type FileByteSource } from '../fs/file-source.js';
import { checksHere, type FileChecks } from '../proof/file-checks.js';
import { proveLoads, type Intended } from '../proof/prove-loads.js';

/** What the proof of a written checkpoint needs. */
export interface ProveWrittenInput {
  /** The written weight files: name and temporary path, in shard order. */
  readonly weights: ReadonlyArray<{ readonly file: string; readonly path: string }>;
  /** How the tensors were meant to be split; with `indexPath`, the written index when sharded. */
  readonly split: ShardSplit;
  readonly indexPath: string | undefined;
  readonly config: Record<string, unknown>;
  readonly plan: MergePlan;
  readonly intents: ReadonlyMap<string, Intended>;
  /** lm_head's intent when the tie step computed it (stored, or loaded through the tie). */
  readonly lmHeadIntent: Intended | undefined;
  /** The input files the copied tensors came from. */
  readonly inputOf: (file: string) => ByteSource;
  /** How files are read for the proof (default: on this thread). */
  readonly checks?: FileChecks;
}

/**
 * The index read back must send every tensor to the file that holds it and name no other file:
 * transformers finds the shards through it alone.
 */
async function checkIndex(indexPath: string, split: ShardSplit, headers: readonly SafetensorsHeader[], fileOf: ReadonlyMap<SafetensorsHeader, string>): Promise<void> {
  const index = parseShardIndex(await readInputText(indexPath), indexPath);
  const problems: string[] = [];
  const holder = new Map(headers.flatMap((h) => h.tensors.map((t) => [t.name, fileOf.get(h)!] as const)));
  for (const [name, file] of index.weightMap) {
    if (holder.get(name) !== file) problems.push(`"${name}" is indexed in ${file} but stored in ${holder.get(name) ?? 'no file'}`);
  }
  for (const name of holder.keys()) if (!index.weightMap.has(name)) problems.push(`"${name}" is not in the index`);
  const files = [...fileOf.values()].sort();
  if (index.shardFiles.join(',') !== files.join(',')) problems.push(`the index names ${index.shardFiles.join(', ')}, written were ${files.join(', ')}`);
  if (index.totalSize !== split.totalSize) problems.push(`total_size is ${index.totalSize}, meant ${split.totalSize}`);
  if (problems.length > 0) throw headerMismatch('model.safetensors.index.json', problems, 'model.safetensors.index.json');
}

/** Proves the written files; throws `VerificationError` (exit 1) on any mismatch. */
export async function proveWritten(input: ProveWrittenInput): Promise<VerifyReport> {
  const { plan } = input;
  const sources: FileByteSource[] = [];
  try {
    const headers: SafetensorsHeader[] = [];
    const fileOf = new Map<SafetensorsHeader, string>();
    const sourceByLabel = new Map<string, ByteSource>();
    for (const w of input.weights) {
      const source = await openFileSource(w.path);
      sources.push(source);
      const header = await readSafetensorsHeader(source);
      headers.push(header);
      fileOf.set(header, w.file);
      sourceByLabel.set(header.label, source);
    }
    const problems = writtenHeaderProblems(plan, headers.map((h) => ({ file: fileOf.get(h)!, header: h })), (name) => input.split.weightMap.get(name));
    if (problems.length > 0) throw headerMismatch(input.weights.length === 1 ? input.weights[0]!.file : 'weight files', problems, input.weights[0]?.file ?? 'model.safetensors');
    if (input.split.sharded) {
      if (!input.indexPath) throw new Error('internal: a sharded output without its index');
      await checkIndex(input.indexPath, input.split, headers, fileOf);
    }
    const checks = input.checks ?? checksHere;
    const knownEqual = new Set<string>();
    for (const header of headers) for (const k of await compareCopiedRuns(header, plan, input.intents, sourceByLabel.get(header.label)!, input.inputOf, checks)) knownEqual.add(k);
    const report = await proveLoads({
      config: input.config,
      headers,
      sourceOf: (file) => sourceByLabel.get(file) ?? input.inputOf(file),
      intendedOf: mergeIntentOf(plan, input.intents, input.lmHeadIntent, 'the user kept the tie with --force'),
      meantBy: 'the merge',
      knownEqual: (a, b) => knownEqual.has(pairKey(a, b)),
      concurrency: 4,
    }, checks);
    if (!report.ok) throw proofFailure(report, 'the written checkpoint', 'Nothing was written. This is a bug in lorafuse: please report it with the inputs.');
    return report;
  } finally {
    await Promise.allSettled(sources.map((s) => s.close()));
  }
}

/**
 * Tensors above this size are compared one by one, several at once (as fast as one big comparison,
 * and overlapping the fsync); runs exist for the per-tensor cost of small ones.
 */
const RUN_TENSOR_MAX_BYTES = 1 << 20;

const pairKey = (a: TensorRef, b: TensorRef) => `${a.file}@${a.fileOffset}+${a.byteLength}|${b.file}@${b.fileOffset}+${b.byteLength}`;

/**
 * Copied tensors that lie back to back in the written file and came from back-to-back ranges of one
 * input file are compared as one range; each tensor of a run found equal is then known equal. With
 * thousands of small tensors, one comparison per tensor would cost two reads each.
 */
async function compareCopiedRuns(header: SafetensorsHeader, plan: MergePlan, intents: ReadonlyMap<string, Intended>, written: ByteSource, inputOf: (file: string) => ByteSource, checks: FileChecks): Promise<Set<string>> {
  const planned = new Set(plan.tensors.map((t) => t.name));
  const pairs = [...header.tensors]
    .filter((t) => planned.has(t.name))
    .sort((x, y) => x.fileOffset - y.fileOffset)
    .map((t) => {
      const intent = intents.get(canonicalName(t.name));
      const out: TensorRef = { file: header.label, name: t.name, dtype: t.dtype, shape: t.shape, fileOffset: t.fileOffset, byteLength: t.byteLength };
      return { out, from: intent?.kind === 'range' ? intent.ref : undefined };
    });
  const known = new Set<string>();
  const flush = async (run: typeof pairs) => {
    if (run.length < 2) return;
    const first = run[0]!;
    const last = run[run.length - 1]!;
    const length = last.out.fileOffset + last.out.byteLength - first.out.fileOffset;
    if (await checks.rangesEqual(written, first.out.fileOffset, inputOf(first.from!.file), first.from!.fileOffset, length)) {
      for (const p of run) known.add(pairKey(p.out, p.from!));
    }
  };
  let run: typeof pairs = [];
  for (const p of pairs) {
    const prev = run[run.length - 1];
    const continues = p.from && p.out.byteLength <= RUN_TENSOR_MAX_BYTES && prev?.from && prev.from.file === p.from.file && prev.from.fileOffset + prev.from.byteLength === p.from.fileOffset && prev.out.fileOffset + prev.out.byteLength === p.out.fileOffset && prev.out.dtype === p.out.dtype && prev.from.dtype === p.from.dtype;
    if (!continues) {
      await flush(run);
      run = p.from && p.out.byteLength <= RUN_TENSOR_MAX_BYTES ? [p] : [];
    } else {
      run.push(p);
    }
  }
  await flush(run);
  return known;
}
