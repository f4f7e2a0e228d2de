import {
  diffAsLoaded,
  diffTensorSets,
  formatTolerance,
  tensorSetFromHeaders,
  UsageError,
  InputError,
  type LoadedDiff,
  type LoadSummary,
  type TensorDiff,
  type TensorSetDiff,
} from '@lorafuse/core';
import type { CompareTolerance } from '@lorafuse/kernels';
import { choice, flag, integerOption, numberOption, parseCommandArgs, stringOption } from '../args.js';
import type { Command } from '../command.js';
import { openCompareDevice } from '../devices/index.js';
import { openDiffInput, type DiffInput } from '../diff/inputs.js';
import { createTensorComparer } from '../diff/tensor-comparer.js';
import { OpenFiles } from '../fs/inputs.js';
import { Progress, type Io } from '../output.js';
import { terminalJson, terminalLines } from '../terminal-text.js';

const HELP = `Usage: lorafuse diff <a> <b> [options]

Compares two checkpoints, adapters or weight files tensor by tensor, matched by name (never by
position): keys only in a or only in b, shape and dtype mismatches, then per-tensor statistics
(max |a-b|, max |a-b|/|b|, cosine similarity, elements outside tolerance), worst first.

  <a>, <b>   a checkpoint directory (model.safetensors or a sharded model.safetensors.index.json;
             else pytorch_model.bin or pytorch_model.bin.index.json), a PEFT adapter directory
             (adapter_model.safetensors, else adapter_model.bin), or a .safetensors or PyTorch
             .bin/.pt/.pth file (read as torch.save's zip archive; its pickle is never run)

Options:
  --atol <x>        absolute tolerance (default 1e-6)
  --rtol <x>        relative tolerance, relative to |b| (default 1e-5)
  --equal-nan       NaN in a equals NaN in b at the same index
  --as-loaded       compare what transformers would load from each checkpoint directory (ties
                    applied, prefixes normalised, buffers dropped), under v5 and v4 rules
  --top <n>         tensors listed in the table (default 10; 0 lists all)
  --device <d>      webgpu (default: compare kernel in headless Chromium), dawn (the kernel on
                    Dawn inside Node) or cpu
  --json            print one JSON document on stdout
  -h, --help        show this help

An element is within tolerance when |a - b| <= atol + rtol·|b| (torch.allclose, computed in f32;
Inf equals Inf of the same sign). Byte-identical tensors are equal without further reading, NaNs
included. Mixed dtypes (F32, F16, BF16) are compared in f32; other dtypes byte for byte.
Exit codes: 0 equal within tolerance, 1 differs, 2 usage or input error.
`;

/** Options of {@link runDiff}. */
export interface RunDiffOptions {
  a: string;
  b: string;
  tolerance: CompareTolerance;
  asLoaded: boolean;
  device: 'webgpu' | 'dawn' | 'cpu';
  io: Io;
  quiet: boolean;
}

/** What one side was. */
export interface DiffSideReport {
  path: string;
  kind: DiffInput['kind'];
  files: readonly string[];
  tensors: number;
}

/** The report `diff --json` prints (non-finite numbers as the strings "inf", "-inf", "nan"). */
export interface DiffReport {
  ok: true;
  equal: boolean;
  exitCode: 0 | 1;
  mode: 'stored' | 'as-loaded';
  a: DiffSideReport;
  b: DiffSideReport;
  tolerance: CompareTolerance;
  device: 'cpu' | 'webgpu' | 'dawn';
  /** The executor that compared values; null when every tensor pair was settled by bytes. */
  deviceDescription: string | null;
  /** `stored` mode: the diff of the stored tensors. */
  diff?: TensorSetDiff;
  /** `as-loaded` mode: the diff of the loaded parameters, per group of transformers versions. */
  loaded?: LoadedDiff;
  verdict: string;
  seconds: number;
}


