import { InputError, layoutSafetensors, planMerge, readSafetensorsHeader, SafetensorsStreamWriter, UsageError, VerificationError, type MergePlan, type PlannedTensor } from '@lorafuse/core';
import { openFileSource } from '../fs/file-source.js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { choice, flag, parseCommandArgs, stringOption } from '../args.js';
import type { Command } from '../command.js';
import { createCpuExecutor } from '../executors/cpu.js';
import type { MergeExecutor, MergeTensor } from '../executors/executor.js';
import { createWebGpuExecutor } from '../executors/webgpu.js';
import { openAdapterDir, openBaseDir, OpenFiles } from '../fs/inputs.js';
import { assertOutDirSeparate, OutputTransaction } from '../fs/output-dir.js';
import { formatBytes, Progress, type Io } from '../output.js';
import { streamRange } from '../fs/stream-range.js';

const HELP = `Usage: lorafuse merge <base-dir> <adapter-dir> --out <out-dir> [options]

Merges a PEFT LoRA adapter into a GPT-2 checkpoint and writes a checkpoint transformers loads.

  <base-dir>     config.json + model.safetensors (GPT2LMHeadModel or GPT2Model layout; sharded ok)
  <adapter-dir>  adapter_config.json + adapter_model.safetensors, as PEFT writes them

Options:
  --out <dir>          output directory (created; must not be or contain an input)
  --device <d>         webgpu (default: WGSL kernels in headless Chromium) or cpu
  --overwrite          replace the contents of a non-empty output directory
  --allow-nonfinite    write merged tensors even if they contain NaN or Inf
  --json               print one JSON report on stdout
  -h, --help           show this help

The output directory gets model.safetensors, config.json (changed only where the merge requires it)
and every other file of <base-dir> copied unchanged. Nothing is left behind on failure.
Chromium is found via CHROME_PATH, /usr/bin/chromium, or the usual install paths.
`;

/** The report `merge --json` prints. */
export interface MergeReport {
  ok: true;
  device: 'cpu' | 'webgpu';
  deviceDescription: string;
  base: string;
  adapter: string;
  out: string;
  tensors: { merged: number; replaced: number; added: number; copied: number };
  loraModules: Array<{ module: string; rank: number; alpha: number; scale: number; orientation: string }>;
  configChanges: readonly string[];
  findings: MergePlan['findings'];
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
      json: { type: 'boolean' },
    });
    const { positionals } = args;
    if (positionals.length !== 2) {
      throw new UsageError('BAD_ARGUMENTS', `lorafuse merge: expected <base-dir> and <adapter-dir>, got ${positionals.length} argument(s)`, { hint: 'Run `lorafuse merge --help` for usage.' });
    }
    const outDir = stringOption(args, 'out');
    if (!outDir) throw new UsageError('BAD_ARGUMENTS', 'lorafuse merge: --out <out-dir> is required', { subject: '--out', hint: 'Run `lorafuse merge --help` for usage.' });
    const device = choice('merge', 'device', stringOption(args, 'device'), ['webgpu', 'cpu'] as const, 'webgpu');
    const json = flag(args, 'json');
    const report = await runMerge({
      baseDir: positionals[0]!,
      adapterDir: positionals[1]!,
      outDir,
      device,
      overwrite: flag(args, 'overwrite'),
      allowNonFinite: flag(args, 'allow-nonfinite'),
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
  device: 'cpu' | 'webgpu';
  overwrite: boolean;
  allowNonFinite: boolean;
  io: Io;
  quiet: boolean;
}

/** Plans, executes and writes a merge. Throws typed errors; leaves no output on failure. */
export async function runMerge(opts: MergeOptions): Promise<MergeReport> {
  const started = performance.now();
  const files = new OpenFiles();
  let executor: MergeExecutor | undefined;
  let tx: OutputTransaction | undefined;
  try {
    const base = await openBaseDir(opts.baseDir, files);
    const adapter = await openAdapterDir(opts.adapterDir, files);
    await assertOutDirSeparate(opts.outDir, [base.dir, adapter.dir]);
    const plan = planMerge({
      base: { label: base.dir, config: base.config, files: base.headers },
      adapter: { label: adapter.dir, config: adapter.config, file: adapter.header },
    });

    executor = opts.device === 'cpu' ? createCpuExecutor(files) : await createWebGpuExecutor(files);
    tx = await OutputTransaction.begin(opts.outDir, opts.overwrite);

    const layout = layoutSafetensors(plan.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape] })));
    const byName = new Map(plan.tensors.map((t) => [t.name, t] as const));
    const out = await tx.createFile('model.safetensors');
    const writer = new SafetensorsStreamWriter(out, layout);
    await writer.start();
    const progress = new Progress(opts.io, 'merging', layout.totalSize, opts.quiet);
    let done = layout.prefixAndHeader.byteLength;
    for (const entry of layout.entries) {
      const t = byName.get(entry.name)!;
      if (t.source.kind === 'merge') {
        progress.update(done, t.name);
        const merged = await executor.merge(t as MergeTensor);
        if (merged.nonFinite > 0 && !opts.allowNonFinite) {
          throw new InputError('MERGE_NONFINITE', `merging "${t.name}" produced ${merged.nonFinite} NaN/Inf value(s); the adapter ${adapter.dir} seems to be broken`, {
            subject: t.name,
            hint: 'Check the adapter for NaN/Inf weights, or pass --allow-nonfinite to write the tensor anyway.',
          });
        }
        await writer.writeTensorChunk(t.name, merged.bytes);
      } else {
        const from = t.source.from;
        await streamRange(files.get(from.file), from.fileOffset, from.byteLength, (chunk) => writer.writeTensorChunk(t.name, chunk));
      }
      done += entry.end - entry.begin;
      progress.update(done, t.name);
    }
    await writer.finish();
    await out.close();
    progress.done();

    await checkWrittenHeader(tx.tempPathOf('model.safetensors'), plan.tensors);

    if (plan.outputConfig) await tx.writeFile('config.json', new TextEncoder().encode(`${JSON.stringify(plan.outputConfig, null, 2)}\n`));
    else await tx.writeFile('config.json', await readFile(join(base.dir, 'config.json')));
    const filesCopied: string[] = [];
    for (const name of base.otherFiles) {
      // A merged checkpoint must never carry adapter files: transformers would re-apply them (peft #1381).
      if (name === 'adapter_config.json' || name.startsWith('adapter_model.')) continue;
      await tx.copyFileIn(name, join(base.dir, name));
      filesCopied.push(name);
    }
    await tx.commit();
    tx = undefined;
    const spec = [...plan.tensors].filter((t): t is MergeTensor => t.source.kind === 'merge');
    return {
      ok: true,
      device: executor.device,
      deviceDescription: executor.description,
      base: base.dir,
      adapter: adapter.dir,
      out: opts.outDir,
      tensors: { merged: plan.summary.merged, replaced: plan.summary.replaced, added: plan.summary.added, copied: plan.summary.copied },
      loraModules: spec.flatMap((t) => t.source.deltas.map((d) => ({ module: d.modulePath, rank: d.rank, alpha: d.alpha, scale: d.scale, orientation: d.orientation === 'transposed' ? 'Conv1D [in, out]' : 'Linear [out, in]' }))),
      configChanges: plan.configChanges,
      findings: plan.findings,
      filesCopied,
      bytesWritten: layout.totalSize,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    if (tx) await tx.abort();
    await executor?.close();
    await files.closeAll();
  }
}

