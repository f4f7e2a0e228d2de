/**
 * `lorafuse merge`, top to bottom: open the inputs → plan once → lock the output → settle the tie →
 * apply (write) → prove → commit. Each step is a function of its own file in this folder. Throws typed errors and
 * leaves no output behind on failure.
 */
import { DEFAULT_MAX_SHARD_SIZE, SHARD_INDEX_FILE, type FollowRule, type TieMode } from '@lorafuse/core';
import type { DeviceChoice } from '../devices/index.js';
import type { Io } from '../output.js';
import { applyPlan } from './apply.js';
import { checkDuplicateCopies } from '../proof/check-duplicates.js';
import { fileChecks } from '../proof/file-checks.js';
import { commitOutput, filesToCopy, outputFileNames } from './commit.js';
import { openMergeInputs } from './open-inputs.js';
import { planOnce } from './plan-once.js';
import { proveWritten } from './prove-written.js';
import { mergeReport, type MergeReport } from './report.js';
import { MergeResources } from './resources.js';
import { settleTie } from './settle-tie.js';
import { tensorProducer } from './tensor-producer.js';
import { terminalLines } from '../terminal-text.js';

/** What `lorafuse merge` was asked to do. */
export interface MergeOptions {
  baseDir: string;
  /** The adapters, merged active together in this order (at least one). */
  adapterDirs: readonly string[];
  /** One weight per adapter (unset: all 1). */
  weights?: readonly number[] | undefined;
  outDir: string;
  device: DeviceChoice;
  overwrite: boolean;
  allowNonFinite: boolean;
  tie: TieMode;
  force: boolean;
  /** Which side wins when adapter_config.json and the tensors disagree (unset: an error). */
  follow?: FollowRule | undefined;
  /** Bytes of tensor data per weight file before the output is sharded (default: transformers 5's 50 GB). */
  maxShardSize?: number | undefined;
  /** `pad_token_id` for the output config (`--pad-token-id`). */
  padTokenId?: number | undefined;
  io: Io;
  quiet: boolean;
}

/** Runs one merge and returns its report. */
export async function runMerge(opts: MergeOptions): Promise<MergeReport> {
  const started = performance.now();
  const res = new MergeResources(opts.io.stderr);
  try {
    const inputs = await openMergeInputs(opts.baseDir, opts.adapterDirs, opts.weights, opts.outDir, res.files);
    const planned = planOnce(inputs, { tie: opts.tie, force: opts.force, ...(opts.follow ? { follow: opts.follow } : {}), ...(opts.padTokenId === undefined ? {} : { padTokenId: opts.padTokenId }) });
    await checkDuplicateCopies(planned.plan, res.files);
    // Taken before the device starts: a second run into the same directory stops here at once.
    const copies = await filesToCopy(inputs.base, inputs.adapters);
    const tx = await res.openOutput(opts.outDir, { overwrite: opts.overwrite, names: outputFileNames(copies) });

    const device = res.startDevice(opts.device);
    const produce = tensorProducer(res.files, device.executor, opts.allowNonFinite);
    const { plan, precomputed, lmHeadIntent } = await settleTie(planned.plan, produce);

    const applied = await applyPlan({ plan, baseDir: inputs.base.dir, tx, produce, files: res.files, precomputed, device: device.executor, maxShardSize: opts.maxShardSize ?? DEFAULT_MAX_SHARD_SIZE, io: opts.io, quiet: opts.quiet });
    const selected = await device.selected;
    // Read before closing: a device describes what it is running (a closed pool has no threads left).
    const ran = { device: selected.executor.device, description: selected.executor.description, reason: selected.reason };
    res.closeDevice();

    const flushing = applied.close();
    flushing.catch(() => undefined); // awaited below; a failure there must not go unhandled first
    const proof = await proveWritten({
      weights: applied.weights.map((w) => ({ file: w.file, path: tx.tempPathOf(w.file) })),
      split: applied.split,
      indexPath: applied.split.sharded ? tx.tempPathOf(SHARD_INDEX_FILE) : undefined,
      config: applied.config, plan, intents: applied.intents,
      lmHeadIntent,
      inputOf: (file) => res.files.get(file),
      checks: fileChecks(res.threads),
    });
    await flushing;

    const committed = await commitOutput(tx, inputs.base, copies);
    opts.io.stderr.write(terminalLines(tx.notes.map((note) => `lorafuse: ${note}`)));
    return mergeReport({
      plan,
      doctorNotes: planned.doctorNotes,
      device: ran,
      dirs: { base: inputs.base.dir, out: opts.outDir },
      tokenizerFrom: copies.adapterDir,
      proof,
      filesWritten: applied.filesWritten,
      maxShardSize: opts.maxShardSize ?? DEFAULT_MAX_SHARD_SIZE,
      filesCopied: committed.copied,
      filesCopiedFromAdapter: committed.copiedFromAdapter,
      replaced: committed.replaced,
      bytesWritten: applied.weightBytes,
      copiedByOs: applied.copiedByOs,
      seconds: (performance.now() - started) / 1000,
    });
  } finally {
    await res.release();
  }
}
