/**
 * End-to-end benchmarks on a generated GPT-2-124M-shaped checkpoint: `lorafuse merge` per device
 * vs `cp` of the checkpoint (the I/O floor) vs a PyTorch script doing the naive merge. Wall time and
 * peak RSS of each process (GNU time), the page cache warm, `sync` before every run, the commands
 * interleaved and their order rotated from run to run.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { WrittenFixture } from './fixture.js';
import { TORCH_NAIVE_MERGE_SCRIPT, type TorchPeer } from './python.js';
import { ratio, summarize, type Summary } from './stats.js';

/** One contender of the end-to-end benchmark. */
export interface E2eCommand {
  readonly id: string;
  readonly label: string;
  /** argv, with `{base}`, `{adapter}`, `{out}` substituted. */
  readonly argv: readonly string[];
  /** The reason it is not run, if it is not. */
  readonly skipped?: string;
}

/** Figures of one contender on one adapter. */
export interface E2eFigures {
  readonly id: string;
  readonly label: string;
  readonly wallS?: Summary;
  readonly peakRssMB?: Summary;
  readonly status: 'ok' | string;
  /** For lorafuse: the device the report says ran. */
  readonly device?: string;
  readonly deviceReason?: string;
}

/** All contenders on one adapter. */
export interface E2eResult {
  readonly adapter: string;
  readonly runs: number;
  readonly figures: E2eFigures[];
  /** Median wall time of each contender / the PyTorch peer's median. */
  readonly wallVsTorch: Record<string, number>;
}

const TIME = '/usr/bin/time';

interface RunSample {
  wallS: number;
  rssMB: number | null;
  code: number;
  stdout: string;
  stderr: string;
}

function runTimed(argv: readonly string[], cwd: string): Promise<RunSample> {
  const useTime = existsSync(TIME);
  const full = useTime ? [TIME, '-f', 'LORAFUSE_BENCH_TIME %e %M', ...argv] : [...argv];
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(full[0]!, full.slice(1), { cwd, stdio: ['ignore', 'pipe', 'pipe'], });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const wall = (performance.now() - t0) / 1000;
      const m = /LORAFUSE_BENCH_TIME ([\d.]+) (\d+)/.exec(stderr);
      resolve({ wallS: m ? Number(m[1]) : wall, rssMB: m ? Number(m[2]) / 1024 : null, code: code ?? -1, stdout, stderr: stderr.replace(/.*LORAFUSE_BENCH_TIME.*\n?/, '') });
    });
  });
}

/** The contenders: cp, the PyTorch peer, and lorafuse on each device. */
export function e2eCommands(options: { repoRoot: string; torch: TorchPeer; workDir: string; devices: readonly string[]; autoSupported: boolean }): E2eCommand[] {
  const cli = join(options.repoRoot, 'packages', 'cli', 'bin', 'lorafuse.js');
  const commands: E2eCommand[] = [{ id: 'cp', label: 'cp model.safetensors (I/O floor)', argv: ['cp', '{base}/model.safetensors', '{out}/model.safetensors'] }];
  if (options.torch.available) {
    const script = join(options.workDir, 'torch_naive_merge.py');
    writeFileSync(script, TORCH_NAIVE_MERGE_SCRIPT);
    commands.push({ id: 'torch', label: `PyTorch naive merge (torch ${options.torch.torch}, load all, addmm_, save)`, argv: [options.torch.python, script, '{base}', '{adapter}', '{out}'] });
  } else {
    commands.push({ id: 'torch', label: 'PyTorch naive merge', argv: [], skipped: options.torch.status });
  }
  for (const device of options.devices) {
    const skipped = device === 'auto' && !options.autoSupported ? '`lorafuse merge --device auto` is not wired into merge.ts yet' : undefined;
    commands.push({ id: `lorafuse-${device}`, label: `lorafuse merge --device ${device}`, argv: [process.execPath, cli, 'merge', '{base}', '{adapter}', '--out', '{out}', '--device', device, '--json'], ...(skipped ? { skipped } : {}) });
  }
  return commands;
}

/** Whether the built CLI accepts `--device auto` (its help mentions it). */
export function cliSupportsAuto(repoRoot: string): boolean {
  const r = spawnSync(process.execPath, [join(repoRoot, 'packages', 'cli', 'bin', 'lorafuse.js'), 'merge', '--help'], { encoding: 'utf8' });
  return /--device[^\n]*\bauto\b/.test(r.stdout);
}