/**
 * Re-reads the written header and checks it lists exactly the planned tensors with their dtypes and
 * shapes. (Full value verification against the load emulation is `lorafuse verify`'s job.)
 */
async function checkWrittenHeader(path: string, planned: readonly PlannedTensor[]): Promise<void> {
  const source = await openFileSource(path);
  try {
    const header = await readSafetensorsHeader(source);
    const problems: string[] = [];
    for (const t of planned) {
      const got = header.byName.get(t.name);
      if (!got) problems.push(`"${t.name}" is missing`);
      else if (got.dtype !== t.dtype || got.shape.join(',') !== t.shape.join(',')) problems.push(`"${t.name}" is ${got.dtype} [${got.shape.join(', ')}], planned ${t.dtype} [${t.shape.join(', ')}]`);
    }
    if (header.tensors.length !== planned.length) problems.push(`${header.tensors.length} tensors written, ${planned.length} planned`);
    if (problems.length > 0) {
      throw new VerificationError('OUTPUT_HEADER_MISMATCH', `the written model.safetensors does not match the plan: ${problems.slice(0, 5).join('; ')}`, { subject: 'model.safetensors' });
    }
  } finally {
    await source.close();
  }
}

function humanReport(r: MergeReport): string {
  const lines = [
    `merged ${r.loraModules.length} LoRA module(s) into ${r.out} on ${r.device} (${r.deviceDescription})`,
    `  tensors: ${r.tensors.merged} merged, ${r.tensors.replaced} replaced, ${r.tensors.added} added, ${r.tensors.copied} copied unchanged; ${formatBytes(r.bytesWritten)} written in ${r.seconds.toFixed(2)} s`,
  ];
  const scales = new Map<string, number>();
  for (const m of r.loraModules) {
    const k = `r=${m.rank} alpha=${m.alpha} scale=${m.scale}`;
    scales.set(k, (scales.get(k) ?? 0) + 1);
  }
  for (const [k, n] of scales) lines.push(`  ${n} module(s) with ${k}`);
  for (const c of r.configChanges) lines.push(`  config.json: ${c}`);
  if (r.filesCopied.length > 0) lines.push(`  copied from base: ${r.filesCopied.join(', ')}`);
  for (const f of r.findings) lines.push(`  ${f.severity}: ${f.message}${f.fix ? ` (fix: ${f.fix})` : ''}`);
  return `${lines.join('\n')}\n`;
}
