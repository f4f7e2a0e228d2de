/**
 * The lock of an output directory: a small file beside it (the directory itself may not exist yet)
 * naming the process that writes it. Two runs into one directory would otherwise both succeed while
 * one result is lost. A lock whose process is gone is stale and is taken over.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import { link, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { EnvironmentError, UsageError } from '@lorafuse/core';

/** Who holds a lock, as its file says. */
export interface LockOwner {
  readonly pid: number;
  readonly host: string;
  /** Tells this holder from a later one with the same pid. */
  readonly token: string;
  /** The process's start time (Linux clock ticks since boot), so that a reused pid is not taken for the holder. */
  readonly started?: string;
}

/** Whether the holder of a lock still runs: on another host lorafuse cannot tell. */
export type Liveness = 'running' | 'gone' | 'unknown';

/** A lock file younger than this may still be being written by its creator. */
const FRESH_MS = 10_000;

function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The fields after the command name (which may hold spaces) start with the state, field 3; starttime is field 22.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Tokens of the locks this process holds (a lock naming this pid and another token is a reused pid's). */
const heldHere = new Set<string>();

/** Whether the process a lock names is still running. */
export function livenessOf(owner: LockOwner): Liveness {
  if (owner.host !== hostname()) return 'unknown';
  if (owner.pid === process.pid) return heldHere.has(owner.token) ? 'running' : 'gone';
  try {
    process.kill(owner.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return 'gone';
  }
  const now = startTimeOf(owner.pid);
  if (owner.started !== undefined && now !== undefined && now !== owner.started) return 'gone';
  return 'running';
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockOwner>;
    if (typeof v.pid === 'number' && typeof v.host === 'string' && typeof v.token === 'string') return v as LockOwner;
  } catch {
    /* not a lock lorafuse wrote completely */
  }
  return undefined;
}

type ReadLock = { state: 'absent' } | { state: 'owned'; owner: LockOwner } | { state: 'unreadable'; ageMs: number };

async function readLock(path: string): Promise<ReadLock> {
  try {
    const [text, s] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    const owner = parseOwner(text);
    return owner ? { state: 'owned', owner } : { state: 'unreadable', ageMs: Date.now() - s.mtimeMs };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'absent' };
    throw e;
  }
}

/**
 * Whether the run that took the lock at `path` is gone: there is no lock, or it names a process of
 * this host that no longer runs. A lock that cannot be read, or that a run on another host holds, is
 * not taken for gone.
 */
export async function lockHolderGone(path: string): Promise<boolean> {
  const held = await readLock(path).catch(() => undefined);
  if (held === undefined || held.state === 'unreadable') return false;
  return held.state === 'absent' || livenessOf(held.owner) === 'gone';
}

/** The error for a directory another run is writing. */
function inUse(outDir: string, lockPath: string, owner: LockOwner | undefined, liveness: Liveness): UsageError {
  const who = owner ? `pid ${owner.pid}${liveness === 'unknown' ? ` on host ${owner.host}` : ''}` : 'a process that is still writing its lock';
  return new UsageError('OUT_DIR_IN_USE', `output directory ${outDir} is in use by another lorafuse (${who})`, {
    subject: outDir,
    hint: liveness === 'unknown'
      ? `Wait for it to finish, or choose another --out. If no lorafuse runs on ${owner?.host ?? 'that host'}, remove the lock: rm ${JSON.stringify(lockPath)}`
      : 'Wait for it to finish, or choose another --out.',
  });
}

/** A held lock. */
export class OutputLock {
  private released = false;

  private constructor(readonly path: string, readonly owner: LockOwner) {}

  /**
   * Takes the lock at `path` for the output directory `outDir`, taking over a stale one.
   *
   * @returns the lock, and the holder it replaced when that one was stale.
   * @throws UsageError `OUT_DIR_IN_USE` when another run holds it; `OUT_LOCK_UNREADABLE` for a lock file lorafuse cannot read.
   */
  static async acquire(path: string, outDir: string): Promise<{ lock: OutputLock; tookOverFrom?: LockOwner }> {
    const owner: LockOwner = { pid: process.pid, host: hostname(), token: randomBytes(8).toString('hex'), started: startTimeOf(process.pid) };
    let tookOverFrom: LockOwner | undefined;
    for (let attempt = 0; attempt < 8; attempt++) {
      if (await createExclusive(path, `${JSON.stringify(owner)}\n`)) {
        heldHere.add(owner.token);
        return { lock: new OutputLock(path, owner), ...(tookOverFrom ? { tookOverFrom } : {}) };
      }
      const held = await readLock(path);
      if (held.state === 'absent') continue;
      if (held.state === 'unreadable') {
        if (held.ageMs < FRESH_MS) throw inUse(outDir, path, undefined, 'running');
        throw new UsageError('OUT_LOCK_UNREADABLE', `output directory ${outDir} has a lock file lorafuse cannot read: ${path}`, {
          subject: path,
          hint: `If no lorafuse is writing ${outDir}, remove it: rm ${JSON.stringify(path)}`,
        });
      }
      const liveness = livenessOf(held.owner);
      if (liveness !== 'gone') throw inUse(outDir, path, held.owner, liveness);
      // Stale. Move it aside rather than unlinking it, so that of two runs taking it over at once only
      // one removes it, and the other can tell it caught the winner's fresh lock and give it back.
      const aside = `${path}.stale-${owner.token}`;
      try {
        await rename(path, aside);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      const caught = await readLock(aside);
      if (caught.state === 'owned' && caught.owner.token === held.owner.token) {
        await unlink(aside);
        tookOverFrom = held.owner;
        continue;
      }
      await link(aside, path).catch(() => undefined);
      await unlink(aside).catch(() => undefined);
    }
    throw new EnvironmentError('OUT_LOCK_CONTENDED', `could not take the lock ${path}: other runs keep taking it`, { subject: path, hint: 'Run one merge into this directory at a time.' });
  }

  /** Whether the lock file is still this run's (nobody removed or replaced it). */
  async stillHeld(): Promise<boolean> {
    const now = await readLock(this.path).catch(() => ({ state: 'absent' }) as const);
    return now.state === 'owned' && now.owner.token === this.owner.token;
  }

  /** Removes the lock if it is still this run's. Never throws. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    heldHere.delete(this.owner.token);
    if (await this.stillHeld()) await unlink(this.path).catch(() => undefined);
  }

  /** {@link release} for the last moments of a process: synchronous. */
  releaseSync(): void {
    if (this.released) return;
    this.released = true;
    heldHere.delete(this.owner.token);
    try {
      if (parseOwner(readFileSync(this.path, 'utf8'))?.token === this.owner.token) unlinkSync(this.path);
    } catch {
      /* gone already */
    }
  }
}

/** Creates `path` with `text` unless it exists; false when it does. */
async function createExclusive(path: string, text: string): Promise<boolean> {
  let handle;
  try {
    handle = await open(path, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  try {
    await handle.writeFile(text);
    await handle.sync();
  } catch (e) {
    await handle.close().catch(() => undefined);
    await unlink(path).catch(() => undefined);
    throw e;
  }
  await handle.close();
  return true;
}
