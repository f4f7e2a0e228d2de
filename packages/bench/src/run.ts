/**
 * The benchmark run: one Node process, one Chromium for the kernel and transfer benchmarks (closed
 * before the end-to-end runs, which start their own `lorafuse` processes), the size benchmark, then
 * the results. Every generated file lives in one temporary directory, removed at the end and on
 * SIGINT, SIGTERM or SIGHUP (the XL checkpoint alone is 6.2 GB).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, platform, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM_WEBGPU_ARGS, startBrowserRunner, type BrowserRunner } from '@lorafuse/runner';
import { benchApp, type AppResult } from './app.js';
import { benchEndToEnd, cliSupportsAuto, e2eCommands, PEER_IDS, type E2eResult } from './e2e.js';
import { BENCH_ADAPTERS, GPT2_XL, writeGpt2Fixture, type WrittenFixture } from './fixture.js';
import { checkCpFsync, type FsyncCheck } from './io-floor.js';
import { benchDawnKernels, type DawnKernelResults } from './dawn-kernels.js';
import { benchCompareKernels, benchKernels, COMPARE_SHAPES, KERNEL_SHAPES, type CompareKernelResult, type KernelResult } from './kernels.js';
import { findPeft, findTorch, type PeftPeer } from './python.js';
import { appTarget, bestTransfers, checkTargets, renderReadmeSection, renderSvg, updateReadme, type BenchResults } from './report.js';
import { summarize } from './stats.js';
import { stopTimedRuns } from './timed-run.js';
import { benchTransfers, type TransferResult } from './transfers.js';
import { benchXl, type XlResult } from './xl.js';
import { benchForward, type ForwardResult } from './forward.js';
import { benchSwap, type SwapResult } from './swap.js';

/** The sections of a benchmark run, in the order they run. */
export const BENCH_SECTIONS = ['kernels', 'swap', 'transfers', 'e2e', 'app', 'forward', 'xl'] as const;
/** One section of a benchmark run. */
export type BenchSection = (typeof BENCH_SECTIONS)[number];

/** What to run. */
export interface BenchOptions {
  /** Fewer repetitions, smaller transfers, the c_attn adapter only (a couple of minutes, plus the xl section). */
  quick: boolean;
  /** Sections to run (default all). */
  only: ReadonlySet<BenchSection>;
  /** End-to-end runs per contender (default 5; quick 3). */
  runs: number;
  /** `lorafuse merge --device` values to run end to end. */
  devices: readonly string[];
  /** Where the JSON and SVG go (default `packages/bench/results`). */
  resultsDir: string;
  /** Layers of the XL checkpoint of the size benchmark (default 48, the real XL; fewer to try it). */
  xlLayers: number;
  /** Rewrite the README's "Benchmarks" section (default: on for full runs into the default directory). */
  updateReadme: boolean;
}

const PACKAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
const REPO_ROOT = join(PACKAGE_DIR, '..', '..');
const PAGE_BUNDLE = join(PACKAGE_DIR, 'dist', 'page', 'bench-page.bundle.js');
const BENCH_BROWSER_ARGS = ['--enable-webgpu-developer-features']; // full-resolution GPU timestamps

const USAGE = `Usage: npm run bench [-- options]   (or: node packages/bench/dist/main.js [options])

  --quick                 rough pass: fewer repetitions, 16 MiB transfers, c_attn adapter only
                          (the xl section keeps its size: see --xl-layers)
  --only <list>           comma-separated sections: kernels, swap, transfers, e2e, app, forward, xl (default: all)
                          (app: the browser merge app on the 124M checkpoint next to --device webgpu)
  --runs <n>              end-to-end runs per contender (default 5, quick 3)
  --devices <list>        lorafuse --device values end to end (default: cpu,webgpu,dawn,auto)
  --xl-layers <n>         layers of the GPT-2-XL-shaped checkpoint of the xl section (default 48:
                          6.2 GB on disk, twice that free needed; fewer to try it at a smaller size)
  --results-dir <dir>     where latest.json and latest.svg go (default packages/bench/results)
  --no-readme             do not rewrite the README's Benchmarks section
Environment: LORAFUSE_BENCH_QUICK=1 is the same as --quick.
`;

