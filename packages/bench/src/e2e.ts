/**
 * End-to-end benchmarks on a generated GPT-2-124M-shaped checkpoint: `lorafuse merge` per device
 * against its peers: `cp` of the checkpoint, `cp` then fsync of the copy (the I/O floor of a durable
 * output), a plain PyTorch + safetensors script doing the naive merge, and what PEFT users run
 * (transformers + PEFT, `merge_and_unload`, `save_pretrained`). Wall time and peak RSS of each
 * process (GNU time), the page cache warm, `sync` before every run, the commands interleaved and
 * their order rotated from run to run.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { SafetensorsHeader } from '@lorafuse/core';
import type { WrittenFixture } from './fixture.js';
import { CP_ARGV, CP_FSYNC_ARGV } from './io-floor.js';
import { outputMismatch, readHeaderOf } from './output-check.js';
import { PEFT_MERGE_SCRIPT, TORCH_NAIVE_MERGE_SCRIPT, type PeftPeer, type TorchPeer } from './python.js';
import { ratio, summarize, type Summary } from './stats.js';
import { failureText, runTimed, type RunSample } from './timed-run.js';

/** One contender of the end-to-end benchmark. */
export interface E2eCommand {
  readonly id: string;
  readonly label: string;
  /** argv, with `{base}`, `{adapter}`, `{out}` substituted. */
  readonly argv: readonly string[];
  /** `copy`: writes `{out}/model.safetensors` into a directory made for it, checked by nobody; `merge`: makes `{out}`, its model.safetensors checked. */
  readonly kind: 'copy' | 'merge';
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
  /** Median wall time of each contender / the `cp + fsync` median (the I/O floor). */
  readonly wallVsFsync: Record<string, number>;
  /** Median wall time of each contender / the PyTorch + safetensors script's median. */
  readonly wallVsTorch: Record<string, number>;
  /** Median wall time of each contender / the PEFT path's median. */
  readonly wallVsPeft: Record<string, number>;
}

/** Ids of the peers the ratios are taken against. */
export const PEER_IDS = { fsync: 'cp-fsync', torch: 'torch', peft: 'peft' } as const;

/** The `lorafuse merge` contender on `device`. */
export function lorafuseCommand(repoRoot: string, device: string, skipped?: string): E2eCommand {
  const cli = join(repoRoot, 'packages', 'cli', 'bin', 'lorafuse.js');
  return { id: `lorafuse-${device}`, label: `lorafuse merge --device ${device}`, argv: [process.execPath, cli, 'merge', '{base}', '{adapter}', '--out', '{out}', '--device', device, '--json'], kind: 'merge', ...(skipped ? { skipped } : {}) };
}

/** The `cp + fsync` contender (the I/O floor). */
export const CP_FSYNC_COMMAND: E2eCommand = { id: PEER_IDS.fsync, label: 'cp + fsync model.safetensors (I/O floor)', argv: CP_FSYNC_ARGV, kind: 'copy' };

