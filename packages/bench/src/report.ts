/**
 * The benchmark's outputs: one JSON document, a self-contained SVG chart, and the README's
 * "Benchmarks" section (a table of the latest figures and the chart).
 */
import type { E2eFigures, E2eResult } from './e2e.js';
import type { DawnKernelResults } from './dawn-kernels.js';
import type { CompareKernelResult, KernelResult } from './kernels.js';
import type { Summary } from './stats.js';
import type { TransferResult } from './transfers.js';
import type { XlResult } from './xl.js';
import { APP_TARGET_RATIO, type AppResult } from './app.js';
import type { ForwardResult } from './forward.js';
import type { SwapResult } from './swap.js';

/** A speed or memory target lorafuse sets itself, evaluated on the measured figures. */
export interface TargetCheck {
  readonly target: string;
  readonly measured: string;
  /** null when it could not be evaluated (say why in `measured`). */
  readonly met: boolean | null;
}

/** The whole results document (`results/latest.json`). */
export interface BenchResults {
  readonly schema: 'lorafuse-bench/1';
  readonly date: string;
  readonly quick: boolean;
  readonly durationS: number;
  readonly environment: Record<string, unknown>;
  readonly checkpoint: Record<string, unknown> | null;
  readonly adapters: ReadonlyArray<Record<string, unknown>>;
  readonly startup: { browserToDeviceReadyMs: Summary } | null;
  readonly kernels: readonly KernelResult[];
  /** The merge and compare kernels on Dawn in Node, or why they were not measured. */
  readonly dawnKernels: DawnKernelResults;
  /** The compare kernel, or why it was not measured. */
  readonly compare: readonly CompareKernelResult[] | string;
  readonly transfers: readonly TransferResult[];
  readonly endToEnd: readonly E2eResult[];
  /** The browser merge app next to `lorafuse merge --device webgpu` (absent in runs from before it existed). */
  readonly app?: AppResult | null;
  /** The size benchmark (GPT-2-XL-shaped checkpoint), or null when it was not run. */
  readonly xl: XlResult | null;
  /** The GPT-2 forward pass (absent in runs from before it existed). */
  readonly forward?: ForwardResult | null;
  /** Adapter hot-swap drift and cost (absent in runs from before it existed). */
  readonly swap?: SwapResult | null;
  readonly targets: readonly TargetCheck[];
  readonly notes: readonly string[];
}

const fmt = (x: number, digits = 3) => (x >= 100 ? x.toFixed(0) : Number(x.toPrecision(digits)).toString());
const range = (s: Summary, digits = 3) => `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`;

/** The app's target: its saved merge within {@link APP_TARGET_RATIO}× the CLI's on the same WebGPU adapter. */
export function appTarget(app: AppResult | null): TargetCheck[] {
  if (!app) return [];
  const target = `End to end, ${app.adapter}: the merge app (click to saved download) <= ${APP_TARGET_RATIO}x lorafuse merge --device webgpu`;
  if (app.skipped || app.appVsCli === undefined) return [{ target, measured: `not measured: ${app.skipped ?? 'no runs'}`, met: null }];
  return [{ target, measured: `${app.appVsCli}x (app ${app.appSavedS!.median} s vs CLI ${app.cliS!.median} s; peak JS heap ${app.peakJsHeapMB!.median} MB)`, met: app.appVsCli <= APP_TARGET_RATIO }];
}

/** Best page→node and node→page channels. */
export function bestTransfers(transfers: readonly TransferResult[]): { up?: TransferResult; down?: TransferResult } {
  const best = (dir: TransferResult['direction']) =>
    transfers.filter((t) => t.direction === dir && t.mbps).sort((a, b) => b.mbps!.median - a.mbps!.median)[0];
  const up = best('page→node');
  const down = best('node→page');
  return { ...(up ? { up } : {}), ...(down ? { down } : {}) };
}

/** A wall-time target: `figure` at most `limit` times `peer`; not evaluated when either is missing. */
function wallTarget(target: string, figure: E2eFigures | undefined, peer: E2eFigures | undefined, limit: number, context = ''): TargetCheck {
  if (!figure?.wallS || !peer?.wallS) {
    const why = [peer?.wallS ? null : `${peer?.label ?? 'peer'}: ${peer?.status ?? 'not in the run'}`, figure?.wallS ? null : `${figure?.label ?? 'lorafuse'}: ${figure?.status ?? 'not in the run'}`].filter(Boolean).join('; ');
    return { target, measured: `not measured (${why})`, met: null };
  }
  const r = figure.wallS.median / peer.wallS.median;
  return { target, measured: `${fmt(r)}x (${figure.label}: ${fmt(figure.wallS.median)} s vs ${fmt(peer.wallS.median)} s${context})`, met: r <= limit };
}