/** Parses the command line of `npm run bench`. */
export function parseBenchArgs(argv: readonly string[], env: Record<string, string | undefined> = process.env): BenchOptions {
  const quick = argv.includes('--quick') || env['LORAFUSE_BENCH_QUICK'] === '1';
  const value = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    if (i >= 0) return argv[i + 1];
    const eq = argv.find((a) => a.startsWith(`${name}=`));
    return eq?.slice(name.length + 1);
  };
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const known = new Set(['--quick', '--only', '--runs', '--devices', '--results-dir', '--no-readme', '--xl-layers']);
  for (const a of argv) if (a.startsWith('--') && !known.has(a.split('=')[0]!)) throw new Error(`unknown option ${a}\n${USAGE}`);
  const only = new Set((value('--only') ?? BENCH_SECTIONS.join(',')).split(',').map((s) => s.trim())) as Set<BenchSection>;
  for (const s of only) if (!(BENCH_SECTIONS as readonly string[]).includes(s)) throw new Error(`--only: unknown section ${s}`);
  const resultsDir = value('--results-dir') ?? join(PACKAGE_DIR, 'results');
  const runs = Number(value('--runs') ?? (quick ? 3 : 5));
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer');
  const xlLayers = Number(value('--xl-layers') ?? GPT2_XL.nLayer);
  if (!Number.isInteger(xlLayers) || xlLayers < 1) throw new Error('--xl-layers must be a positive integer');
  return {
    quick,
    only,
    runs,
    devices: (value('--devices') ?? 'cpu,webgpu,dawn,auto').split(',').map((s) => s.trim()).filter(Boolean),
    resultsDir,
    xlLayers,
    // The README shows a full run only: every section, the real XL size, the default directory.
    updateReadme: !argv.includes('--no-readme') && !quick && only.size === BENCH_SECTIONS.length && xlLayers === GPT2_XL.nLayer && value('--results-dir') === undefined,
  };
}

/**
 * Until the returned function is called: on SIGINT, SIGTERM or SIGHUP, stops the timed runs and
 * removes `workDir` (gigabytes of generated checkpoints) before exiting as the signal would.
 */
function onSignalRemove(workDir: string): () => void {
  const numbers: Record<string, number> = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 };
  const handler = (signal: NodeJS.Signals): void => {
    log(`${signal}: stopping the runs and removing ${workDir}`);
    stopTimedRuns();
    rmSync(workDir, { recursive: true, force: true });
    process.exit(128 + (numbers[signal] ?? 0));
  };
  for (const signal of Object.keys(numbers)) process.on(signal, handler);
  return () => {
    for (const signal of Object.keys(numbers)) process.off(signal, handler);
  };
}

