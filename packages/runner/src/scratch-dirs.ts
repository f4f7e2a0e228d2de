/**
 * Scratch directories (Chromium's profile and TMPDIR) that earlier runs could not remove: a run that
 * was SIGKILLed never gets to its cleanup, and its Chromium, which exits when its DevTools pipe
 * closes, leaves ~2 MB behind in TMPDIR each time. A later runner removes those that are older than
 * {@link STALE_AFTER_MS}, belong to this user, and that no process names on its command line (a
 * live run's Chromium has the profile in its arguments).
 */
import { execFile } from 'node:child_process';
import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** The prefix of a runner's scratch directory in TMPDIR (mkdtemp adds six characters). */
export const SCRATCH_PREFIX = 'lorafuse-chromium-';

/** A directory younger than this may belong to a run still starting its browser. */
export const STALE_AFTER_MS = 10 * 60_000;

const SCRATCH_NAME = new RegExp(`^${SCRATCH_PREFIX}[A-Za-z0-9]{6}$`);

/** A pgrep/pkill pattern (a regular expression) that matches `path`'s own characters literally. */
export function literalPattern(path: string): string {
  return path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Whether a running process has `text` in its command line (pgrep exits 1 when none does). */
function someProcessNames(text: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('pgrep', ['-f', literalPattern(text)], { timeout: 2_000 }, (err) => {
      // Exit 1 is "no process"; any other failure (no pgrep) counts as in use: never remove blindly.
      resolve(err === null || (err as { code?: unknown }).code !== 1);
    });
  });
}

/** Removes the stale scratch directories in `parent`; returns their paths. Never throws. */
export async function removeStaleScratchDirs(parent: string, now = Date.now()): Promise<string[]> {
  if (process.platform === 'win32') return [];
  const removed: string[] = [];
  const names = await readdir(parent).catch(() => [] as string[]);
  for (const name of names.filter((n) => SCRATCH_NAME.test(n))) {
    const dir = join(parent, name);
    const st = await lstat(dir).catch(() => undefined);
    if (st === undefined || !st.isDirectory() || st.uid !== process.getuid?.() || now - st.mtimeMs < STALE_AFTER_MS) continue;
    if (await someProcessNames(dir)) continue;
    await rm(dir, { recursive: true, force: true, maxRetries: 2 }).then(() => removed.push(dir), () => undefined);
  }
  return removed;
}