/**
 * Evaluates the speed and memory targets: end-to-end time against the I/O floor (`cp + fsync`), the
 * PEFT path and the PyTorch script, peak RSS, the XL checkpoint's RSS and time, kernel throughput
 * against the CPU, page→Node transfer rate.
 */
export function checkTargets(
  kernels: readonly KernelResult[],
  compare: readonly CompareKernelResult[] | string,
  transfers: readonly TransferResult[],
  e2e: readonly E2eResult[],
  defaultDevice: { id: string; why: string },
  xl: XlResult | null = null,
  forward: ForwardResult | null = null,
  swap: SwapResult | null = null,
): TargetCheck[] {
  const checks: TargetCheck[] = [];
  if (swap && !('status' in swap) && swap.speed && swap.speed.length > 0) {
    const byMerge = [...swap.speed].sort((a, b) => a.mergeVsCpu - b.mergeVsCpu);
    const bySwap = [...swap.speed].sort((a, b) => b.swapVsMerge - a.swapVsMerge);
    const worst = byMerge[0]!;
    checks.push({
      target: 'In-place merge on app-owned weights (WeightKernels on Dawn, SwiftShader) >= 1.0x the CPU executor\'s single thread, GPT-2 shapes',
      measured: `worst ${fmt(worst.mergeVsCpu)}x (${worst.shape} ${worst.element}: ${fmt(worst.mergeMs.median)} ms vs ${fmt(worst.cpuMs.median)} ms); best ${fmt(byMerge.at(-1)!.mergeVsCpu)}x`,
      met: worst.mergeVsCpu >= 1,
    });
    checks.push({
      target: 'Fused swap (one adapter out, one in) <= 1.1x the time of one merge',
      measured: `worst ${fmt(bySwap[0]!.swapVsMerge)}x (${bySwap[0]!.shape} ${bySwap[0]!.element})`,
      met: bySwap[0]!.swapVsMerge <= 1.1,
    });
  }
  if (forward) {
    const dawn = forward.figures.find((f) => f.id === 'lorafuse-dawn');
    const r = forward.prefillVsTorch['lorafuse-dawn'];
    checks.push({
      target: `GPT-2-124M forward pass, ${forward.prefillTokens}-token prefill on Dawn (SwiftShader) <= 3x PyTorch CPU (2 threads)`,
      measured: r !== undefined ? `${fmt(dawn!.prefillS!.median)} s = ${fmt(r)}x PyTorch (${dawn!.label})` : `not measured (${dawn?.skipped ?? forward.figures.find((f) => f.id === 'pytorch')?.skipped ?? 'no run'})`,
      met: r !== undefined ? r <= 3 : null,
    });
    const web = forward.figures.find((f) => f.id === 'lorafuse-webgpu');
    const rw = forward.prefillVsTorch['lorafuse-webgpu'];
    checks.push({
      target: `GPT-2-124M forward pass, ${forward.prefillTokens}-token prefill in Chromium (SwiftShader) <= 3x PyTorch CPU (2 threads)`,
      measured: rw !== undefined ? `${fmt(web!.prefillS!.median)} s = ${fmt(rw)}x PyTorch (${web!.label})` : `not measured (${web?.skipped ?? 'no run'})`,
      met: rw !== undefined ? rw <= 3 : null,
    });
  }
  const cAttn = e2e.find((r) => r.adapter === 'c_attn-r8');
  if (cAttn) {
    const byId = (id: string) => cAttn.figures.find((f) => f.id === id);
    const floor = byId('cp-fsync');
    const torch = byId('torch');
    const peft = byId('peft');
    const def = byId(defaultDevice.id);
    const why = `; ${defaultDevice.why}`;
    checks.push(wallTarget('End to end, c_attn r=8: default device <= 1.5x `cp + fsync` of model.safetensors (the I/O floor)', def, floor, 1.5, why));
    checks.push(wallTarget('End to end, c_attn r=8: default device <= 0.1x the PEFT path (from_pretrained, PeftModel, merge_and_unload, save_pretrained)', def, peft, 0.1, why));
    checks.push(wallTarget('End to end, c_attn r=8: default device <= 0.5x the PyTorch + safetensors script', def, torch, 0.5, why));
    checks.push({
      target: 'End to end, c_attn r=8: default device <= 300 MB peak RSS',
      measured: def?.peakRssMB ? `${fmt(def.peakRssMB.median)} MB (${def.label})` : 'not measured',
      met: def?.peakRssMB ? def.peakRssMB.median <= 300 : null,
    });
    // Both WebGPU paths: the kernels in Chromium's page, and on Dawn inside Node.
    for (const [id, path] of [['lorafuse-webgpu', 'Chromium path (--device webgpu)'], ['lorafuse-dawn', 'WebGPU path on Dawn in Node (--device dawn)']] as const) {
      const figure = byId(id);
      if (figure === undefined) continue;
      checks.push(wallTarget(`End to end, c_attn r=8: ${path} <= 1.0x the PyTorch + safetensors script`, figure, torch, 1.0));
    }
  }
  if (xl) {
    const full = xl.layers === xl.fullLayers;
    const lorafuse = xl.figures.find((f) => f.id.startsWith('lorafuse'));
    const floor = xl.figures.find((f) => f.id === 'cp-fsync');
    // At fewer layers the figures are shown but the targets, set for the real size, are not judged.
    const smaller = full ? '' : ` — at ${xl.layers} of ${xl.fullLayers} layers (--xl-layers), not judged`;
    if (xl.skipped) {
      checks.push({ target: 'GPT-2-XL f32 (6.2 GB): lorafuse merge <= 400 MB peak RSS', measured: `not measured: ${xl.skipped}`, met: null });
      checks.push({ target: 'GPT-2-XL f32 (6.2 GB): lorafuse merge <= 1.5x its `cp + fsync`', measured: `not measured: ${xl.skipped}`, met: null });
    } else {
      checks.push({
        target: 'GPT-2-XL f32 (6.2 GB): lorafuse merge <= 400 MB peak RSS',
        measured: lorafuse?.peakRssMB ? `${fmt(lorafuse.peakRssMB.median)} MB (${lorafuse.label}${lorafuse.device ? `, ran on ${lorafuse.device}` : ''})${smaller}` : `not measured (${lorafuse?.status ?? 'no run'})`,
        met: lorafuse?.peakRssMB && full ? lorafuse.peakRssMB.median <= 400 : null,
      });
      const t = wallTarget('GPT-2-XL f32 (6.2 GB): lorafuse merge <= 1.5x its `cp + fsync`', lorafuse, floor, 1.5, smaller);
      checks.push(full ? t : { ...t, met: null });
    }
  }
  for (const k of kernels) {
    checks.push({
      target: `Merge kernel ${k.shape.id} >= 1.0x the CPU executor's single-thread throughput`,
      measured: `${fmt(k.ratios.webgpuVsCpuExecutor)}x (${fmt((k.webgpu.gpuGbps ?? k.webgpu.gbps).median)} vs ${fmt(k.cpuExecutor.gbps.median)} GB/s)`,
      met: k.ratios.webgpuVsCpuExecutor >= 1.0,
    });
  }
  if (typeof compare === 'string') checks.push({ target: 'Compare kernel >= 1.0x the CPU', measured: `not measured: ${compare}`, met: null });
  else
    for (const c of compare)
      checks.push({
        target: `Compare kernel ${c.shape.id} >= 1.0x the CPU reference (one thread)`,
        measured: `${fmt(c.ratios.webgpuVsCpuReference)}x (${fmt(c.webgpu.gbps.median)} vs ${fmt(c.cpuReference.gbps.median)} GB/s of both tensors)`,
        met: c.ratios.webgpuVsCpuReference >= 1.0,
      });
  const { up } = bestTransfers(transfers);
  checks.push({
    target: 'Page->Node transfer >= 500 MB/s, or the figures showing why not',
    measured: up ? `best ${fmt(up.mbps!.median)} MB/s (${up.channel}); every channel is in the transfers table` : 'not measured',
    met: up ? up.mbps!.median >= 500 : null,
  });
  return checks;
}

