/** bench/report: the targets against the peers and the XL size, and how the README and chart show them. */
import { describe, expect, it } from 'vitest';
import type { E2eFigures, E2eResult } from './e2e.js';
import type { AppResult } from './app.js';
import { appTarget, checkTargets, renderReadmeSection, renderSvg, type BenchResults } from './report.js';
import { summarize } from './stats.js';
import type { XlResult } from './xl.js';

const fig = (id: string, wallS: number, rssMB = 2): E2eFigures => ({ id, label: `${id} (details)`, wallS: summarize([wallS], 's'), peakRssMB: summarize([rssMB], 'MB'), status: 'ok' });

function e2e(figures: E2eFigures[]): E2eResult {
  const vs = (peer: string) => {
    const p = figures.find((f) => f.id === peer)?.wallS;
    return p ? Object.fromEntries(figures.filter((f) => f.wallS).map((f) => [f.id, f.wallS!.median / p.median])) : {};
  };
  return { adapter: 'c_attn-r8', runs: 1, figures, wallVsFsync: vs('cp-fsync'), wallVsTorch: vs('torch'), wallVsPeft: vs('peft') };
}

const AUTO = { id: 'lorafuse-auto', why: 'auto, the default' };
const PEERS = [fig('cp', 0.2), fig('cp-fsync', 1), fig('torch', 4, 700), fig('peft', 10, 830)];

function xl(layers: number, lorafuse: E2eFigures, floor = fig('cp-fsync', 10)): XlResult {
  return { layers, fullLayers: 48, shape: 'GPT-2-XL', adapterId: 'c_attn-r8', adapter: 'c_attn r=8', modelBytes: 6.2e9, parameters: 1.56e9, tensors: 580, figures: [floor, lorafuse], wallVsFsync: { 'cp-fsync': 1, [lorafuse.id]: lorafuse.wallS!.median / floor.wallS!.median } };
}

const byTarget = (checks: ReturnType<typeof checkTargets>, text: string) => checks.find((c) => c.target.includes(text));

describe('checkTargets', () => {
  it('judges the default device against cp + fsync, the PEFT path and the PyTorch script, and the Chromium path against the script', () => {
    const checks = checkTargets([], 'not run', [], [e2e([...PEERS, fig('lorafuse-auto', 1.4, 150), fig('lorafuse-webgpu', 4.4, 300)])], AUTO);
    expect(byTarget(checks, '1.5x `cp + fsync`')).toMatchObject({ met: true, measured: expect.stringContaining('1.4x') });
    expect(byTarget(checks, '0.1x the PEFT path')).toMatchObject({ met: false, measured: expect.stringContaining('0.14x') });
    expect(byTarget(checks, '0.5x the PyTorch')).toMatchObject({ met: true });
    expect(byTarget(checks, '300 MB')).toMatchObject({ met: true });
    expect(byTarget(checks, 'Chromium path (--device webgpu) <= 1.0x the PyTorch + safetensors script')).toMatchObject({ met: false });
  });

  it('leaves a target unjudged, with the reason, when its peer did not run', () => {
    const skipped: E2eFigures = { id: 'peft', label: 'PEFT path', status: 'not run: not installed (no peft)' };
    const checks = checkTargets([], 'not run', [], [e2e([fig('cp-fsync', 1), skipped, fig('lorafuse-auto', 1.2)])], AUTO);
    expect(byTarget(checks, 'PEFT path')).toMatchObject({ met: null, measured: expect.stringContaining('not installed (no peft)') });
    expect(byTarget(checks, '1.5x `cp + fsync`')).toMatchObject({ met: true });
  });

  it('judges the XL checkpoint at its real size only', () => {
    const full = checkTargets([], 'not run', [], [], AUTO, xl(48, fig('lorafuse-auto', 16, 350)));
    expect(byTarget(full, 'GPT-2-XL f32 (6.2 GB): lorafuse merge <= 400 MB')).toMatchObject({ met: true });
    expect(byTarget(full, 'GPT-2-XL f32 (6.2 GB): lorafuse merge <= 1.5x')).toMatchObject({ met: false, measured: expect.stringContaining('1.6x') });
    const small = checkTargets([], 'not run', [], [], AUTO, xl(2, fig('lorafuse-auto', 12, 180)));
    expect(byTarget(small, '400 MB')).toMatchObject({ met: null, measured: expect.stringContaining('2 of 48 layers') });
    expect(byTarget(small, '1.5x its')).toMatchObject({ met: null });
    const none = checkTargets([], 'not run', [], [], AUTO, { ...xl(48, fig('lorafuse-auto', 1)), skipped: 'not enough free disk', figures: [] });
    expect(byTarget(none, '400 MB')).toMatchObject({ met: null, measured: expect.stringContaining('not enough free disk') });
  });
});

