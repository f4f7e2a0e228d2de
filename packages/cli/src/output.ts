/**
 * Where output goes: `--json` prints one JSON document on stdout; human text goes to stdout; logs and
 * progress go to stderr, and progress bars appear only when stderr is a terminal. Whatever is written
 * passes through `terminal-text.ts` first (values from input files may hold escape sequences).
 */
import { terminalSafe } from './terminal-text.js';

export interface Io {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
}

export const processIo: Io = { stdout: process.stdout, stderr: process.stderr };

const guarded = new WeakSet<object>();

/**
 * A reader that went away (`lorafuse inspect … | head -1`) is no failure of the command: writes to
 * its closed pipe (EPIPE) are dropped, and the command finishes with its own exit code. Any other
 * stream error stays fatal.
 */
export function ignoreClosedPipes(io: Io): void {
  for (const stream of [io.stdout, io.stderr]) {
    if (guarded.has(stream)) continue;
    guarded.add(stream);
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
    });
  }
}

/** A progress bar on a TTY, silent otherwise. */
export class Progress {
  private readonly enabled: boolean;
  private lastDraw = 0;
  private drawn = false;

  constructor(private readonly io: Io, private readonly label: string, private readonly total: number, quiet = false) {
    this.enabled = !quiet && io.stderr.isTTY === true && total > 0;
  }

  update(done: number, detail = ''): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.lastDraw < 80 && done < this.total) return;
    this.lastDraw = now;
    const width = 28;
    const frac = Math.min(1, done / this.total);
    const filled = Math.round(frac * width);
    const cols = this.io.stderr.columns ?? 100;
    const line = terminalSafe(`${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ${detail}`);
    this.io.stderr.write(`\r${line.slice(0, cols - 1).padEnd(Math.min(cols - 1, 100))}`);
    this.drawn = true;
  }

  done(): void {
    if (this.enabled && this.drawn) this.io.stderr.write('\r\x1b[K');
  }
}

/** Formats a byte count for people. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}
