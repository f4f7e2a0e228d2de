import { canonicalName, diagnose, InputError, layoutSafetensors, moduleKind, planMerge, resolveTie, SafetensorsPositionalWriter, TIED_INPUT_WEIGHT, TIED_OUTPUT_WEIGHT, UsageError, VerificationError, type MergePlan, type PlannedTensor, type TieMode } from '@lorafuse/core';
import { tensorProducer } from '../merge/tensor-producer.js';
import { digestBytes, digestRange } from '../verify/digest.js';
import { compareTiePair } from '../verify/tie-compare.js';
import { verifyWrittenCheckpoint, type Intent } from '../verify/verify-written.js';
import { onInterrupt } from '../interrupt.js';
import { closeAllBrowserRunners } from '@lorafuse/runner';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { choice, flag, parseCommandArgs, stringOption } from '../args.js';
import type { Command } from '../command.js';
import { openMergeDevice, type DeviceChoice, type MergeExecutor, type MergeTensor } from '../devices/index.js';
import { openAdapterDir, openBaseDir, OpenFiles } from '../fs/inputs.js';
import { assertOutDirSeparate, OutputTransaction } from '../fs/output-dir.js';
import { formatBytes, Progress, type Io } from '../output.js';

const HELP = `Usage: lorafuse merge <base-dir> <adapter-dir> --out <out-dir> [options]

Merges a PEFT LoRA adapter into a GPT-2 checkpoint and writes a checkpoint transformers loads.

  <base-dir>     config.json + model.safetensors (GPT2LMHeadModel or GPT2Model layout; sharded ok)
  <adapter-dir>  adapter_config.json + adapter_model.safetensors, as PEFT writes them

Options:
  --out <dir>          output directory (created; must not be or contain an input)
  --device <d>         auto (default): WebGPU on a real GPU (Dawn in Node, else Chromium), the CPU
                       executor when the only WebGPU adapter is a software fallback (SwiftShader),
                       which is slower end to end; webgpu: WGSL kernels in headless Chromium;
                       dawn: the same kernels on Dawn inside Node (no browser, no transfers);
                       cpu: worker threads in Node
  --overwrite          replace the contents of a non-empty output directory
  --tie <mode>         auto (default): keep wte/lm_head tied exactly when their effective weights are
                       bitwise equal, else store both and set tie_word_embeddings: false;
                       untie: always store both; keep: keep the tie (refused if that would discard
                       trained lm_head weights, unless --force, which reports what is lost)
  --force              with --tie keep: keep the tie even though trained weights are lost
  --allow-nonfinite    write merged tensors even if they contain NaN or Inf
  --json               print one JSON report on stdout
  -h, --help           show this help

The output directory gets model.safetensors, config.json (changed only where the merge requires it:
vocab_size, tie_word_embeddings, architectures/num_labels) and every other file of <base-dir> copied
unchanged. Before anything is renamed into place, the written checkpoint is re-read and what
transformers (v4 and v5 rules) would load is checked tensor by tensor against what was meant;
a mismatch exits 1. Nothing is left behind on failure.
Chromium is found via CHROME_PATH, /usr/bin/chromium, or the usual install paths.
`;

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
  findings: MergePlan['findings'];
  verified: Array<{ transformers: string; tied: boolean; parameters: number }>;
  filesCopied: string[];
  bytesWritten: number;
  seconds: number;
}

export const mergeCommand: Command = {
  name: 'merge',
  summary: 'merge a LoRA adapter into a GPT-2 checkpoint',
  help: HELP,
  async run(argv: readonly string[], io: Io): Promise<number> {
    const args = parseCommandArgs('merge', argv, {
      out: { type: 'string', short: 'o' },
      device: { type: 'string' },
      overwrite: { type: 'boolean' },
      'allow-nonfinite': { type: 'boolean' },
      tie: { type: 'string' },
      force: { type: 'boolean' },
      json: { type: 'boolean' },
    });
    const { positionals } = args;
    if (positionals.length !== 2) {
      throw new UsageError('BAD_ARGUMENTS', `lorafuse merge: expected <base-dir> and <adapter-dir>, got ${positionals.length} argument(s)`, { hint: 'Run `lorafuse merge --help` for usage.' });
    }
    const outDir = stringOption(args, 'out');
    if (!outDir) throw new UsageError('BAD_ARGUMENTS', 'lorafuse merge: --out <out-dir> is required', { subject: '--out', hint: 'Run `lorafuse merge --help` for usage.' });
    const device = choice('merge', 'device', stringOption(args, 'device'), ['auto', 'webgpu', 'dawn', 'cpu'] as const, 'auto');
    const json = flag(args, 'json');
    const report = await runMerge({
      baseDir: positionals[0]!,
      adapterDir: positionals[1]!,
      outDir,
      device,
      overwrite: flag(args, 'overwrite'),
      allowNonFinite: flag(args, 'allow-nonfinite'),
      tie: choice('merge', 'tie', stringOption(args, 'tie'), ['auto', 'keep', 'untie'] as const, 'auto'),
      force: flag(args, 'force'),
      io,
      quiet: json,
    });
    if (json) io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else io.stdout.write(humanReport(report));
    return 0;
  },
};