/** The contenders: cp, cp + fsync, the PyTorch script, the PEFT path, and lorafuse on each device. */
export function e2eCommands(options: { repoRoot: string; torch: TorchPeer; peft: PeftPeer; workDir: string; devices: readonly string[]; autoSupported: boolean }): E2eCommand[] {
  const commands: E2eCommand[] = [{ id: 'cp', label: 'cp model.safetensors (page cache only)', argv: CP_ARGV, kind: 'copy' }, CP_FSYNC_COMMAND];
  if (options.torch.available) {
    const script = join(options.workDir, 'torch_naive_merge.py');
    writeFileSync(script, TORCH_NAIVE_MERGE_SCRIPT);
    commands.push({ id: PEER_IDS.torch, label: `PyTorch + safetensors script (torch ${options.torch.torch}, load all, addmm_, save_file)`, argv: [options.torch.python, script, '{base}', '{adapter}', '{out}'], kind: 'merge' });
  } else {
    commands.push({ id: PEER_IDS.torch, label: 'PyTorch + safetensors script', argv: [], kind: 'merge', skipped: options.torch.status });
  }
  if (options.peft.available) {
    const script = join(options.workDir, 'peft_merge.py');
    writeFileSync(script, PEFT_MERGE_SCRIPT);
    const p = options.peft;
    commands.push({
      id: PEER_IDS.peft,
      label: `PEFT path (transformers ${p.transformers}, peft ${p.peft}: from_pretrained, PeftModel, merge_and_unload, save_pretrained)`,
      argv: [p.python, script, '{base}', '{adapter}', '{out}'],
      kind: 'merge',
    });
  } else {
    commands.push({ id: PEER_IDS.peft, label: 'PEFT path (from_pretrained, PeftModel, merge_and_unload, save_pretrained)', argv: [], kind: 'merge', skipped: options.peft.status });
  }
  for (const device of options.devices) {
    const skipped = device === 'auto' && !options.autoSupported ? '`lorafuse merge --device auto` is not accepted by the built CLI' : undefined;
    commands.push(lorafuseCommand(options.repoRoot, device, skipped));
  }
  return commands;
}

/** Substitutes `{base}`, `{adapter}` and `{out}` in a contender's argv. */
export function commandArgv(command: E2eCommand, dirs: { base: string; adapter: string; out: string }): string[] {
  return command.argv.map((a) => a.replace('{base}', dirs.base).replace('{adapter}', dirs.adapter).replace('{out}', dirs.out));
}

/** The device a `lorafuse merge --json` report says ran, with its description and reason. */
export function reportedDevice(stdout: string): { device: string; reason?: string } | undefined {
  try {
    const report = JSON.parse(stdout) as { device?: string; deviceReason?: string; deviceDescription?: string };
    if (!report.device) return undefined;
    return { device: `${report.device}${report.deviceDescription ? ` (${report.deviceDescription})` : ''}`, ...(report.deviceReason ? { reason: report.deviceReason } : {}) };
  } catch {
    return undefined;
  }
}

/**
 * Runs one contender once into `out` (emptied first; made for a copy), after a `sync` so that no
 * earlier run's dirty pages are written on its time. Returns the sample, or why it does not count.
 */
export async function runContender(command: E2eCommand, dirs: { base: string; adapter: string; out: string }, workDir: string, expected: SafetensorsHeader): Promise<{ sample: RunSample; failure?: string }> {
  await rm(dirs.out, { recursive: true, force: true });
  if (command.kind === 'copy') await mkdir(dirs.out, { recursive: true });
  spawnSync('sync');
  const sample = await runTimed(commandArgv(command, dirs), workDir);
  if (sample.code !== 0) return { sample, failure: failureText(sample) };
  if (command.kind === 'merge') {
    const mismatch = await outputMismatch(join(dirs.out, 'model.safetensors'), expected);
    if (mismatch) return { sample, failure: mismatch };
  }
  return { sample };
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
  const expected = await readHeaderOf(join(fixture.baseDir, 'model.safetensors'));
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
        const { sample, failure } = await runContender(command, { base: fixture.baseDir, adapter: adapterDir, out }, workDir, expected);
        if (command.id.startsWith('lorafuse') && sample.code === 0) {
          const device = reportedDevice(sample.stdout);
          if (device) devices.set(command.id, device);
        }
        if (failure) {
          failures.set(command.id, failure);
          log(`e2e ${adapterId} ${command.id}: FAILED ${failure}`);
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
    const versus = (peerId: string): Record<string, number> => {
      const peer = figures.find((f) => f.id === peerId)?.wallS;
      const out: Record<string, number> = {};
      if (peer) for (const f of figures) if (f.wallS) out[f.id] = ratio(f.wallS.median, peer.median);
      return out;
    };
    results.push({ adapter: adapterId, runs, figures, wallVsFsync: versus(PEER_IDS.fsync), wallVsTorch: versus(PEER_IDS.torch), wallVsPeft: versus(PEER_IDS.peft) });
  }
  return results;
}
