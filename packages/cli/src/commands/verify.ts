import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  applyTokenRows,
  canonicalName,
  emulateTransformersLoad,
  planMerge,
  TIED_INPUT_WEIGHT,
  TIED_OUTPUT_WEIGHT,
  UsageError,
  verifyLoads,
  type FloatCodecDtype,
  type ParamCheck,
  type PlannedTensor,
  type TensorRef,
  type VerifyReport,
} from '@lorafuse/core';
import { compareRef } from '@lorafuse/kernels';
import { elementTypeOf, openMergeDeviceOfKind, type MergeExecutor, type MergeTensor } from '../devices/index.js';
import { choice, flag, numberOption, parseCommandArgs, stringOption } from '../args.js';
import type { Command } from '../command.js';
import { openAdapterDir, openBaseDir, OpenFiles } from '../fs/inputs.js';
import { Progress, type Io } from '../output.js';
import { digestRange } from '../verify/digest.js';

const HELP = `Usage: lorafuse verify <out-dir> --base <base-dir> --adapter <adapter-dir> [options]

Checks any merged directory — lorafuse's, or one written by PEFT's merge_and_unload + save_pretrained —
against base + adapter: emulates what transformers (v4 and v5 rules) loads from <out-dir> and compares
every parameter with the effective weight of the unmerged PEFT model. Copied tensors must be
byte-identical (or within tolerance if re-encoded); merged tensors within --atol/--rtol of the
merge recomputed on --device. A tie kept while lm_head was trained shows up as lm_head.weight.

Options:
  --base <dir>       the base checkpoint the adapter was trained on (required)
  --adapter <dir>    the PEFT adapter directory (required)
  --atol <x>         absolute tolerance (default 1e-6)
  --rtol <x>         relative tolerance (default 1e-5; at least one ulp for F16/BF16 tensors)
  --device <d>       cpu (default), webgpu (Chromium) or dawn (Dawn in Node), to recompute merged tensors
  --json             print one JSON document on stdout
  -h, --help         show this help

Exit codes: 0 verified, 1 something differs, 2 usage or input error.
`;

const UNIT_ROUNDOFF: Record<string, number> = { F32: 0, F16: 2 ** -10, BF16: 2 ** -7 };