export interface MergeOptions {
  baseDir: string;
  adapterDir: string;
  outDir: string;
  device: DeviceChoice;
  overwrite: boolean;
  allowNonFinite: boolean;
  tie: TieMode;
  force: boolean;
  io: Io;
  quiet: boolean;
}

/** Plans, executes, writes and verifies a merge. Throws typed errors; leaves no output on failure. */
export async function runMerge(opts: MergeOptions): Promise<MergeReport> {
  const started = performance.now();
  const files = new OpenFiles();
  let executor: MergeExecutor | undefined;
  let executorStarting: Promise<unknown> | undefined;
  let executorClosing: Promise<void> | undefined;
  let tx: OutputTransaction | undefined;
  const stopListening = onInterrupt(async () => {
    await tx?.abort();
    // Also a browser still starting (the executor does not exist yet then).
    await Promise.all([executor?.close(), closeAllBrowserRunners()]);
    await files.closeAll();
  }, opts.io.stderr);
  try {
    const base = await openBaseDir(opts.baseDir, files);
    const adapter = await openAdapterDir(opts.adapterDir, files);
    await assertOutDirSeparate(opts.outDir, [base.dir, adapter.dir]);
    const inputs = {
      base: { label: base.dir, config: base.config, files: base.headers },
      adapter: { label: adapter.dir, config: adapter.config, file: adapter.header },
    };
    // The doctor's checks come first; an error finding stops the merge before anything is written.
    const doctor = diagnose(inputs);
    const errors = doctor.filter((f) => f.severity === 'error');
    if (errors.length > 0) {
      const first = errors[0]!;
      throw new InputError(first.code, errors.length === 1 ? first.message : `${errors.length} problems: ${errors.map((e) => e.message).join('; ')}`, {
        ...(first.fix ? { hint: first.fix } : {}),
        ...(first.subject ? { subject: first.subject } : {}),
      });
    }
    let plan = planMerge({ ...inputs, options: { tie: opts.tie, force: opts.force } });
    const planCodes = new Set(plan.findings.map((f) => f.code));
    const doctorNotes = doctor.filter((f) => !planCodes.has(f.code));

    for (const { kept, duplicate } of plan.duplicateCopies) {
      const [a, b] = await Promise.all([digestRange(files.get(kept.file), kept.fileOffset, kept.byteLength), digestRange(files.get(duplicate.file), duplicate.fileOffset, duplicate.byteLength)]);
      if (a !== b) {
        throw new InputError('ADAPTER_DUPLICATE_DIFFERS', `${adapter.dir}: "${kept.name}" and "${duplicate.name}" are two copies of one trained tensor but their values differ`, {
          subject: duplicate.name,
          hint: 'The adapter file is inconsistent; re-save it with PEFT.',
        });
      }
    }
    // The executor starts (a browser takes ~0.6 s) while unchanged tensors are already copied.
    const starting = openMergeDevice(opts.device, files).then((s) => {
      executor = s.executor;
      return s;
    });
    executorStarting = starting;
    const executorReady = starting.then((s) => s.executor);
    // Both are awaited where they are used and in `finally`; until then a failure must not count
    // as unhandled (Node would end the process with a stack trace).
    for (const p of [starting, executorReady]) p.catch(() => undefined);
    const produce = tensorProducer(files, executorReady, opts.allowNonFinite, adapter.dir);

    // The tie step: compute both effective matrices, compare them bitwise, then fix the layout.
    const precomputed = new Map<string, Uint8Array>();
    let lmHeadIntent: Intent | undefined;
    if (plan.tie.state === 'pending') {
      const wteName = plan.tie.wte.name;
      const wte = plan.tensors.find((t) => canonicalName(t.name) === canonicalName(wteName))!;
      const wteBytes = await produce.bytes(wte);
      const headBytes = await produce.bytes(plan.tie.lmHead);
      plan = resolveTie(plan, compareTiePair(wteBytes, wte.dtype, headBytes, plan.tie.lmHead.dtype, wte.shape[1] ?? 1));
      precomputed.set(wte.name, wteBytes);
      precomputed.set(TIED_OUTPUT_WEIGHT, headBytes);
      lmHeadIntent = { digest: digestBytes(headBytes) };
    }

    tx = await OutputTransaction.begin(opts.outDir, opts.overwrite);
    // config.json first: its fsync is cheap now, while after the weights it would wait for all of
    // their dirty pages (ext4's ordered mode commits them with it).
    const outputConfig = plan.outputConfig ?? base.config;
    if (plan.outputConfig) await tx.writeFile('config.json', new TextEncoder().encode(`${JSON.stringify(plan.outputConfig, null, 2)}\n`));
    else await tx.writeFile('config.json', await readFile(join(base.dir, 'config.json')));
    const layout = layoutSafetensors(plan.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape] })));
    const byName = new Map(plan.tensors.map((t) => [t.name, t] as const));
    const out = await tx.createFile('model.safetensors');
    // Tensors go to their offsets in any order: copies stream in file order while the merges run
    // (each as soon as the executor has it), so neither waits for the other.
    const writer = new SafetensorsPositionalWriter(out, layout);
    await writer.start();
    const progress = new Progress(opts.io, 'merging', layout.totalSize, opts.quiet);
    let done = layout.prefixAndHeader.byteLength;
    const sinkOf = (name: string) => async (chunk: Uint8Array) => {
      await writer.writeTensorChunk(name, chunk);
      done += chunk.byteLength;
      progress.update(done, name);
    };
    // What every tensor was meant to be (the input range for copies, a digest of the executor's
    // output for merges), by canonical name: verification re-reads the written file against it.
    const intent = new Map<string, Intent>();
    const inFileOrder = layout.entries.map((e) => byName.get(e.name)!);
    const merges = inFileOrder.filter((t): t is MergeTensor => t.source.kind === 'merge' && !precomputed.has(t.name));
    const merged = new Set<PlannedTensor>(merges);
    let failed = false;
    const copying = async () => {
      for (const t of inFileOrder) {
        if (failed) return;
        if (merged.has(t)) continue;
        const ready = precomputed.get(t.name);
        if (ready) {
          await sinkOf(t.name)(ready);
          intent.set(canonicalName(t.name), { digest: digestBytes(ready) });
        } else {
          intent.set(canonicalName(t.name), await produce.stream(t, sinkOf(t.name)));
        }
      }
    };
    const merging = async () => {
      if (merges.length === 0) return;
      // Look ahead: the executor may fetch and merge the next tensors while this one is written.
      (await starting).executor.prefetch?.(merges);
      for (const t of merges) {
        if (failed) return;
        intent.set(canonicalName(t.name), await produce.stream(t, sinkOf(t.name)));
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
    const selected = await starting;
    const ran = { device: selected.executor.device, description: selected.executor.description, reason: selected.reason };
    // Nothing more to merge: the executor (a browser, or worker threads) shuts down meanwhile.
    executorClosing = selected.executor.close();
    executorClosing.catch(() => undefined);
    // The fsync runs while the written file is re-read for verification (it is the slowest single
    // step of a merge otherwise); both have finished before anything is renamed into place.
    const closing = out.close();
    closing.catch(() => undefined); // awaited below; a failure there must not go unhandled first
    progress.done();

    // What transformers will load must be exactly what was meant, under v4 and v5 rules.
    const tiedLmHeadIntent = lmHeadIntent ?? intent.get(TIED_INPUT_WEIGHT);
    const forcedLoss = plan.findings.some((f) => f.code === 'TIE_KEPT_FORCED');
    const verification = await verifyWrittenCheckpoint(tx.tempPathOf('model.safetensors'), outputConfig, plan.tensors, (name) => {
      if (name === TIED_OUTPUT_WEIGHT && !intent.has(TIED_OUTPUT_WEIGHT)) return forcedLoss ? 'accept-any' : tiedLmHeadIntent;
      return intent.get(name);
    }, (file) => files.get(file));
    await closing;
    if (!verification.ok) {
      const f = verification.failures[0]!;
      throw new VerificationError('MERGE_VERIFY_FAILED', `verification of the written checkpoint failed: ${f.name}: ${f.detail} (transformers ${f.versions.join(', ')})${verification.failures.length > 1 ? `; and ${verification.failures.length - 1} more` : ''}`, {
        subject: f.name,
        hint: 'Nothing was written. This is a bug in lorafuse: please report it with the inputs.',
      });
    }

    const filesCopied: string[] = [];
    for (const name of base.otherFiles) {
      // A merged checkpoint must never carry adapter files: transformers would re-apply them (peft #1381).
      if (name === 'adapter_config.json' || name.startsWith('adapter_model.')) continue;
      await tx.copyFileIn(name, join(base.dir, name));
      filesCopied.push(name);
    }
    await tx.commit();
    tx = undefined;
    const allMerges = [...plan.tensors].filter((t): t is MergeTensor => t.source.kind === 'merge');
    return {
      ok: true,
      device: ran.device,
      deviceDescription: ran.description,
      deviceReason: ran.reason,
      base: base.dir,
      adapter: adapter.dir,
      out: opts.outDir,
      tensors: { merged: plan.summary.merged, replaced: plan.summary.replaced, added: plan.summary.added, copied: plan.summary.copied },
      loraModules: allMerges.flatMap((t) => t.source.deltas.map((d) => ({ module: d.modulePath, rank: d.rank, alpha: d.alpha, scale: d.scale, orientation: orientationLabel(d.modulePath) }))),
      tie: plan.tie.state === 'decided' ? { decision: plan.tie.decision, reason: plan.tie.reason } : { decision: plan.tie.state === 'base-untied' ? 'base-untied' : 'unchanged', reason: plan.tie.state === 'base-untied' ? 'the base stores its own lm_head' : 'the adapter does not touch wte or lm_head' },
      configChanges: plan.configChanges,
      findings: [...doctorNotes, ...plan.findings],
      verified: verification.byVersion.map((v) => ({ transformers: v.version, tied: v.tied, parameters: v.checks.length })),
      filesCopied,
      bytesWritten: layout.totalSize,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    if (tx) await tx.abort();
    // An executor still starting is closed once it has started.
    await executorStarting?.catch(() => undefined);
    await (executorClosing ?? executor?.close());
    await files.closeAll();
    stopListening();
  }
}

function orientationLabel(modulePath: string): string {
  const kind = moduleKind(modulePath);
  return kind === 'linear' ? 'Linear [out, in]' : kind === 'embedding' ? 'Embedding [vocab, dim]' : 'Conv1D [in, out]';
}

function humanReport(r: MergeReport): string {
  const lines = [
    `merged ${r.loraModules.length} LoRA module(s) into ${r.out} on ${r.device} (${r.deviceDescription})`,
    `  device: ${r.deviceReason}`,
    `  tensors: ${r.tensors.merged} merged, ${r.tensors.replaced} replaced, ${r.tensors.added} added, ${r.tensors.copied} copied unchanged; ${formatBytes(r.bytesWritten)} written in ${r.seconds.toFixed(2)} s`,
  ];
  const scales = new Map<string, number>();
  for (const m of r.loraModules) {
    const k = `r=${m.rank} alpha=${m.alpha} scale=${m.scale}`;
    scales.set(k, (scales.get(k) ?? 0) + 1);
  }
  for (const [k, n] of scales) lines.push(`  ${n} module(s) with ${k}`);
  lines.push(`  tie: ${r.tie.decision} (${r.tie.reason})`);
  for (const c of r.configChanges) lines.push(`  config.json: ${c}`);
  if (r.filesCopied.length > 0) lines.push(`  copied from base: ${r.filesCopied.join(', ')}`);
  lines.push(`  verified: what transformers ${r.verified.map((v) => v.transformers).join(' and ')} load equals what was meant (${r.verified[0]?.parameters ?? 0} parameters, byte for byte)`);
  for (const f of r.findings) lines.push(`  ${f.severity}: ${f.message}${f.fix ? ` (fix: ${f.fix})` : ''}`);
  return `${lines.join('\n')}\n`;
}
