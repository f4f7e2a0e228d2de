/**
 * One timed process of the end-to-end benchmarks: wall time and peak RSS as GNU time reports them
 * (its own clock when it is installed, Node's otherwise), and the processes still running, so that an
 * interrupted benchmark can stop them before it removes their directories.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

/** What one timed run gave. */
export interface RunSample {
  readonly wallS: number;
  /** Peak RSS in MB (GNU time's `%M`: the largest of the process and the children it waited for); null without GNU time. */
  readonly rssMB: number | null;
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const TIME = '/usr/bin/time';
const running = new Set<ChildProcess>();

/** Runs `argv` in `cwd` under GNU time; resolves when it exits, whatever its status. */
export function runTimed(argv: readonly string[], cwd: string, env?: NodeJS.ProcessEnv): Promise<RunSample> {
  const useTime = existsSync(TIME);
  const full = useTime ? [TIME, '-f', 'LORAFUSE_BENCH_TIME %e %M', ...argv] : [...argv];
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    // Its own process group, so that stopTimedRuns reaches the command and not only GNU time (which
    // ignores SIGINT and, killed, would leave the command running).
    const child = spawn(full[0]!, full.slice(1), { cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...(env ? { env } : {}) });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', (e) => {
      running.delete(child);
      reject(e);
    });
    child.on('close', (code) => {
      running.delete(child);
      const wall = (performance.now() - t0) / 1000;
      const m = /LORAFUSE_BENCH_TIME ([\d.]+) (\d+)/.exec(stderr);
      resolve({ wallS: m ? Number(m[1]) : wall, rssMB: m ? Number(m[2]) / 1024 : null, code: code ?? -1, stdout, stderr: stderr.replace(/.*LORAFUSE_BENCH_TIME.*\n?/, '') });
    });
  });
}

/** Sends SIGTERM to the process group of every timed run still going. */
export function stopTimedRuns(): void {
  for (const child of running) {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}

/** The last lines of a failed run's output, for a one-line status. */
export function failureText(sample: RunSample): string {
  return `exit ${sample.code}: ${(sample.stderr || sample.stdout).trim().split('\n').slice(-3).join(' | ').slice(0, 400)}`;
}