function log(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

/** Runs the benchmarks; returns the process exit code. */
export async function runBench(options: BenchOptions): Promise<number> {
  const started = performance.now();
  if (!existsSync(PAGE_BUNDLE)) throw new Error(`${PAGE_BUNDLE} is missing: build first (npm run build)`);
  const workDir = await mkdtemp(join(tmpdir(), 'lorafuse-bench-'));
  const removeOnSignal = onSignalRemove(workDir);
  const torch = findTorch(REPO_ROOT);
  log(`PyTorch peer: ${torch.available ? `torch ${torch.torch} (${torch.source}, ${torch.threads} threads)` : torch.status}`);
  const peft: PeftPeer = options.only.has('e2e') || options.only.has('forward') ? findPeft(REPO_ROOT) : { available: false, status: 'not looked for (no e2e section)' };
  if (options.only.has('e2e') || options.only.has('forward')) log(`PEFT peer: ${peft.available ? `transformers ${peft.transformers}, peft ${peft.peft}, torch ${peft.torch} (${peft.source}, ${peft.threads} threads)` : peft.status}`);
  const notes: string[] = ['Timings come from whatever machine ran the benchmark; on a shared 2-core VM repeat runs differ by up to ~30%, so compare the ratios within one run.'];
  let runner: BrowserRunner | undefined;
  let kernels: KernelResult[] = [];
  let compare: CompareKernelResult[] | string = 'not run';
  let dawnKernels: DawnKernelResults = { status: 'not run' };
  let transfers: TransferResult[] = [];
  let e2e: E2eResult[] = [];
  let app: AppResult | null = null;
  let xl: XlResult | null = null;
  let forward: ForwardResult | null = null;
  let swap: SwapResult | null = null;
  let fsyncCheck: FsyncCheck | null = null;
  let fixture: WrittenFixture | undefined;
  let startupMs: number | undefined;
  let adapterInfo: BrowserRunner['adapterInfo'] | undefined;
  let chromiumVersion: string | undefined;
  try {
    if (options.only.has('kernels') || options.only.has('transfers')) {
      const t0 = performance.now();
      runner = await startBrowserRunner({ pageBundlePath: PAGE_BUNDLE, extraArgs: BENCH_BROWSER_ARGS, timeoutMs: 900_000 });
      startupMs = performance.now() - t0;
      adapterInfo = runner.adapterInfo;
      chromiumVersion = runner.chromiumVersion;
      log(`Chromium ready with a WebGPU device in ${startupMs.toFixed(0)} ms: ${adapterInfo.vendor}/${adapterInfo.architecture} ${adapterInfo.description}${adapterInfo.isFallbackAdapter ? ' [fallback]' : ''}`);
      if (options.only.has('kernels')) {
        kernels = await benchKernels({ runner, torch, shapes: KERNEL_SHAPES, iterations: options.quick ? 3 : 9, workDir, log });
        compare = await benchCompareKernels({ runner, iterations: options.quick ? 3 : 7, log });
      }
      if (options.only.has('transfers')) {
        transfers = await benchTransfers({ runner, bytes: (options.quick ? 16 : 64) * 2 ** 20, iterations: options.quick ? 3 : 5, workDir, log });
      }
      await runner.close();
      runner = undefined;
    }
    if (options.only.has('kernels')) {
      dawnKernels = await benchDawnKernels({ shapes: KERNEL_SHAPES, compareShapes: COMPARE_SHAPES, iterations: options.quick ? 3 : 9, log });
      if ('status' in dawnKernels) log(`kernels on Dawn in Node: ${dawnKernels.status}`);
    }
    if (options.only.has('swap')) {
      swap = await benchSwap({ quick: options.quick, log });
      if ('status' in swap) log(`swap: ${swap.status}`);
    }
    const autoSupported = options.only.has('e2e') || options.only.has('xl') ? cliSupportsAuto(REPO_ROOT) : false;
    if (options.only.has('e2e') || options.only.has('xl')) {
      fsyncCheck = checkCpFsync(workDir);
      log(`cp + fsync: ${fsyncCheck.detail}`);
    }
    // A floor whose fsync was not seen would flatter every ratio against it: leave it out instead.
    const floorSkipped = fsyncCheck?.fsynced === false ? `its fsync was not observed (${fsyncCheck.detail})` : undefined;
    if (options.only.has('e2e') || options.only.has('app')) {
      log('writing the GPT-2-124M-shaped checkpoint and adapters ...');
      fixture = await writeGpt2Fixture(join(workDir, 'fixture'));
    }
    if (options.only.has('e2e') && fixture) {
      if (!autoSupported && options.devices.includes('auto')) notes.push('`lorafuse merge --device auto` is not accepted by the built CLI; auto was not run.');
      const commands = e2eCommands({ repoRoot: REPO_ROOT, torch, peft, workDir, devices: options.devices, autoSupported }).map((c) => (c.id === PEER_IDS.fsync && floorSkipped ? { ...c, skipped: floorSkipped } : c));
      e2e = await benchEndToEnd({ fixture, adapters: options.quick ? ['c_attn-r8'] : BENCH_ADAPTERS.map((a) => a.id), commands, runs: options.runs, workDir, log });
    }
    if (options.only.has('app') && fixture) {
      app = await benchApp({ repoRoot: REPO_ROOT, workDir, fixture, adapterId: 'c_attn-r8', runs: options.quick ? 1 : Math.min(options.runs, 3), log });
      if (app.skipped) log(`app: ${app.skipped}`);
    }
    if (fixture) await rm(join(workDir, 'fixture'), { recursive: true, force: true });
    if (options.only.has('forward')) forward = await benchForward({ workDir, peft, quick: options.quick, log });
    if (options.only.has('xl')) {
      xl = await benchXl({ repoRoot: REPO_ROOT, workDir, layers: options.xlLayers, device: autoSupported ? 'auto' : 'cpu', ...(floorSkipped ? { floorSkipped } : {}), log });
      if (xl.skipped) log(`xl: ${xl.skipped}`);
    }
  } finally {
    removeOnSignal();
    await runner?.close();
    await rm(workDir, { recursive: true, force: true });
  }

  const cAttn = e2e.find((r) => r.adapter === 'c_attn-r8');
  const autoRan = cAttn?.figures.find((f) => f.id === 'lorafuse-auto')?.wallS !== undefined;
  const defaultDevice = autoRan
    ? { id: 'lorafuse-auto', why: 'auto, the default' }
    : { id: 'lorafuse-cpu', why: 'what --device auto picks on a machine whose only WebGPU adapter is SwiftShader (auto was not run)' };
  const adapterText = adapterInfo ? `${[adapterInfo.vendor, adapterInfo.architecture, adapterInfo.description].filter(Boolean).join(' / ')}${adapterInfo.isFallbackAdapter ? ' (software fallback)' : ''}` : 'not started';
  const results: BenchResults = {
    schema: 'lorafuse-bench/1',
    date: new Date().toISOString(),
    quick: options.quick,
    durationS: Number(((performance.now() - started) / 1000).toFixed(1)),
    environment: {
      node: process.versions.node,
      os: `${platform()} ${release()}`,
      cpu: cpus()[0]?.model.trim() ?? 'unknown',
      cores: cpus().length,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      chromium: chromiumVersion ?? null,
      chromiumFlags: [...CHROMIUM_WEBGPU_ARGS, '--use-webgpu-adapter=swiftshader (unless LORAFUSE_WEBGPU_ADAPTER=auto)', ...BENCH_BROWSER_ARGS],
      adapter: adapterText,
      adapterInfo: adapterInfo ? { vendor: adapterInfo.vendor, architecture: adapterInfo.architecture, description: adapterInfo.description, isFallbackAdapter: adapterInfo.isFallbackAdapter, features: adapterInfo.deviceFeatures } : null,
      torch: torch.available ? `${torch.torch} (${torch.threads} threads, ${torch.source})` : torch.status,
      peft: peft.available ? `peft ${peft.peft}, transformers ${peft.transformers}, torch ${peft.torch} (${peft.threads} threads, ${peft.source})` : peft.status,
      fsyncCheck: fsyncCheck ? fsyncCheck.detail : 'not checked (no e2e or xl section ran)',
      gitCommit: gitCommit(),
      pageCache: 'warm (inputs stay cached; `sync` before every end-to-end run)',
    },
    checkpoint: fixture ? { shape: 'GPT-2-124M (GPT2LMHeadModel keys, tied lm_head, no attention-mask buffers)', dtype: 'F32', bytes: fixture.modelBytes, parameters: fixture.parameters, tensors: fixture.tensors } : null,
    adapters: BENCH_ADAPTERS.map((a) => ({ id: a.id, description: a.description, rank: a.rank, alpha: a.alpha, modules: a.leaves.length * 12, targetLeaves: a.leaves })),
    startup: startupMs !== undefined ? { browserToDeviceReadyMs: summarize([startupMs], 'ms') } : null,
    kernels,
    dawnKernels,
    compare,
    transfers,
    endToEnd: e2e,
    app,
    xl,
    forward,
    swap,
    targets: [...checkTargets(kernels, compare, transfers, e2e, defaultDevice, xl, forward, swap), ...appTarget(app)],
    notes,
  };
  const { up, down } = bestTransfers(transfers);
  if (up && down) notes.push(`Fastest channels: node→page ${down.channel} (${down.mbps!.median} MB/s), page→node ${up.channel} (${up.mbps!.median} MB/s).`);
  const nodeToNode = transfers.find((t) => t.direction === 'node→node' && t.mbps);
  if (up && nodeToNode && nodeToNode.mbps!.median > up.mbps!.median) {
    notes.push(
      `Why page→node stays below the loopback: Node to Node over the same 127.0.0.1 moved ${nodeToNode.mbps!.median} MB/s, ${(nodeToNode.mbps!.median / up.mbps!.median).toFixed(1)}x Chromium's best upload, so the limit is Chromium's upload path (renderer, network service and their copies, sharing the cores with SwiftShader), not the socket. ` +
        'So the merge sends only ΔW that way (W never enters the page), and --device dawn sends nothing at all.',
    );
  }

  await mkdir(options.resultsDir, { recursive: true });
  const base = options.quick ? 'quick' : 'latest';
  const jsonPath = join(options.resultsDir, `${base}.json`);
  const svgPath = join(options.resultsDir, `${base}.svg`);
  await writeFile(jsonPath, `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(svgPath, renderSvg(results));
  log(`wrote ${jsonPath} and ${svgPath}`);
  if (options.updateReadme) {
    const readmePath = join(REPO_ROOT, 'README.md');
    const readme = await readFile(readmePath, 'utf8');
    await writeFile(readmePath, updateReadme(readme, renderReadmeSection(results, relative(REPO_ROOT, svgPath))));
    log(`updated the Benchmarks section of ${readmePath}`);
  }
  for (const t of results.targets) log(`target: ${t.target}: ${t.measured} → ${t.met === null ? 'n/a' : t.met ? 'met' : 'NOT met'}`);
  log(`done in ${results.durationS} s`);
  return 0;
}