describe('checkTargets: swap on app-owned weights', () => {
  it('judges the slowest shape against the CPU executor and the worst swap against one merge', () => {
    const speed = (shape: string, merge: number, swap: number, cpu: number) => ({ shape, element: 'f32' as const, mergeMs: summarize([merge], 'ms'), swapMs: summarize([swap], 'ms'), cpuMs: summarize([cpu], 'ms'), mergeVsCpu: cpu / merge, swapVsMerge: swap / merge });
    const swap = { adapter: 'SwiftShader', shape: 'W', figures: [], peft: { after1: 2.4e-4, after1000: 1.5e-2 }, notes: [], speed: [speed('c_attn', 100, 105, 150), speed('wte', 400, 500, 300)] };
    const checks = checkTargets([], 'not run', [], [], AUTO, null, null, swap);
    expect(byTarget(checks, 'In-place merge on app-owned weights')).toMatchObject({ met: false, measured: expect.stringContaining('worst 0.75x (wte f32') });
    expect(byTarget(checks, 'Fused swap')).toMatchObject({ met: false, measured: expect.stringContaining('worst 1.25x (wte') });
    const fast = { ...swap, speed: [speed('c_attn', 100, 105, 150)] };
    expect(checkTargets([], 'not run', [], [], AUTO, null, null, fast).filter((c) => c.target.includes('app-owned') || c.target.includes('Fused')).map((c) => c.met)).toEqual([true, true]);
  });
});

describe('renderReadmeSection and renderSvg', () => {
  const results: BenchResults = {
    schema: 'lorafuse-bench/1',
    date: '2026-12-01T00:00:00Z',
    quick: false,
    durationS: 1,
    environment: { fsyncCheck: 'seen with strace on a 1 MiB copy: fsync(3<…/dst>) = 0', peft: 'peft 0.21.0' },
    checkpoint: { bytes: 497774208 },
    adapters: [],
    startup: null,
    kernels: [],
    dawnKernels: { status: 'not run' },
    compare: 'not run',
    transfers: [],
    endToEnd: [e2e([...PEERS, fig('lorafuse-auto', 1.4, 150)])],
    xl: xl(48, fig('lorafuse-auto', 16, 350)),
    targets: [],
    notes: [],
  };

  it('shows every contender against the three peers, and the XL run against its cp + fsync', () => {
    const md = renderReadmeSection(results, 'chart.svg');
    expect(md).toContain('| contender | wall time, s | × cp + fsync | × PyTorch script | × PEFT path | peak RSS, MB |');
    expect(md).toMatch(/\| lorafuse-auto \(details\) \| 1\.4 \(1\.4–1\.4\) \| 1\.4 \| 0\.35 \| 0\.14 \| 150 \(150–150\) \|/);
    expect(md).toContain('the fsync seen with strace');
    expect(md).toMatch(/Size, GPT-2-XL f32 \(6\.20 GB, 1\.56 B parameters\)/);
    expect(md).toMatch(/\| lorafuse-auto \(details\) \| 16 \| 1\.6 \| 350 \|/);
  });

  it('shows the swap drift table by element type and mode, next to PEFT\'s figure', () => {
    const drift = (maxAbs: number) => [1, 1000].map((cycles) => ({ cycles, maxAbs }));
    const md = renderReadmeSection(
      {
        ...results,
        swap: {
          adapter: 'SwiftShader',
          shape: 'W [32, 768]',
          figures: [
            { element: 'bf16', mode: 'swap', drift: drift(2.44e-4), msPerCycle: summarize([20], 'ms') },
            { element: 'bf16', mode: 'rebuild', drift: drift(0), msPerCycle: summarize([18], 'ms') },
          ],
          peft: { after1: 2.4e-4, after1000: 1.5e-2 },
          notes: ['how a cycle is defined'],
        },
      },
      'chart.svg',
    );
    expect(md).toContain('| element | mode | 1 cycle | 1000 cycles | ms per cycle |');
    expect(md).toContain('| bf16 | swap | 2.4e-4 | 2.4e-4 | 20 |');
    expect(md).toContain('| bf16 | rebuild | 0 | 0 | 18 |');
    expect(md).toContain('2.4e-4 after 1 cycle, 1.5e-2 after 1000');
  });

  it('shows the merge app next to the CLI on its adapter, with its JS heap, and judges it against 2x the CLI', () => {
    const app: AppResult = { adapter: 'c_attn-r8', runs: 1, appMergeS: summarize([10], 's'), appSavedS: summarize([12], 's'), cliS: summarize([8], 's'), appVsCli: 1.5, peakJsHeapMB: summarize([3], 'MB'), notes: [] };
    const md = renderReadmeSection({ ...results, app }, 'chart.svg');
    expect(md).toContain('| the app, click to proven (output in Blob parts) | 10 (10–10) | 1.25 | 3 (3–3) |');
    expect(md).toContain('| the app, click to model.safetensors downloaded | 12 (12–12) | 1.5 | – |');
    expect(appTarget(app)).toEqual([expect.objectContaining({ met: true, measured: expect.stringContaining('1.5x (app 12 s vs CLI 8 s') })]);
    expect(appTarget({ ...app, appVsCli: 2.5 })[0]!.met).toBe(false);
    expect(appTarget({ adapter: 'c_attn-r8', runs: 1, skipped: 'the app is not built', notes: [] })[0]).toMatchObject({ met: null, measured: 'not measured: the app is not built' });
    expect(appTarget(null)).toEqual([]);
  });

  it('draws the size panel', () => {
    const svg = renderSvg(results);
    expect(svg).toContain('Size: wall time relative to cp + fsync');
    expect(svg).toContain('relative to cp + fsync (the I/O floor)');
  });
});
