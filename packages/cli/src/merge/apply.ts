/**
 * Step 4 of a merge: write the output under temporary names — config.json, then every tensor of
 * model.safetensors at its offset — and record what each tensor was meant to be, for the proof.
 * Unchanged tensors stream from input to output in file order while the device computes the merges
 * (each written as soon as it is ready), so neither waits for the other.
 */
import { join } from 'node:path';
import { canonicalName, layoutSafetensors, SafetensorsPositionalWriter, type MergePlan, type MergeTensor, type PlannedTensor, type SafetensorsLayout } from '@lorafuse/core';
import type { MergeExecutor } from '../devices/index.js';
import { readInputFile } from '../fs/input-file.js';
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
  /** Computed while the tie was settled: written as they are. */
  readonly precomputed: ReadonlyMap<string, Uint8Array>;
  /** The device, possibly still starting (only merges wait for it). */
  readonly device: Promise<MergeExecutor>;
  readonly io: Io;
  readonly quiet: boolean;
}

/** What was written. */
export interface Applied {
  readonly layout: SafetensorsLayout;
  /** The config the output carries. */
  readonly config: Record<string, unknown>;
  /** What every written tensor was meant to be, by canonical name. */
  readonly intents: ReadonlyMap<string, Intended>;
  /** model.safetensors, written but still open: `close()` flushes it to disk. */
  readonly model: OutputFile;
}

/** Writes config.json and model.safetensors into the transaction; throws on the first failure. */
export async function applyPlan(input: ApplyInput): Promise<Applied> {
  const { plan, tx, produce, precomputed } = input;
  // config.json first: its fsync is cheap now, while after the weights it would wait for all of
  // their dirty pages (ext4's ordered mode commits them with it).
  const config = plan.outputConfig ?? plan.baseConfig;
  if (plan.outputConfig) await tx.writeFile('config.json', new TextEncoder().encode(`${JSON.stringify(plan.outputConfig, null, 2)}\n`));
  else await tx.writeFile('config.json', await readInputFile(join(input.baseDir, 'config.json')));

  const layout = layoutSafetensors(plan.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape] })));
  const byName = new Map(plan.tensors.map((t) => [t.name, t] as const));
  const model = await tx.createFile('model.safetensors');
  const writer = new SafetensorsPositionalWriter(model, layout);
  await writer.start();
  const progress = new Progress(input.io, 'merging', layout.totalSize, input.quiet);
  let done = layout.prefixAndHeader.byteLength;
  const sinkOf = (name: string) => async (chunk: Uint8Array) => {
    await writer.writeTensorChunk(name, chunk);
    done += chunk.byteLength;
    progress.update(done, name);
  };

  const intents = new Map<string, Intended>();
  const inFileOrder = layout.entries.map((e) => byName.get(e.name)!);
  const merges = inFileOrder.filter((t): t is MergeTensor => t.source.kind === 'merge' && !precomputed.has(t.name));
  const merged = new Set<PlannedTensor>(merges);
  let failed = false;
  const copying = async () => {
    for (const run of copyRuns(inFileOrder, (t) => precomputed.has(t.name))) {
      if (failed) return;
      const t = run[0]!;
      if (merged.has(t)) continue;
      const ready = precomputed.get(t.name);
      if (ready) {
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
    if (merges.length === 0) return;
    // Look ahead: the device may fetch and merge the next tensors while this one is written.
    (await input.device).prefetch?.(merges);
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
  await writer.finish();
  progress.done();
  return { layout, config, intents, model };
}
