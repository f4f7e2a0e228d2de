/**
 * Step 4 of a merge: write the output under temporary names — config.json, the shard index when
 * the weights are split, then every tensor of each weight file at its offset — and record what
 * each tensor was meant to be, for the proof. The weights are split as transformers'
 * `save_pretrained` splits a loaded model (names in its sorted order, greedily up to the limit); one
 * file is `model.safetensors`. Unchanged tensors stream from input to output in file order while
 * the device computes the merges (each written as soon as it is ready), so neither waits for the other.
 */
import { join } from 'node:path';
import { canonicalName, cloneSourceFor, compareDotNatural, countParameters, layoutSafetensors, renderShardIndex, SafetensorsPositionalWriter, SHARD_INDEX_FILE, splitIntoShards, type MergePlan, type MergeTensor, type PlannedTensor, type SafetensorsLayout, type ShardSplit, type TensorRef } from '@lorafuse/core';
import type { MergeExecutor } from '../devices/index.js';
import { readInputFile } from '../fs/input-file.js';
import type { OpenFiles } from '../fs/inputs.js';
import type { OutputFile, OutputTransaction } from '../fs/output-dir.js';
import { Progress, type Io } from '../output.js';
import { digestBytes } from '../proof/digest.js';
import type { Intended } from '../proof/prove-loads.js';
import { copyRuns, type TensorProducer } from './tensor-producer.js';

/** What {@link applyPlan} needs. */
export interface ApplyInput {
  readonly plan: MergePlan;
  /** The base directory and its config.json (copied when the plan changes nothing in it). */
  readonly baseDir: string;
  readonly tx: OutputTransaction;
  readonly produce: TensorProducer;
  /** The open input files (a weight file may start as a copy of one). */
  readonly files: OpenFiles;
  /** Computed while the tie was settled: written as they are. */
  readonly precomputed: ReadonlyMap<string, Uint8Array>;
  /** The device, possibly still starting (only merges wait for it). */
  readonly device: Promise<MergeExecutor>;
  /** Bytes of tensor data a weight file may hold before the next one starts (`--max-shard-size`). */
  readonly maxShardSize: number;
  readonly io: Io;
  readonly quiet: boolean;
}

/** One weight file written: its name, layout and handle (written, still open). */
export interface WrittenWeights {
  readonly file: string;
  readonly layout: SafetensorsLayout;
  readonly output: OutputFile;
}

/** What was written. */
export interface Applied {
  /** How the tensors were split into files. */
  readonly split: ShardSplit;
  /** The weight files, in shard order. */
  readonly weights: readonly WrittenWeights[];
  /** Every file written, in the order written (config.json, the index if any, the weight files). */
  readonly filesWritten: readonly string[];
  /** Bytes of the weight files. */
  readonly weightBytes: number;
  /** Weight files that began as the OS's copy of an input file, and the tensor bytes left as copied. */
  readonly copiedByOs: ReadonlyArray<{ readonly file: string; readonly from: string; readonly bytes: number }>;
  /** The config the output carries. */
  readonly config: Record<string, unknown>;
  /** What every written tensor was meant to be, by canonical name. */
  readonly intents: ReadonlyMap<string, Intended>;
  /** Flushes the weight files to disk and closes them. */
  close(): Promise<void>;
}