// ---- SVG ----

interface Bar {
  label: string;
  value: number | null;
  color: string;
  text?: string;
}
interface Group {
  title: string;
  bars: Bar[];
}

const COLORS = { webgpu: '#2f6fdf', cpu: '#e07b1f', torch: '#7b4bb7', peft: '#b7478a', copy: '#8a8a8a', cp: '#8a8a8a', auto: '#2a9d5c', transfer: '#2f6fdf' };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** One panel of horizontal bars, log-scaled when `log`; returns [svg text, height]. */
function panel(y0: number, width: number, title: string, subtitle: string, groups: Group[], log: boolean, refLine?: { value: number; label: string }): [string, number] {
  const labelW = 290;
  const plotW = width - labelW - 90;
  const values = groups.flatMap((g) => g.bars.map((b) => b.value)).filter((v): v is number => v !== null && v > 0);
  if (refLine) values.push(refLine.value);
  const max = Math.max(...values) * (log ? 2 : 1.1);
  const min = log ? Math.min(...values) / 2 : 0;
  const x = (v: number) => labelW + (log ? (Math.log10(v / min) / Math.log10(max / min)) * plotW : (v / max) * plotW);
  const barH = 14;
  let y = y0 + 44;
  const parts: string[] = [
    `<text x="10" y="${y0 + 18}" font-size="15" font-weight="bold">${esc(title)}</text>`,
    `<text x="10" y="${y0 + 34}" font-size="11" fill="#555">${esc(subtitle)}</text>`,
  ];
  const top = y;
  for (const g of groups) {
    parts.push(`<text x="10" y="${y + 11}" font-size="12" font-weight="bold">${esc(g.title)}</text>`);
    y += 16;
    for (const b of g.bars) {
      parts.push(`<text x="${labelW - 6}" y="${y + 11}" font-size="11" text-anchor="end">${esc(b.label)}</text>`);
      if (b.value !== null && b.value > 0) {
        const w = Math.max(1, x(b.value) - labelW);
        parts.push(`<rect x="${labelW}" y="${y + 1}" width="${w.toFixed(1)}" height="${barH - 2}" fill="${b.color}"/>`);
        parts.push(`<text x="${(labelW + w + 4).toFixed(1)}" y="${y + 11}" font-size="11">${esc(b.text ?? fmt(b.value))}</text>`);
      } else {
        parts.push(`<text x="${labelW + 4}" y="${y + 11}" font-size="11" fill="#999">${esc(b.text ?? 'n/a')}</text>`);
      }
      y += barH + 2;
    }
    y += 6;
  }
  if (refLine) {
    const rx = x(refLine.value).toFixed(1);
    parts.push(`<line x1="${rx}" y1="${top - 4}" x2="${rx}" y2="${y - 4}" stroke="#c00" stroke-dasharray="4 3"/>`);
    parts.push(`<text x="${rx}" y="${y + 6}" font-size="10" fill="#c00" text-anchor="middle">${esc(refLine.label)}</text>`);
  }
  return [parts.join('\n'), y - y0 + (refLine ? 22 : 10)];
}