/** Runs every contender `runs` times on each adapter of `fixture`. */
export async function benchEndToEnd(options: {
  fixture: WrittenFixture;
  adapters: readonly string[];
  commands: readonly E2eCommand[];
  runs: number;
  workDir: string;
  log: (line: string) => void;
}): Promise<E2eResult[]> {
  const { fixture, commands, runs, workDir, log } = options;
  const results: E2eResult[] = [];
  const active = commands.filter((c) => !c.skipped);
  for (const adapterId of options.adapters) {
    const adapterDir = fixture.adapterDirs[adapterId]!;
    const samples = new Map<string, RunSample[]>(active.map((c) => [c.id, []]));
    const failures = new Map<string, string>();
    const devices = new Map<string, { device: string; reason?: string }>();
    for (let run = 0; run < runs; run++) {
      // Rotate the order so that no contender always runs right after the same one.
      const order = active.map((_, i) => active[(i + run) % active.length]!);
      for (const command of order) {
        if (failures.has(command.id)) continue;
        const out = join(workDir, `out-${command.id}`);
        await rm(out, { recursive: true, force: true });
        if (command.id === 'cp') await mkdir(out, { recursive: true });
        spawnSync('sync');
        const argv = command.argv.map((a) => a.replace('{base}', fixture.baseDir).replace('{adapter}', adapterDir).replace('{out}', out));
        const sample = await runTimed(argv, workDir);
        if (sample.code !== 0) {
          failures.set(command.id, `exit ${sample.code}: ${(sample.stderr || sample.stdout).trim().split('\n').slice(-3).join(' | ').slice(0, 400)}`);
          log(`e2e ${adapterId} ${command.id}: FAILED ${failures.get(command.id)}`);
          continue;
        }
        if (command.id.startsWith('lorafuse')) {
          try {
            const report = JSON.parse(sample.stdout) as { device?: string; deviceReason?: string; deviceDescription?: string };
            if (report.device) devices.set(command.id, { device: `${report.device}${report.deviceDescription ? ` (${report.deviceDescription})` : ''}`, ...(report.deviceReason ? { reason: report.deviceReason } : {}) });
          } catch {
            // the figures stand without the report
          }
        }
        if (command.id !== 'cp' && !existsSync(join(out, 'model.safetensors'))) {
          failures.set(command.id, 'no model.safetensors written');
          continue;
        }
        if (command.id !== 'cp' && (await stat(join(out, 'model.safetensors'))).size !== fixture.modelBytes) {
          failures.set(command.id, 'model.safetensors has the wrong size');
          continue;
        }
        samples.get(command.id)!.push(sample);
        log(`e2e ${adapterId} run ${run + 1}/${runs} ${command.id}: ${sample.wallS.toFixed(2)} s, peak RSS ${sample.rssMB?.toFixed(0) ?? '?'} MB`);
      }
    }
    for (const c of active) await rm(join(workDir, `out-${c.id}`), { recursive: true, force: true });
    const figures: E2eFigures[] = commands.map((c) => {
      if (c.skipped) return { id: c.id, label: c.label, status: `not run: ${c.skipped}` };
      const s = samples.get(c.id)!;
      const failed = failures.get(c.id);
      if (s.length === 0) return { id: c.id, label: c.label, status: `failed: ${failed ?? 'no runs'}` };
      const rss = s.map((x) => x.rssMB).filter((x): x is number => x !== null);
      const dev = devices.get(c.id);
      return {
        id: c.id,
        label: c.label,
        wallS: summarize(s.map((x) => x.wallS), 's'),
        ...(rss.length > 0 ? { peakRssMB: summarize(rss, 'MB') } : {}),
        status: failed ? `partly failed: ${failed}` : 'ok',
        ...(dev ? { device: dev.device, ...(dev.reason ? { deviceReason: dev.reason } : {}) } : {}),
      };
    });
    const torch = figures.find((f) => f.id === 'torch')?.wallS;
    const wallVsTorch: Record<string, number> = {};
    if (torch) for (const f of figures) if (f.wallS) wallVsTorch[f.id] = ratio(f.wallS.median, torch.median);
    results.push({ adapter: adapterId, runs, figures, wallVsTorch });
  }
  return results;
}