export const verifyCommand: Command = {
  name: 'verify',
  summary: 'check that a merged directory loads as base + adapter (also PEFT-written ones)',
  help: HELP,
  async run(argv: readonly string[], io: Io): Promise<number> {
    const args = parseCommandArgs('verify', argv, {
      base: { type: 'string' },
      adapter: { type: 'string' },
      atol: { type: 'string' },
      rtol: { type: 'string' },
      device: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (args.positionals.length !== 1) throw new UsageError('BAD_ARGUMENTS', 'lorafuse verify: expected one <out-dir>', { hint: 'Run `lorafuse verify --help`.' });
    const baseDir = stringOption(args, 'base');
    const adapterDir = stringOption(args, 'adapter');
    if (!baseDir || !adapterDir) throw new UsageError('BAD_ARGUMENTS', 'lorafuse verify: --base <dir> and --adapter <dir> are required', { hint: 'Run `lorafuse verify --help`.' });
    const json = flag(args, 'json');
    const report = await runVerify({
      outDir: args.positionals[0]!,
      baseDir,
      adapterDir,
      atol: numberOption('verify', args, 'atol', 1e-6),
      rtol: numberOption('verify', args, 'rtol', 1e-5),
      device: choice('verify', 'device', stringOption(args, 'device'), ['cpu', 'webgpu', 'dawn'] as const, 'cpu'),
      io,
      quiet: json,
    });
    if (json) io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else io.stdout.write(humanVerify(report));
    return report.ok ? 0 : 1;
  },
};

export interface VerifyOptions {
  outDir: string;
  baseDir: string;
  adapterDir: string;
  atol: number;
  rtol: number;
  device: 'cpu' | 'webgpu' | 'dawn';
  io: Io;
  quiet: boolean;
}

export interface VerifyCommandReport extends VerifyReport {
  readonly out: string;
  readonly extraFailures: readonly string[];
}

/** Verifies `outDir` against what base + adapter mean. */
export async function runVerify(opts: VerifyOptions): Promise<VerifyCommandReport> {
  const files = new OpenFiles();
  let executor: MergeExecutor | undefined;
  try {
    const base = await openBaseDir(opts.baseDir, files);
    const adapter = await openAdapterDir(opts.adapterDir, files);
    const out = await openBaseDir(opts.outDir, files);
    const extraFailures: string[] = [];
    if (existsSync(join(out.dir, 'adapter_config.json'))) {
      extraFailures.push('adapter_config.json is in the merged directory: transformers/PEFT would apply the adapter again on load (peft #1381); remove it');
    }
    const plan = planMerge({
      base: { label: base.dir, config: base.config, files: base.headers },
      adapter: { label: adapter.dir, config: adapter.config, file: adapter.header },
    });
    // The intended effective tensor of every model parameter, whatever tie the output chose.
    const intended = new Map<string, PlannedTensor>();
    for (const t of plan.tensors) intended.set(canonicalName(t.name), t);
    if (plan.tie.state === 'pending') intended.set(TIED_OUTPUT_WEIGHT, plan.tie.lmHead);
    else if (!intended.has(TIED_OUTPUT_WEIGHT) && intended.has(TIED_INPUT_WEIGHT) && plan.tie.state === 'untouched') intended.set(TIED_OUTPUT_WEIGHT, intended.get(TIED_INPUT_WEIGHT)!);

    executor = await openMergeDeviceOfKind(opts.device, files);
    const digests = new Map<string, Promise<string>>();
    const digestOf = (ref: TensorRef) => {
      const key = `${ref.file}@${ref.fileOffset}`;
      let d = digests.get(key);
      if (!d) {
        d = digestRange(files.get(ref.file), ref.fileOffset, ref.byteLength);
        digests.set(key, d);
      }
      return d;
    };
    const equal = async (a: TensorRef, b: TensorRef) => a.dtype === b.dtype && a.byteLength === b.byteLength && (await digestOf(a)) === (await digestOf(b));
    const emulations = [
      await emulateTransformersLoad({ config: out.config, files: out.headers, version: 'v4', equal }),
      await emulateTransformersLoad({ config: out.config, files: out.headers, version: 'v5', equal }),
    ];
    const total = emulations[0]!.params.size;
    const progress = new Progress(opts.io, 'verifying', total * emulations.length, opts.quiet);
    let done = 0;
    const mergedCache = new Map<string, Uint8Array>();
    const exec = executor;
    const verdicts = new Map<string, ParamCheck>();
    const report = await verifyLoads(emulations, async (param) => {
      progress.update(++done, param.name);
      const loaded = param.ref!;
      const key = `${param.name}|${loaded.file}@${loaded.fileOffset}`;
      const cached = verdicts.get(key);
      if (cached) return cached;
      const via = param.via ? ` (loaded through the tie from ${loaded.name})` : '';
      const want = intended.get(param.name);
      let result: ParamCheck;
      if (!want) {
        result = { name: param.name, ok: false, status: 'no-intent', detail: `loaded from "${loaded.name}", but base + adapter have no such parameter` };
      } else if (want.shape.length !== loaded.shape.length || want.shape.some((d, i) => d !== loaded.shape[i])) {
        result = { name: param.name, ok: false, status: 'shape', detail: `loaded [${loaded.shape.join(', ')}]${via}, meant [${want.shape.join(', ')}]` };
      } else {
        let wantBytes: Uint8Array;
        const src = want.source;
        if ((src.kind === 'copy' || src.kind === 'replace') && src.from.dtype === loaded.dtype && (await digestOf(src.from)) === (await digestOf(loaded))) {
          result = { name: param.name, ok: true, status: 'equal', detail: `byte-identical${via}`, ...(param.via ? { via: param.via } : {}) };
          verdicts.set(key, result);
          return result;
        }
        if (src.kind === 'merge') {
          wantBytes = mergedCache.get(param.name) ?? (await exec.merge(want as MergeTensor)).bytes;
          mergedCache.clear();
          mergedCache.set(param.name, wantBytes);
        } else if (src.kind === 'rows') {
          const read = (r: TensorRef) => files.get(r.file).read(r.fileOffset, r.byteLength);
          wantBytes = applyTokenRows(await read(src.base), src.base.dtype as FloatCodecDtype, await read(src.rows), src.rows.dtype as FloatCodecDtype, src.indices, src.base.shape[1] ?? 1);
        } else {
          wantBytes = await files.get(src.from.file).read(src.from.fileOffset, src.from.byteLength);
        }
        const gotBytes = await files.get(loaded.file).read(loaded.fileOffset, loaded.byteLength);
        const rtol = Math.max(opts.rtol, UNIT_ROUNDOFF[loaded.dtype] ?? 0, UNIT_ROUNDOFF[want.dtype] ?? 0);
        const count = want.shape.reduce((a, b) => a * b, 1);
        const stats = compareRef({ count, a: { type: elementTypeOf(loaded), bytes: gotBytes }, b: { type: elementTypeOf(want), bytes: wantBytes }, atol: opts.atol, rtol, equalNan: false });
        const ok = stats.violations === 0;
        result = ok
          ? { name: param.name, ok, status: stats.maxAbsDiff === 0 ? 'equal' : 'close', detail: `within atol ${opts.atol} / rtol ${rtol} (max |difference| ${stats.maxAbsDiff.toPrecision(3)})${via}`, maxAbsDiff: stats.maxAbsDiff, ...(param.via ? { via: param.via } : {}) }
          : { name: param.name, ok, status: 'differs', detail: `${stats.violations} of ${count} values differ from the effective weight beyond atol ${opts.atol} / rtol ${rtol}, max |difference| ${stats.maxAbsDiff.toPrecision(4)}${via}`, maxAbsDiff: stats.maxAbsDiff, ...(param.via ? { via: param.via } : {}) };
      }
      verdicts.set(key, result);
      return result;
    });
    progress.done();
    return { ...report, ok: report.ok && extraFailures.length === 0, out: out.dir, extraFailures };
  } finally {
    await executor?.close();
    await files.closeAll();
  }
}

function humanVerify(r: VerifyCommandReport): string {
  const lines: string[] = [];
  for (const v of r.byVersion) {
    const bad = v.checks.filter((c) => !c.ok).length;
    lines.push(`transformers ${v.version}: ${v.checks.length} parameters, ${bad === 0 ? 'all as meant' : `${bad} differ`}${v.tied ? ' (lm_head tied to wte)' : ''}`);
    for (const d of v.discarded) lines.push(`  discarded on load: ${d.name}: ${d.reason}`);
    for (const n of v.notes) lines.push(`  note: ${n}`);
  }
  for (const f of r.failures) lines.push(`FAIL ${f.name} [${f.versions.join(', ')}]: ${f.detail}`);
  for (const e of r.extraFailures) lines.push(`FAIL ${e}`);
  lines.push(r.ok ? `verified: ${r.out} loads as base + adapter` : `verification FAILED for ${r.out}`);
  return `${lines.join('\n')}\n`;
}