/** One contender's bar: its wall-time ratio `rel`, labelled with the ratio, the time and the peak RSS. */
function wallBar(f: E2eFigures, rel: number | undefined): Bar {
  const color = f.id === 'torch' ? COLORS.torch : f.id === 'peft' ? COLORS.peft : f.id.startsWith('cp') ? COLORS.cp : f.id.endsWith('cpu') ? COLORS.cpu : f.id.endsWith('auto') ? COLORS.auto : COLORS.webgpu;
  // The label without its parenthesis (versions, what the script does): the README table has those.
  const label = f.label.replace(/ \(.*\)$/, '');
  return { label, value: rel ?? null, color, text: f.wallS ? `${rel !== undefined ? `${fmt(rel)}x · ` : ''}${fmt(f.wallS.median)} s · ${f.peakRssMB ? `${fmt(f.peakRssMB.median)} MB` : '? MB'}` : f.status.slice(0, 60) };
}

/** The chart: end-to-end wall time relative to the I/O floor, the size benchmark, kernel throughput, transfer channels. */
export function renderSvg(results: BenchResults): string {
  const width = 860;
  const panels: string[] = [];
  let y = 10;
  const env = results.environment as { cpu?: string; cores?: number; adapter?: string; chromium?: string };
  const header = `<text x="10" y="${y + 16}" font-size="17" font-weight="bold">lorafuse benchmarks${results.quick ? ' (quick run)' : ''}</text>
<text x="10" y="${y + 34}" font-size="11" fill="#555">${esc(`${results.date.slice(0, 10)} · ${env.cpu ?? '?'} (${env.cores ?? '?'} cores) · ${(env.chromium ?? '').split(' ').slice(0, 2).join(' ')} · WebGPU: ${env.adapter ?? '?'}`)}</text>`;
  y += 44;
  if (results.endToEnd.length > 0) {
    // Relative to the I/O floor when it ran (the target is stated against it), else to PyTorch.
    const byFloor = results.endToEnd.every((r) => Object.keys(r.wallVsFsync).length > 0);
    const groups: Group[] = results.endToEnd.map((r) => ({
      title: `GPT-2-124M f32 + ${r.adapter}`,
      bars: r.figures.map((f) => wallBar(f, (byFloor ? r.wallVsFsync : r.wallVsTorch)[f.id])),
    }));
    const [svg, h] = panel(
      y,
      width,
      `End to end: wall time relative to ${byFloor ? 'cp + fsync (the I/O floor)' : 'the PyTorch + safetensors script'} (log scale, lower is better)`,
      `median of ${results.endToEnd[0]!.runs} interleaved runs; label: ratio · median wall time · median peak RSS`,
      groups,
      true,
      byFloor ? { value: 1, label: 'cp + fsync' } : { value: 1, label: 'PyTorch' },
    );
    panels.push(svg);
    y += h;
  }
  const xl = results.xl;
  if (xl && !xl.skipped && xl.figures.length > 0) {
    const layers = xl.layers === xl.fullLayers ? '' : ` (${xl.layers} of ${xl.fullLayers} layers)`;
    const groups: Group[] = [{ title: `GPT-2-XL shape${layers} f32, ${((xl.modelBytes ?? 0) / 1e9).toFixed(2)} GB + ${xl.adapterId}`, bars: xl.figures.map((f) => wallBar(f, xl.wallVsFsync[f.id])) }];
    const [svg, h] = panel(y, width, 'Size: wall time relative to cp + fsync (lower is better)', 'one run each; label: ratio · wall time · peak RSS', groups, false, { value: 1.5, label: 'target 1.5x' });
    panels.push(svg);
    y += h;
  }
  if (results.kernels.length > 0) {
    const groups: Group[] = results.kernels.map((k) => {
      const torch = 'defaultThreads' in k.torch ? k.torch.defaultThreads.gbps.median : null;
      return {
        title: `${k.shape.id} ${k.shape.orientation} (${k.shape.module})`,
        bars: [
          { label: 'copyBufferToBuffer (device limit)', value: k.copyBufferToBuffer.gbps.median, color: COLORS.copy },
          {
            label: `WebGPU merge kernel${k.webgpu.gpuGbps ? ' (timestamps)' : ''}`,
            value: (k.webgpu.gpuGbps ?? k.webgpu.gbps).median,
            color: COLORS.webgpu,
            text: `${fmt((k.webgpu.gpuGbps ?? k.webgpu.gbps).median)} · ${fmt(k.ratios.webgpuVsCopy)}x copy · ${fmt(k.ratios.webgpuVsCpuExecutor)}x CPU executor${k.ratios.webgpuVsTorch !== null ? ` · ${fmt(k.ratios.webgpuVsTorch)}x PyTorch` : ''}`,
          },
          { label: 'CPU executor (Node, 1 thread)', value: k.cpuExecutor.gbps.median, color: COLORS.cpu },
          ...('threads' in k.cpuExecutorThreads ? [{ label: `CPU executor (${k.cpuExecutorThreads.threads} worker threads)`, value: k.cpuExecutorThreads.gbps.median, color: COLORS.cpu }] : []),
          { label: 'PyTorch addmm_', value: torch, color: COLORS.torch, ...(torch === null ? { text: 'not installed' } : {}) },
        ],
      };
    });
    if (typeof results.compare !== 'string') {
      for (const c of results.compare) {
        groups.push({
          title: `compare kernel, ${c.shape.id} (GB/s of both tensors)`,
          bars: [
            { label: 'WebGPU compare kernel (wall)', value: c.webgpu.gbps.median, color: COLORS.webgpu, text: `${fmt(c.webgpu.gbps.median)} · ${fmt(c.ratios.webgpuVsCpuReference)}x CPU reference` },
            { label: 'CPU reference (Node, 1 thread)', value: c.cpuReference.gbps.median, color: COLORS.cpu },
          ],
        });
      }
    }
    const [svg, h] = panel(y, width, 'Kernels: GB/s of W read + written (log scale)', 'median; WebGPU on the adapter above', groups, true);
    panels.push(svg);
    y += h;
  }
  const transfers = results.transfers.filter((t) => t.direction !== 'node→node' || t.mbps);
  if (transfers.length > 0) {
    const dirs: Array<TransferResult['direction']> = ['node→page', 'page→node', 'node→node'];
    const groups: Group[] = dirs
      .map((d) => ({
        title: d === 'node→node' ? 'Node → Node (loopback floor)' : d === 'node→page' ? 'Node → page' : 'page → Node',
        bars: transfers.filter((t) => t.direction === d).map((t) => ({ label: t.channel.length > 50 ? `${t.channel.slice(0, 48)}…` : t.channel, value: t.mbps?.median ?? null, color: COLORS.transfer, ...(t.mbps ? {} : { text: t.status.slice(0, 50) }) })),
      }))
      .filter((g) => g.bars.length > 0);
    const [svg, h] = panel(y, width, 'Transfers between Node and the page: MB/s (log scale)', `median, ${((results.transfers[0]?.bytes ?? 0) / 2 ** 20).toFixed(0)} MiB per transfer`, groups, true, { value: 500, label: 'target 500 MB/s' });
    panels.push(svg);
    y += h;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y + 10}" viewBox="0 0 ${width} ${y + 10}" font-family="system-ui, -apple-system, 'Segoe UI', sans-serif">
<rect width="100%" height="100%" fill="#fff"/>
${header}
${panels.join('\n')}
</svg>
`;
}

// ---- README ----

/** A Dawn figure for a table cell: GB/s (timestamps where there are, else wall), or '–'. */
function dawnFigure(dawn: DawnKernelResults, kind: 'merge' | 'compare', shape: string): string {
  if (!('adapter' in dawn)) return '–';
  const f = dawn[kind].find((x) => x.shape === shape);
  return f ? fmt((f.gpuGbps ?? f.gbps).median) : '–';
}

/** The README's "Benchmarks" section (markdown), ending with a blank line. */
export function renderReadmeSection(results: BenchResults, chartPath: string): string {
  const env = results.environment as { cpu?: string; cores?: number; memoryGiB?: number; adapter?: string; chromium?: string; node?: string; torch?: string; peft?: string; fsyncCheck?: string };
  const lines: string[] = [
    '## Benchmarks',
    '',
    '`npm run bench` (a few minutes; `npm run bench -- --quick` for a rough pass) measures the merge and compare',
    'kernels (in Chromium and on Dawn in Node), the transfers between Node and the page, whole merges of a',
    'generated GPT-2-124M-shaped checkpoint on every device against `cp`, `cp + fsync` (the I/O floor), a plain',
    'PyTorch + safetensors script and what PEFT users run (transformers + PEFT from `.venv-interop`:',
    '`from_pretrained`, `PeftModel`, `merge_and_unload`, `save_pretrained`), and one merge of a generated',
    'GPT-2-XL-shaped checkpoint (6.2 GB, in a temporary directory, removed afterwards) against its `cp + fsync`,',
    'and writes `packages/bench/results/latest.json` (every figure with min/median/max) and the chart below.',
    'Figures of the last full run:',
    '',
    `- machine: ${env.cpu ?? '?'}, ${env.cores ?? '?'} cores, ${env.memoryGiB ?? '?'} GiB; Node ${env.node ?? '?'}; ${env.chromium ?? '?'}; WebGPU adapter: ${env.adapter ?? '?'}; Dawn in Node: ${'adapter' in results.dawnKernels ? results.dawnKernels.adapter : results.dawnKernels.status}; PyTorch: ${env.torch ?? '?'}; PEFT: ${env.peft ?? '?'}`,
    `- \`cp + fsync\` is \`sh -c 'cp SRC DST && sync DST'\` (GNU \`sync FILE\` fsyncs that file); the fsync ${env.fsyncCheck ?? 'not checked'}`,
    `- date: ${results.date.slice(0, 10)}${results.quick ? ' (quick run: fewer repetitions)' : ''}`,
    '',
  ];
  for (const r of results.endToEnd) {
    lines.push(`End to end, GPT-2-124M f32 (${(((results.checkpoint?.['bytes'] as number | undefined) ?? 0) / 1e6).toFixed(0)} MB) + adapter \`${r.adapter}\`, median (min–max) of ${r.runs} interleaved runs:`, '');
    lines.push('| contender | wall time, s | × cp + fsync | × PyTorch script | × PEFT path | peak RSS, MB |', '|---|---|---|---|---|---|');
    const rel = (x: number | undefined) => (x !== undefined ? fmt(x) : '–');
    for (const f of r.figures) {
      lines.push(`| ${f.label}${f.device ? ` — ran on ${f.device}` : ''} | ${f.wallS ? range(f.wallS) : f.status} | ${rel(r.wallVsFsync[f.id])} | ${rel(r.wallVsTorch[f.id])} | ${rel(r.wallVsPeft[f.id])} | ${f.peakRssMB ? range(f.peakRssMB) : '–'} |`);
    }
    lines.push('');
  }
  const app = results.app;
  if (app) {
    if (app.skipped) lines.push(`The merge app, GPT-2-124M + \`${app.adapter}\`: ${app.skipped}`, '');
    else {
      lines.push(`The merge app (packages/web) in headless Chromium on the same adapter as --device webgpu, GPT-2-124M + \`${app.adapter}\`, median (min–max) of ${app.runs} interleaved runs:`, '');
      lines.push('| contender | wall time, s | × CLI | peak JS heap, MB |', '|---|---|---|---|');
      lines.push(`| lorafuse merge --device webgpu | ${range(app.cliS!)} | 1 | – |`);
      lines.push(`| the app, click to proven (output in Blob parts) | ${range(app.appMergeS!)} | ${fmt(app.appMergeS!.median / app.cliS!.median)} | ${range(app.peakJsHeapMB!)} |`);
      lines.push(`| the app, click to model.safetensors downloaded | ${range(app.appSavedS!)} | ${fmt(app.appVsCli!)} | – |`);
      if (app.appDirectoryS) lines.push(`| the app, into a chosen directory (written, proven, closed) | ${range(app.appDirectoryS)} | ${fmt(app.appDirectoryVsCli!)} | – |`);
      lines.push('');
    }
  }
  const xl = results.xl;
  if (xl) {
    if (xl.skipped) lines.push(`Size, ${xl.shape} + ${xl.adapter}: ${xl.skipped}`, '');
    else {
      lines.push(`Size, ${xl.shape} f32 (${((xl.modelBytes ?? 0) / 1e9).toFixed(2)} GB, ${((xl.parameters ?? 0) / 1e9).toFixed(2)} B parameters) + ${xl.adapter}, one run each:`, '');
      lines.push('| contender | wall time, s | × cp + fsync | peak RSS, MB |', '|---|---|---|---|');
      for (const f of xl.figures) lines.push(`| ${f.label}${f.device ? ` — ran on ${f.device}` : ''} | ${f.wallS ? fmt(f.wallS.median) : f.status} | ${xl.wallVsFsync[f.id] !== undefined ? fmt(xl.wallVsFsync[f.id]!) : '–'} | ${f.peakRssMB ? fmt(f.peakRssMB.median) : '–'} |`);
      lines.push('');
    }
  }
  const fw = results.forward;
  if (fw) {
    lines.push(`Forward pass, ${fw.shape}: ${fw.prefillTokens}-token prefill (median) and greedy decoding of ${fw.decodeTokens} tokens after an 8-token prompt:`, '');
    lines.push('| contender | load, s | prefill, s | × PyTorch | decode, tokens/s |', '|---|---|---|---|---|');
    for (const f of fw.figures) {
      lines.push(f.skipped ? `| ${f.label} | – | ${f.skipped} | – | – |` : `| ${f.label} | ${fmt(f.loadS ?? NaN)} | ${range(f.prefillS!)} | ${fw.prefillVsTorch[f.id] !== undefined ? fmt(fw.prefillVsTorch[f.id]!) : '–'} | ${fmt(f.decodeTokensPerS ?? NaN)} |`);
    }
    for (const n of fw.notes) lines.push('', n);
    lines.push('');
  }
  const swap = results.swap;
  if (swap) {
    if ('status' in swap) lines.push(`Adapter swap on app-owned weights: ${swap.status}`, '');
    else {
      const cycles = swap.figures[0]?.drift.map((d) => d.cycles) ?? [];
      lines.push(`Adapter swap on app-owned weights (\`WeightKernels\`, Dawn: ${swap.adapter}), ${swap.shape}; max |W − W₀| after n merge + unmerge cycles:`, '');
      lines.push(`| element | mode | ${cycles.map((c) => `${c} cycle${c === 1 ? '' : 's'}`).join(' | ')} | ms per cycle |`, `|---|---|${cycles.map(() => '---|').join('')}---|`);
      for (const f of swap.figures) lines.push(`| ${f.element} | ${f.mode} | ${f.drift.map((d) => (d.maxAbs === 0 ? '0' : d.maxAbs.toExponential(1))).join(' | ')} | ${fmt(f.msPerCycle.median)} |`);
      lines.push('', `PEFT's in-place merge/unmerge on bf16, as measured by PEFT: ${swap.peft.after1.toExponential(1)} after 1 cycle, ${swap.peft.after1000.toExponential(1)} after 1000.`);
      if (swap.speed && swap.speed.length > 0) {
        lines.push('', 'Merge and fused swap on app-owned weights (rank 8, median), next to the CPU executor\'s merge loop on one thread:', '');
        lines.push('| weight | element | merge, ms | swap, ms | CPU 1 thread, ms | CPU / merge | swap / merge |', '|---|---|---|---|---|---|---|');
        for (const f of swap.speed) lines.push(`| ${f.shape} | ${f.element} | ${fmt(f.mergeMs.median)} | ${fmt(f.swapMs.median)} | ${fmt(f.cpuMs.median)} | ${fmt(f.mergeVsCpu)} | ${fmt(f.swapVsMerge)} |`);
      }
      for (const n of swap.notes) lines.push('', n);
      lines.push('');
    }
  }
  if (results.kernels.length > 0) {
    lines.push('Merge kernel, GB/s of W read + written (median):', '');
    lines.push('| shape | WebGPU kernel (Chromium) | same kernel on Dawn in Node | copyBufferToBuffer | kernel / copy | CPU executor, 1 thread (worker threads) | kernel / CPU 1 thread | PyTorch addmm_, all threads (1 thread) |', '|---|---|---|---|---|---|---|---|');
    for (const k of results.kernels) {
      const torch = 'defaultThreads' in k.torch ? `${fmt(k.torch.defaultThreads.gbps.median)} (${fmt(k.torch.singleThread.gbps.median)})` : k.torch.status.split(' (')[0];
      lines.push(
        `| ${k.shape.id} ${k.shape.orientation} | ${fmt((k.webgpu.gpuGbps ?? k.webgpu.gbps).median)} | ${dawnFigure(results.dawnKernels, 'merge', `${k.shape.id} ${k.shape.orientation}`)} | ${fmt(k.copyBufferToBuffer.gbps.median)} | ${fmt(k.ratios.webgpuVsCopy)} | ${fmt(k.cpuExecutor.gbps.median)}${'threads' in k.cpuExecutorThreads ? ` (${fmt(k.cpuExecutorThreads.gbps.median)})` : ''} | ${fmt(k.ratios.webgpuVsCpuExecutor)} | ${torch} |`,
      );
    }
    lines.push('');
  }
  if (typeof results.compare !== 'string' && results.compare.length > 0) {
    lines.push('Compare kernel, GB/s of both f32 tensors read (median):', '', '| tensors | WebGPU kernel (Chromium, wall) | same kernel on Dawn in Node | CPU reference (1 thread) | kernel / CPU |', '|---|---|---|---|---|');
    for (const c of results.compare) lines.push(`| ${c.shape.id} | ${fmt(c.webgpu.gbps.median)} | ${dawnFigure(results.dawnKernels, 'compare', c.shape.id)} | ${fmt(c.cpuReference.gbps.median)} | ${fmt(c.ratios.webgpuVsCpuReference)} |`);
    lines.push('');
  }
  if (results.transfers.length > 0) {
    lines.push(`Transfers, MB/s (median, ${(results.transfers[0]!.bytes / 2 ** 20).toFixed(0)} MiB each):`, '');
    lines.push('| direction | channel | MB/s |', '|---|---|---|');
    for (const t of results.transfers) lines.push(`| ${t.direction} | ${t.channel} | ${t.mbps ? range(t.mbps) : t.status} |`);
    lines.push('');
  }
  if (results.targets.length > 0) {
    lines.push('Performance targets:', '', '| target | measured | met |', '|---|---|---|');
    for (const t of results.targets) lines.push(`| ${t.target} | ${t.measured} | ${t.met === null ? '–' : t.met ? 'yes' : 'no'} |`);
    lines.push('');
  }
  for (const n of results.notes) lines.push(`- ${n}`);
  if (results.notes.length > 0) lines.push('');
  lines.push(`![lorafuse benchmark chart](${chartPath})`, '', '');
  return lines.join('\n');
}

/** Replaces (or inserts before "## Tests") the README's "## Benchmarks" section. */
export function updateReadme(readme: string, section: string): string {
  const start = readme.search(/^## Benchmarks\s*$/m);
  if (start >= 0) {
    const rest = readme.slice(start + 1);
    const next = rest.search(/^## /m);
    const end = next >= 0 ? start + 1 + next : readme.length;
    return readme.slice(0, start) + section + readme.slice(end);
  }
  const tests = readme.search(/^## Tests\s*$/m);
  if (tests >= 0) return readme.slice(0, tests) + section + readme.slice(tests);
  return `${readme.trimEnd()}\n\n${section}`;
}
