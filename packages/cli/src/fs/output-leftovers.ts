/**
 * What lorafuse keeps beside an output directory while it writes it (a lock, a staging directory,
 * the earlier output set aside during the swap), under names no other tool uses; which files in an
 * output directory lorafuse could have written; and how a later run clears what a run killed
 * outright (SIGKILL, power loss) left behind.
 */
import { lstatSync } from 'node:fs';
import { lstat, readdir, rename, rm, rmdir, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { lockHolderGone } from './output-lock.js';

/** The paths beside output directory `outDir` that one run uses. */
export interface OutputSiblings {
  readonly parent: string;
  readonly name: string;
  readonly lock: string;
  readonly staging: string;
  readonly replaced: string;
}

/** Names the siblings of `outDir` for the run tagged `tag`. */
export function siblingsOf(outDir: string, tag: string): OutputSiblings {
  const parent = dirname(outDir);
  const name = basename(outDir);
  return {
    parent,
    name,
    lock: join(parent, `.${name}.lorafuse-lock`),
    staging: join(parent, `.${name}.lorafuse-staging-${tag}`),
    replaced: join(parent, `.${name}.lorafuse-replaced-${tag}`),
  };
}

const SHARD = /^model-\d+-of-\d+\.safetensors$/;
/** The temporary names earlier lorafuse versions wrote inside the output directory itself. */
const OLD_TEMP = /^\..+\.lorafuse-[0-9a-f]{12}\.tmp$/;

/** Whether `name` is one of the weight files lorafuse writes: model.safetensors, a shard, or their index. */
export function isWeightFileName(name: string): boolean {
  return name === 'model.safetensors' || name === 'model.safetensors.index.json' || SHARD.test(name);
}

/**
 * Whether lorafuse could have written a file called `name` into an output directory: its config and
 * weights (a single file, shards or their index), or a file the new output also holds (the base's
 * tokenizer and other files). `--overwrite` replaces only such files.
 */
export function couldHaveWritten(name: string, outputNames: ReadonlySet<string>): boolean {
  return outputNames.has(name) || name === 'config.json' || isWeightFileName(name) || OLD_TEMP.test(name);
}

/** The entries of `dir`, and those lorafuse never writes there (other names, and anything not a regular file). */
export async function classifyEntries(dir: string, outputNames: ReadonlySet<string>): Promise<{ all: string[]; foreign: string[] }> {
  const entries = await readdir(dir, { withFileTypes: true });
  const all = entries.map((e) => e.name).sort();
  const foreign = entries.filter((e) => !(e.isFile() && couldHaveWritten(e.name, outputNames))).map((e) => `${e.name}${e.isDirectory() ? '/' : ''}`).sort();
  return { all, foreign };
}

/**
 * Removes from `dir` (an earlier output set aside) the files lorafuse could have written, then `dir`
 * itself if that empties it. Returns what it kept: files that are not lorafuse's are never deleted.
 */
export async function removeSetAside(dir: string, outputNames: ReadonlySet<string>): Promise<string[]> {
  const { all, foreign } = await classifyEntries(dir, outputNames);
  const keep = new Set(foreign.map((f) => f.replace(/\/$/, '')));
  for (const name of all) if (!keep.has(name)) await unlink(join(dir, name));
  if (keep.size === 0) await rmdir(dir);
  return foreign;
}

/** What {@link clearLeftovers} did. */
export interface ClearedLeftovers {
  /** Paths removed (staging directories, emptied set-aside outputs, stale lock copies). */
  readonly removed: string[];
  /** The set-aside earlier output moved back into place, when the run died between the two renames of its swap. */
  readonly restored?: string;
  /** Set-aside outputs kept because they hold files lorafuse did not write: path and those names. */
  readonly kept: Array<{ path: string; foreign: string[] }>;
}

/**
 * Clears what dead runs left beside `outDir`. Only call it holding the lock: every live run holds
 * the lock for as long as its staging directory exists, so whatever is there belongs to none.
 */
export async function clearLeftovers(outDir: string, outputNames: ReadonlySet<string>): Promise<ClearedLeftovers> {
  const { parent, name } = siblingsOf(outDir, '');
  const prefix = `.${name}.lorafuse-`;
  const lockName = `${prefix}lock`;
  let names: string[];
  try {
    names = (await readdir(parent)).filter((n) => n.startsWith(prefix) && n !== lockName);
  } catch {
    return { removed: [], kept: [] };
  }
  const removed: string[] = [];
  const kept: ClearedLeftovers['kept'] = [];
  let restored: string | undefined;
  const replaced = names.filter((n) => n.startsWith(`${prefix}replaced-`)).map((n) => join(parent, n));
  if (replaced.length > 0 && !existsNoFollow(outDir)) {
    // The newest set-aside output is the one the interrupted swap took away.
    const stamped = await Promise.all(replaced.map(async (p) => ({ p, t: (await lstat(p)).mtimeMs })));
    stamped.sort((a, b) => b.t - a.t);
    restored = stamped[0]!.p;
    await rename(restored, outDir);
  }
  for (const n of names) {
    const path = join(parent, n);
    if (path === restored) continue;
    if (n.startsWith(`${prefix}staging-`)) {
      await rm(path, { recursive: true, force: true });
      removed.push(path);
    } else if (n.startsWith(`${prefix}replaced-`)) {
      const foreign = await removeSetAside(path, outputNames);
      if (foreign.length > 0) kept.push({ path, foreign });
      else removed.push(path);
    } else if (n.startsWith(`${lockName}.stale-`)) {
      await unlink(path).catch(() => undefined);
      removed.push(path);
    }
  }
  return { removed, kept, ...(restored ? { restored } : {}) };
}

/** Whether `path` exists (a dangling link counts). */
export function existsNoFollow(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** What an earlier run into another output directory of the same parent left beside it. */
export interface OthersLeftover {
  /** The staging directory, or an earlier output set aside by the run's swap. */
  readonly path: string;
  readonly kind: 'staging' | 'replaced';
  /** The output directory the run was writing. */
  readonly outDir: string;
  /** Bytes of the files directly inside it. */
  readonly bytes: number;
}

const SIBLING = /^\.(.+)\.lorafuse-(staging|replaced)-[0-9a-f]{12}$/;

/**
 * The leftovers of ended runs into other outputs than `name` in `parent`: a killed run's staging
 * directory, and an earlier output set aside (by a run killed mid-swap, or kept for files lorafuse
 * did not write). A run into that output clears them ({@link clearLeftovers}); until then they are
 * hidden, possibly hundreds of MB. A run holds its output's lock while it has them, so they are
 * named only when that lock is gone or names a process that no longer runs.
 */
export async function othersLeftovers(parent: string, name: string): Promise<OthersLeftover[]> {
  const names = await readdir(parent).catch(() => [] as string[]);
  const found: OthersLeftover[] = [];
  for (const n of names.sort()) {
    const m = SIBLING.exec(n);
    if (m === null || m[1] === name) continue;
    const outDir = join(parent, m[1]!);
    if (!(await lockHolderGone(siblingsOf(outDir, '').lock))) continue;
    const path = join(parent, n);
    const inside = await readdir(path, { withFileTypes: true }).catch(() => undefined);
    // Gone meanwhile: a live run committed it just before its lock was read.
    if (inside === undefined) continue;
    let bytes = 0;
    for (const e of inside) if (e.isFile()) bytes += (await lstat(join(path, e.name)).catch(() => ({ size: 0 }))).size;
    found.push({ path, kind: m[2] as 'staging' | 'replaced', outDir, bytes });
  }
  return found;
}