/** Writes config.json, the index (when sharded) and the weight files into the transaction; throws on the first failure. */
export async function applyPlan(input: ApplyInput): Promise<Applied> {
  const { plan, tx, produce, precomputed } = input;
  // config.json first: its fsync is cheap now, while after the weights it would wait for all of
  // their dirty pages (ext4's ordered mode commits them with it). The index likewise.
  const config = plan.outputConfig ?? plan.baseConfig;
  if (plan.outputConfig) await tx.writeFile('config.json', new TextEncoder().encode(`${JSON.stringify(plan.outputConfig, null, 2)}\n`));
  else await tx.writeFile('config.json', await readInputFile(join(input.baseDir, 'config.json')));

  const specs = plan.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape] })).sort((a, b) => compareDotNatural(a.name, b.name));
  // A layout checks names and shapes and gives each tensor's stored size.
  const whole = layoutSafetensors(specs);
  const sizeOf = new Map(whole.entries.map((e) => [e.name, e.end - e.begin] as const));
  const split = splitIntoShards(specs.map((s) => ({ name: s.name, byteLength: sizeOf.get(s.name)! })), input.maxShardSize);
  const filesWritten = ['config.json'];
  if (split.sharded) {
    await tx.writeFile(SHARD_INDEX_FILE, new TextEncoder().encode(renderShardIndex(split, countParameters(specs))));
    filesWritten.push(SHARD_INDEX_FILE);
  }

  const specByName = new Map(specs.map((s) => [s.name, s] as const));
  const byName = new Map(plan.tensors.map((t) => [t.name, t] as const));
  const layouts = split.files.map((f) => ({ file: f.file, layout: split.sharded ? layoutSafetensors(f.tensors.map((n) => specByName.get(n)!)) : whole }));
  // Each file's tensors in its own order: copied runs never cross a file.
  const merges = layouts.flatMap((l) => l.layout.entries.map((e) => byName.get(e.name)!)).filter((t): t is MergeTensor => t.source.kind === 'merge' && !precomputed.has(t.name));
  // Look ahead: the device fetches and merges the first tensors while the weight files are
  // created (a copied input file takes a while) and while each result is written. A device that
  // fails to start fails the merges below.
  if (merges.length > 0) input.device.then((d) => d.prefetch?.(merges)).catch(() => undefined);

  const weights: Array<WrittenWeights & { writer: SafetensorsPositionalWriter }> = [];
  // Tensors that lie in an input file just where the output puts them: that file is copied by the
  // OS and they are not written again (see cloneSourceFor).
  const inPlace = new Map<string, TensorRef>();
  const copiedByOs: Array<Applied['copiedByOs'][number]> = [];
  for (const { file, layout } of layouts) {
    const clone = cloneSourceFor(layout, byName, (f) => input.files.get(f).size, (name) => precomputed.has(name));
    const output = await tx.createFile(file, clone ? { path: input.files.get(clone.file).path, size: layout.totalSize } : undefined);
    if (clone) copiedByOs.push({ file, from: clone.file, bytes: clone.inPlaceBytes });
    for (const [name, ref] of clone?.inPlace ?? []) inPlace.set(name, ref);
    weights.push({ file, layout, output, writer: new SafetensorsPositionalWriter(output, layout) });
    filesWritten.push(file);
  }
  const writerOf = new Map(weights.flatMap((w) => w.layout.entries.map((e) => [e.name, w.writer] as const)));
  const weightBytes = weights.reduce((n, w) => n + w.layout.totalSize, 0);
  const closeAll = async () => {
    const closed = await Promise.allSettled(weights.map((w) => w.output.close()));
    for (const c of closed) if (c.status === 'rejected') throw c.reason;
  };
  for (const w of weights) await w.writer.start();
  const progress = new Progress(input.io, 'merging', weightBytes, input.quiet);
  let done = weights.reduce((n, w) => n + w.layout.prefixAndHeader.byteLength, 0);
  const sinkOf = (name: string) => async (chunk: Uint8Array) => {
    await writerOf.get(name)!.writeTensorChunk(name, chunk);
    done += chunk.byteLength;
    progress.update(done, name);
  };

  const intents = new Map<string, Intended>();
  const filesInOrder = weights.map((w) => ({ writer: w.writer, tensors: w.layout.entries.map((e) => byName.get(e.name)!) }));
  const merged = new Set<PlannedTensor>(merges);
  let failed = false;
  const copying = async () => {
    for (const { writer, run } of filesInOrder.flatMap((f) => copyRuns(f.tensors, (t) => precomputed.has(t.name) || inPlace.has(t.name)).map((run) => ({ writer: f.writer, run })))) {
      if (failed) return;
      const t = run[0]!;
      if (merged.has(t)) continue;
      const ready = precomputed.get(t.name);
      const placed = inPlace.get(t.name);
      if (placed) {
        writer.placeTensor(t.name);
        intents.set(canonicalName(t.name), { kind: 'range', ref: placed });
        done += placed.byteLength;
        progress.update(done, t.name);
      } else if (ready) {
        await sinkOf(t.name)(ready);
        intents.set(canonicalName(t.name), { kind: 'digest', digest: digestBytes(ready) });
      } else if (run.length === 1) {
        intents.set(canonicalName(t.name), await produce.stream(t, sinkOf(t.name)));
      } else {
        const names = run.map((r) => r.name);
        const got = await produce.streamRun(run, async (chunk) => {
          await writer.writeAdjacentChunk(names, chunk);
          done += chunk.byteLength;
          progress.update(done, t.name);
        });
        run.forEach((r, i) => intents.set(canonicalName(r.name), got[i]!));
      }
    }
  };
  const merging = async () => {
    for (const t of merges) {
      if (failed) return;
      intents.set(canonicalName(t.name), await produce.stream(t, sinkOf(t.name)));
    }
  };
  // Both run to the end (or to the first failure of either) before anything else happens.
  const outcomes = await Promise.allSettled(
    [copying, merging].map((task) =>
      task().catch((e: unknown) => {
        failed = true;
        throw e;
      }),
    ),
  );
  for (const o of outcomes) if (o.status === 'rejected') throw o.reason;
  for (const w of weights) await w.writer.finish();
  progress.done();
  return { split, weights: weights.map(({ file, layout, output }) => ({ file, layout, output })), filesWritten, weightBytes, copiedByOs, config, intents, close: closeAll };
}
