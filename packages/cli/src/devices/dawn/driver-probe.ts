/**
 * The driver probe: tries Vulkan driver settings for Dawn in a child process (probe-child.ts), so
 * that what native code prints while it starts (loader and layer errors, Dawn's warnings about
 * adapters it rejects) is captured instead of reaching lorafuse's stderr, and a driver that
 * crashes or hangs costs a child process, not the merge. Node has no way to redirect this
 * process's own file descriptor 2 around a native call.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ANSWER_PREFIX, ATTEMPT_DONE, type DriverOverlay, type ProbeAnswer } from './probe-protocol.js';
import type { Env } from './vulkan-drivers.js';

/** One attempt's outcome and what native code printed during it. */
export type ProbeAttempt = ProbeAnswer & { readonly nativeOutput: string };

/** Tries driver overlays one after another; `close` ends the child process. */
export interface DriverProber {
  attempt(overlay: DriverOverlay): Promise<ProbeAttempt>;
  close(): void;
}

/** Options of {@link startDriverProbe}. */
export interface DriverProbeOptions {
  /** The options Dawn is created with, as the real device will be. */
  readonly dawnOptions: readonly string[];
  /** How long one attempt may take (default 30 s: a driver that hangs is a failed attempt). */
  readonly timeoutMs?: number;
  /** The child's script (default: probe-child.js beside this module, or in dist/ when run from src/). */
  readonly script?: string;
}

/** probe-child.js beside this module, or the built one when this module runs from src/ (tests). */
function probeChildScript(): string {
  const candidates = [new URL('./probe-child.js', import.meta.url), new URL('../../../dist/devices/dawn/probe-child.js', import.meta.url)].map((u) => fileURLToPath(u));
  return candidates.find((p) => existsSync(p)) ?? candidates[0]!;
}

interface Running {
  readonly child: ChildProcessWithoutNullStreams;
  stdout: string;
  stderr: string;
  /** How the child ended, once it has. */
  ended?: string;
  onChange(): void;
}

/**
 * Starts the probe for the environment `env` (the child's whole environment; each attempt's
 * overlay is applied on top of it). The child is spawned on the first attempt, and again after one
 * that killed it.
 */
export function startDriverProbe(env: Env, options: DriverProbeOptions): DriverProber {
  const script = options.script ?? probeChildScript();
  const timeoutMs = options.timeoutMs ?? 30_000;
  let running: Running | undefined;

  const spawnChild = (): Running => {
    const child = spawn(process.execPath, [script], { env: { ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    const r: Running = { child, stdout: '', stderr: '', onChange: () => {} };
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      r.stdout += d;
      r.onChange();
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      r.stderr += d;
      r.onChange();
    });
    // A child that died mid-attempt makes writes to its stdin fail; its end is reported instead.
    child.stdin.on('error', () => {});
    child.on('error', (e) => {
      r.ended ??= `could not be started (${e.message})`;
      r.onChange();
    });
    child.on('close', (code, signal) => {
      r.ended ??= signal ? `was killed by ${signal}` : `exited with code ${code}`;
      r.onChange();
    });
    return r;
  };

  return {
    attempt(overlay) {
      running ??= spawnChild();
      const r = running;
      r.child.stdin.write(`${JSON.stringify({ overlay, dawnOptions: options.dawnOptions })}\n`);
      return new Promise<ProbeAttempt>((resolve) => {
        const finish = (a: ProbeAttempt) => {
          clearTimeout(timer);
          r.onChange = () => {};
          resolve(a);
        };
        const timer = setTimeout(() => {
          if (running === r) running = undefined;
          r.child.kill('SIGKILL');
          finish({ failure: `the driver probe did not answer within ${timeoutMs / 1000} s`, nativeOutput: r.stderr });
        }, timeoutMs);
        r.onChange = () => {
          const done = r.stderr.indexOf(ATTEMPT_DONE);
          const at = r.stdout.indexOf(ANSWER_PREFIX);
          const end = at < 0 ? -1 : r.stdout.indexOf('\n', at);
          if (done >= 0 && end >= 0) {
            const answer = JSON.parse(r.stdout.slice(at + ANSWER_PREFIX.length, end)) as ProbeAnswer;
            // Anything else on stdout was printed by native code: it counts as its output too.
            const nativeOutput = r.stderr.slice(0, done) + r.stdout.slice(0, at);
            r.stdout = r.stdout.slice(end + 1);
            r.stderr = r.stderr.slice(done + ATTEMPT_DONE.length);
            finish({ ...answer, nativeOutput });
          } else if (r.ended !== undefined) {
            if (running === r) running = undefined;
            finish({ failure: `the driver probe ${r.ended} while Dawn started these drivers`, nativeOutput: r.stderr + r.stdout });
          }
        };
        r.onChange();
      });
    },
    close() {
      if (running === undefined) return;
      running.child.stdin.end();
      running.child.kill();
      running = undefined;
    },
  };
}

/**
 * What native code printed, one message per line: continuation lines (Dawn's " - While ..." and
 * "at ..." lines) dropped, the severity prefix removed, control characters replaced, duplicates
 * and everything past `max` messages left out.
 */
export function nativeMessages(output: string, max = 6): string[] {
  const messages = new Set<string>();
  for (const raw of output.split('\n')) {
    if (raw.trim() === '' || /^\s/.test(raw)) continue;
    const line = raw.replace(/^(warning|error|info):\s*/i, '').replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, '?').trim();
    if (line) messages.add(line.length > 300 ? `${line.slice(0, 300)}…` : line);
  }
  return [...messages].slice(0, max);
}