export const diffCommand: Command = {
  help: HELP,
  async run(argv: readonly string[], io: Io): Promise<number> {
    const args = parseCommandArgs('diff', argv, {
      atol: { type: 'string' },
      rtol: { type: 'string' },
      'equal-nan': { type: 'boolean' },
      'as-loaded': { type: 'boolean' },
      top: { type: 'string' },
      device: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (args.positionals.length !== 2) {
      throw new UsageError('BAD_ARGUMENTS', `lorafuse diff: expected <a> and <b>, got ${args.positionals.length} argument(s)`, { hint: 'Run `lorafuse diff --help` for usage.' });
    }
    const top = integerOption('diff', args, 'top', 10, 0);
    const json = flag(args, 'json');
    const report = await runDiff({
      a: args.positionals[0]!,
      b: args.positionals[1]!,
      tolerance: { atol: numberOption('diff', args, 'atol', 1e-6), rtol: numberOption('diff', args, 'rtol', 1e-5), equalNan: flag(args, 'equal-nan') },
      asLoaded: flag(args, 'as-loaded'),
      device: choice('diff', 'device', stringOption(args, 'device'), ['webgpu', 'dawn', 'cpu'] as const, 'webgpu'),
      io,
      quiet: json,
    });
    if (json) io.stdout.write(diffReportJson(report));
    else io.stdout.write(humanDiff(report, top));
    return report.exitCode;
  },
};

/** Opens both sides, diffs them on the chosen device and returns the report. Throws typed errors. */
export async function runDiff(opts: RunDiffOptions): Promise<DiffReport> {
  const started = performance.now();
  const files = new OpenFiles();
  const executor = openCompareDevice(opts.device, files);
  try {
    const a = await openDiffInput(opts.a, 'a', files);
    const b = await openDiffInput(opts.b, 'b', files);
    const comparer = createTensorComparer(files, executor);
    const progress = new Progress(opts.io, 'comparing', 1, opts.quiet);
    const progressOptions = {
      tolerance: opts.tolerance,
      onProgress: (done: number, total: number, name: string) => progress.update(total === 0 ? 1 : done / total, name),
    };
    let diff: TensorSetDiff | undefined;
    let loaded: LoadedDiff | undefined;
    if (opts.asLoaded) {
      const checkpoint = (side: DiffInput, role: 'a' | 'b') => {
        if (side.kind !== 'checkpoint' || side.config === null) {
          throw new UsageError('AS_LOADED_NEEDS_CHECKPOINT', `lorafuse diff --as-loaded: ${role} (${side.path}) is not a checkpoint directory with config.json`, {
            subject: side.path,
            hint: '--as-loaded emulates transformers loading a directory: give two checkpoint directories, or drop --as-loaded to compare the stored tensors.',
          });
        }
        if (side.config['model_type'] !== undefined && side.config['model_type'] !== 'gpt2') {
          throw new InputError('NOT_GPT2', `${side.path}/config.json: model_type is ${JSON.stringify(side.config['model_type'])}; --as-loaded knows how transformers loads GPT-2`, { subject: 'model_type' });
        }
        return { label: side.path, config: side.config, files: side.headers };
      };
      loaded = await diffAsLoaded(checkpoint(a, 'a'), checkpoint(b, 'b'), comparer, progressOptions);
    } else {
      diff = await diffTensorSets(tensorSetFromHeaders(a.path, a.headers, a.naming), tensorSetFromHeaders(b.path, b.headers, b.naming), comparer, progressOptions);
    }
    progress.done();
    const equal = (loaded ?? diff)!.equal;
    const side = (s: DiffInput): DiffSideReport => ({ path: s.path, kind: s.kind, files: s.weightFiles, tensors: s.headers.reduce((n, h) => n + h.tensors.length, 0) });
    return {
      ok: true,
      equal,
      exitCode: equal ? 0 : 1,
      mode: opts.asLoaded ? 'as-loaded' : 'stored',
      a: side(a),
      b: side(b),
      tolerance: opts.tolerance,
      device: opts.device,
      deviceDescription: executor.description ?? null,
      ...(diff ? { diff } : {}),
      ...(loaded ? { loaded } : {}),
      verdict: (loaded ?? diff)!.verdict,
      seconds: Math.round(performance.now() - started) / 1000,
    };
  } finally {
    await executor.close();
    await files.closeAll();
  }
}

/** The JSON document of a report, newline-ended: non-finite numbers become "inf", "-inf", "nan" (JSON has none). */
export function diffReportJson(report: DiffReport): string {
  return terminalJson(report, (_key, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? (Number.isNaN(v) ? 'nan' : v > 0 ? 'inf' : '-inf') : v));
}

// ---- human output ------------------------------------------------------------------------------

/** A statistic for the table: 3 significant digits, `inf`, `0`. */
function num(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return '0';
  return x.toExponential(2).replace('e+', 'e');
}

function cosineText(c: number | null): string {
  if (c === null) return '-';
  if (c === 1) return '1';
  // Show how far from 1 a near-perfect match is; plain digits otherwise.
  return c > 0.9999 ? `1-${num(1 - c)}` : c.toFixed(6);
}

const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;

/** The flat index as a multi-index of `shape` (row-major). */
export function multiIndex(index: number, shape: readonly number[]): number[] {
  const out: number[] = [];
  let rest = index;
  for (let d = shape.length - 1; d >= 0; d--) {
    const n = shape[d]!;
    out.unshift(n === 0 ? 0 : rest % n);
    rest = n === 0 ? 0 : Math.floor(rest / n);
  }
  return out;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ').trimEnd());
}

function tensorRow(t: TensorDiff): string[] {
  const numel = t.shape.reduce((n, d) => n * d, 1);
  const dtype = t.a.dtype === t.b.dtype ? t.a.dtype : `${t.a.dtype}→${t.b.dtype}`;
  if (t.status === 'identical') return [t.name, shapeText(t.shape), dtype, '0', '0', numel === 0 ? '-' : '1', `0 / ${numel}`, 'identical'];
  if (t.stats === null) return [t.name, shapeText(t.shape), dtype, '-', '-', '-', '-', 'bytes differ'];
  const s = t.stats;
  return [t.name, shapeText(t.shape), dtype, num(s.maxAbsDiff), num(s.maxRelDiff), cosineText(s.cosine), `${s.violations} / ${s.count}`, t.status === 'differs' ? 'DIFFERS' : 'within tolerance'];
}

function tensorSetLines(d: TensorSetDiff, top: number, via: boolean): string[] {
  const lines: string[] = [];
  for (const k of d.onlyInA) lines.push(`only in a: ${k.name}  ${k.dtype} ${shapeText(k.shape)}${via && k.via ? `  (${k.via})` : ''}`);
  for (const k of d.onlyInB) lines.push(`only in b: ${k.name}  ${k.dtype} ${shapeText(k.shape)}${via && k.via ? `  (${k.via})` : ''}`);
  for (const m of d.shapeMismatches) lines.push(`shape differs: ${m.name}  a ${m.a.dtype} ${shapeText(m.a.shape)}  b ${m.b.dtype} ${shapeText(m.b.shape)}`);
  for (const m of d.dtypeMismatches) lines.push(`dtype differs: ${m.name}  a ${m.dtypeA}  b ${m.dtypeB} (values compared in f32)`);
  if (d.tensors.length > 0) {
    const shown = top === 0 ? d.tensors : d.tensors.slice(0, top);
    const rows = [['tensor', 'shape', 'dtype', 'max abs', 'max rel', 'cosine', 'violations', ''], ...shown.map(tensorRow)];
    if (via) {
      rows[0]!.push('loaded from');
      shown.forEach((t, i) => rows[i + 1]!.push(t.viaA || t.viaB ? `a ${t.viaA ?? 'own key'}, b ${t.viaB ?? 'own key'}` : ''));
    }
    if (lines.length > 0) lines.push('');
    lines.push(...table(rows));
    const hidden = d.tensors.slice(shown.length);
    if (hidden.length > 0) {
      const count = (s: TensorDiff['status']) => hidden.filter((t) => t.status === s).length;
      const parts = [['differ', count('differs')], ['within tolerance', count('within-tolerance')], ['byte-identical', count('identical')]]
        .filter(([, n]) => (n as number) > 0)
        .map(([what, n]) => `${n} ${what}`);
      lines.push(`… ${hidden.length} more: ${parts.join(', ')} (--top 0 lists all)`);
    }
    for (const t of d.tensors.filter((x) => x.status === 'differs' && x.stats !== null && x.stats.worst.length > 0).slice(0, 3)) {
      const value = (x: number | undefined) => (x === undefined ? '?' : Number.isFinite(x) ? String(Number(x.toPrecision(7))) : num(x));
      const worst = t.stats!.worst.slice(0, 3).map((w) => `${shapeText(multiIndex(w.index, t.shape))} a=${value(w.a)} b=${value(w.b)}`);
      lines.push(`worst of ${t.name}: ${worst.join('; ')}`);
    }
    for (const t of d.tensors.filter((x) => x.note !== undefined)) lines.push(`${t.name}: ${t.note}`);
  }
  return lines;
}

function loadLines(role: 'a' | 'b', s: LoadSummary): string[] {
  const lines: string[] = [];
  for (const d of s.discarded) lines.push(`${role}: stored ${d.name} is discarded on load: ${d.reason}`);
  if (s.randomlyInitialised.length > 0) lines.push(`${role}: randomly initialised on load (no stored value): ${s.randomlyInitialised.join(', ')}`);
  if (s.ignored.length > 0) lines.push(`${role}: ${s.ignored.length} stored key(s) not loaded: ${s.ignored.slice(0, 4).join(', ')}${s.ignored.length > 4 ? ', …' : ''}`);
  for (const n of s.notes) lines.push(`${role}: ${n}`);
  return lines;
}

/** The human report: sides, mismatched keys, the table, the verdict last. */
export function humanDiff(r: DiffReport, top: number): string {
  const lines: string[] = [];
  const side = (role: 'a' | 'b', s: DiffSideReport) => `${role}: ${s.path} (${s.kind}, ${s.tensors} tensor${s.tensors === 1 ? '' : 's'})`;
  lines.push(side('a', r.a), side('b', r.b));
  if (r.diff) {
    const body = tensorSetLines(r.diff, top, false);
    if (body.length > 0) lines.push('', ...body);
  }
  if (r.loaded) {
    for (const g of r.loaded.groups) {
      lines.push('', `as loaded by transformers ${g.versions.join(' and ')} (a ${g.a.tied ? 'tied' : 'untied'}, b ${g.b.tied ? 'tied' : 'untied'}):`);
      lines.push(...loadLines('a', g.a), ...loadLines('b', g.b));
      lines.push(...tensorSetLines(g.diff, top, true));
    }
  }
  const tol = `atol=${formatTolerance(r.tolerance.atol)} rtol=${formatTolerance(r.tolerance.rtol)}`;
  const device = r.deviceDescription === null ? `no values compared on ${r.device} (every pair settled by its bytes or shape)` : `values compared on ${r.device}: ${r.deviceDescription}`;
  lines.push('', `${device}; ${tol}; ${r.seconds.toFixed(2)} s`);
  lines.push(r.verdict);
  return terminalLines(lines);
}
