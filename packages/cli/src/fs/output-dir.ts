/**
 * The output directory as a transaction. One run at a time holds the directory's lock; the whole
 * output is built in a staging directory beside it (same parent, so renaming is atomic), fsynced,
 * and swapped into place on `commit()`: an existing output is renamed aside first and removed only
 * once the new one is in place, so at any instant the directory holds the old output or the new
 * one, complete. `abort()` (and `abandonSync()` in a process's last moments) leaves nothing new
 * behind and the existing output as it was.
 */
import { randomBytes } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import { renameSync, rmdirSync, rmSync } from 'node:fs';
import { chmod, copyFile, constants as fsConstants, lstat, mkdir, open, realpath, rename, rm, rmdir, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, isAbsolute } from 'node:path';
import { EnvironmentError, UsageError, type ByteSink, type PositionalByteSink } from '@lorafuse/core';
import { fromFsError } from './fs-error.js';
import { classifyEntries, clearLeftovers, existsNoFollow, othersLeftovers, removeSetAside, siblingsOf, type OutputSiblings } from './output-leftovers.js';
import { OutputLock } from './output-lock.js';

/** A file being written in the output directory: appended to, or written at offsets. */
export interface OutputFile extends ByteSink, PositionalByteSink {
  readonly finalName: string;
  readonly bytesWritten: number;
  /** Flushes to disk and closes the handle. */
  close(): Promise<void>;
}

async function realOrResolved(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    // Not there yet: resolve its nearest existing parent, so symlinked parents still compare right.
    const parent = dirname(path);
    if (parent === path) return path;
    return join(await realOrResolved(parent), basename(path));
  }
}

function isInside(child: string, parent: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** Refuses an output directory that is, contains, or lies inside an input directory. */
export async function assertOutDirSeparate(outDir: string, inputs: readonly string[]): Promise<void> {
  const out = await realOrResolved(resolve(outDir));
  for (const input of inputs) {
    const inp = await realOrResolved(resolve(input));
    if (isInside(out, inp) || isInside(inp, out)) {
      throw new UsageError('OUT_DIR_OVERLAPS_INPUT', `output directory ${outDir} ${out === inp ? 'is' : isInside(out, inp) ? 'is inside' : 'contains'} the input directory ${input}`, {
        subject: outDir,
        hint: 'Choose an output directory outside the base and adapter directories; lorafuse never writes into its inputs.',
      });
    }
  }
}

/**
 * Test seam for the fault suite: fail writes with ENOSPC once a file passes this many bytes, as a
 * full disk would (a real small tmpfs needs privileges CI may not have).
 */
const faultAfterBytes = process.env['LORAFUSE_FAULT_ENOSPC_AFTER_BYTES'] === undefined ? undefined : Number(process.env['LORAFUSE_FAULT_ENOSPC_AFTER_BYTES']);
/** Bytes a weight file grows by between its background data syncs (see `createFile`). */
const WRITEBACK_STEP = 16 * 1024 * 1024;

/** A write failure as a lorafuse error: a full disk or quota is the machine's, not the input's. */
function writeError(e: unknown, path: string): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new EnvironmentError('DISK_FULL', `no space left on the device writing ${path}`, { subject: path, hint: 'Free some space or choose an --out directory on another disk; nothing was written.', cause: e });
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new EnvironmentError('OUTPUT_NOT_WRITABLE', `cannot write ${path} (${code})`, { subject: path, hint: 'Choose an --out directory you can write to (lorafuse builds the output beside it, so its parent must be writable too).', cause: e });
  }
  return fromFsError(e, path, 'write', 'output');
}

/**
 * A failure to prepare the output beside `out` (its parent holds the lock and the staging directory),
 * named by the output the user asked for: a parent that is a file, or one that cannot be written.
 */
function parentError(e: unknown, out: string, parent: string): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'EEXIST' || code === 'ENOTDIR') {
    return fromFsError(Object.assign(new Error('not a directory'), { code: 'ENOTDIR', errno: -osConstants.errno.ENOTDIR }), out, 'use the output directory', 'output');
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new EnvironmentError('OUTPUT_NOT_WRITABLE', `cannot create the output directory ${out}: lorafuse builds it beside itself, in ${parent}, which cannot be written (${code})`, { subject: out, hint: 'Choose an --out directory whose parent you can write to.', cause: e });
  }
  return writeError(e, parent);
}

/** Thrown by writes after the transaction was aborted (a signal arrived): the run is ending. */
function abandoned(): EnvironmentError {
  return new EnvironmentError('OUTPUT_ABANDONED', 'the output was abandoned while it was being written');
}

/** What an output will hold and whether an existing one may be replaced. */
export interface OutputOptions {
  /** `--overwrite`: replace an existing output (refused if it holds files lorafuse did not write). */
  readonly overwrite: boolean;
  /** The names of the files this output will hold. */
  readonly names: readonly string[];
}

/** What a commit did to an existing output directory. */
export interface Committed {
  /** The earlier output's files, now replaced or removed (empty when there was none). */
  readonly replaced: string[];
}

const LIST_AT_MOST = 12;
function listNames(names: readonly string[]): string {
  return names.length <= LIST_AT_MOST ? names.join(', ') : `${names.slice(0, LIST_AT_MOST).join(', ')} and ${names.length - LIST_AT_MOST} more`;
}

/** The real path of an output directory (a link to a directory is followed) or a not-yet-existing one. */
async function outputPath(dir: string): Promise<string> {
  const abs = resolve(dir);
  const l = await lstat(abs).catch(() => undefined);
  if (l?.isSymbolicLink()) {
    const target = await realpath(abs).catch(() => undefined);
    if (!target) throw new UsageError('OUT_NOT_DIR', `output path ${abs} is a symbolic link to nothing`, { subject: abs, hint: 'Remove the link or choose another --out.' });
    return target;
  }
  return join(await realOrResolved(dirname(abs)), basename(abs));
}

/**
 * One output directory being written. Construct it, then `begin()`; a signal handler may call
 * `abort()` or `abandonSync()` at any moment from construction on.
 */
export class OutputTransaction {
  private readonly tag = randomBytes(6).toString('hex');
  private readonly outputNames: ReadonlySet<string>;
  private phase: 'new' | 'beginning' | 'open' | 'committing' | 'committed' | 'aborted' = 'new';
  /** Set first thing by `abort()`: no write starts after it. */
  private stopping = false;
  private out: string | undefined;
  private sib: OutputSiblings | undefined;
  private lock: OutputLock | undefined;
  /** The top-most parent directory `begin()` created, removed again by an abort. */
  private createdParent: string | undefined;
  private stagingMade = false;
  /** During the swap: the earlier output is set aside and the new one not yet in place. */
  private setAside = false;
  private readonly files = new Map<string, { handle: FileHandle | null }>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private beginning: Promise<void> | undefined;
  private committing: Promise<Committed> | undefined;
  private aborting: Promise<void> | undefined;
  /** One line each about what `begin()` found and cleared of earlier runs. */
  readonly notes: string[] = [];

  constructor(private readonly requested: string, private readonly options: OutputOptions) {
    this.outputNames = new Set(options.names);
  }

  /** The output directory (absolute; links to it followed). Known once `begin()` ran. */
  get dir(): string {
    if (!this.out) throw new Error('internal: the output was not begun');
    return this.out;
  }

  /**
   * Takes the lock, clears dead runs' leftovers, checks an existing directory (refused when not
   * empty unless `overwrite`, and then when it holds files lorafuse did not write) and creates the
   * staging directory. Nothing is written unless all of that passes.
   */
  begin(): Promise<void> {
    if (this.phase !== 'new') throw new Error('internal: begin() called twice');
    this.phase = 'beginning';
    this.beginning = this.doBegin().then(
      () => {
        this.phase = 'open';
      },
      async (e: unknown) => {
        await this.cleanUp();
        this.phase = 'aborted';
        throw e;
      },
    );
    return this.beginning;
  }

  private async doBegin(): Promise<void> {
    const out = await outputPath(this.requested);
    this.out = out;
    const sib = siblingsOf(out, this.tag);
    this.sib = sib;
    if (sib.parent === out) throw new UsageError('OUT_NOT_DIR', `output path ${out} cannot be a file system root`, { subject: out });
    try {
      this.createdParent = await mkdir(sib.parent, { recursive: true });
    } catch (e) {
      throw parentError(e, out, sib.parent);
    }
    this.stopIfAborted();
    try {
      const { lock, tookOverFrom } = await OutputLock.acquire(sib.lock, out);
      this.lock = lock;
      this.stopIfAborted();
      const cleared = await clearLeftovers(out, this.outputNames);
      const what = [...(tookOverFrom ? [`its lock ${sib.lock}`] : []), ...cleared.removed];
      if (what.length > 0 || cleared.restored) {
        const run = tookOverFrom ? `an interrupted lorafuse run (pid ${tookOverFrom.pid})` : 'an interrupted lorafuse run';
        this.notes.push(`removed what ${run} left behind: ${what.join(', ') || 'nothing else'}${cleared.restored ? `; moved the earlier output back from ${cleared.restored}` : ''}`);
      }
      for (const k of cleared.kept) {
        this.notes.push(`kept ${k.path}, an earlier output set aside by an interrupted run: it holds files lorafuse did not write (${listNames(k.foreign)}); move them out, then remove it: rm -r ${JSON.stringify(k.path)}`);
      }
      for (const o of await othersLeftovers(sib.parent, sib.name)) {
        const size = `${(o.bytes / 2 ** 20).toFixed(1)} MiB`;
        this.notes.push(
          o.kind === 'staging'
            ? `${o.path} (${size}) is what a killed run into ${o.outDir} left; the next merge into ${o.outDir} removes it, or remove it now: rm -r ${JSON.stringify(o.path)}`
            : `${o.path} (${size}) is an earlier output of ${o.outDir} that a run set aside (killed mid-swap, or kept for files lorafuse did not write); the next merge into ${o.outDir} puts it back or clears lorafuse's files from it`,
        );
      }
    } catch (e) {
      throw parentError(e, out, sib.parent);
    }
    await this.checkExisting();
    this.stopIfAborted();
    try {
      await mkdir(sib.staging);
    } catch (e) {
      throw parentError(e, out, sib.parent);
    }
    this.stagingMade = true;
  }

  private stopIfAborted(): void {
    if (this.stopping) throw abandoned();
  }

  /** Refuses an existing output that this run may not replace; returns what it holds. */
  private async checkExisting(): Promise<string[]> {
    const out = this.dir;
    let s;
    try {
      s = await lstat(out);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    if (!s.isDirectory()) throw new UsageError('OUT_NOT_DIR', `output path ${out} exists and is not a directory`, { subject: out });
    const { all, foreign } = await classifyEntries(out, this.outputNames);
    if (all.length === 0) return [];
    if (!this.options.overwrite) {
      throw new UsageError('OUT_DIR_NOT_EMPTY', `output directory ${out} is not empty (it holds ${listNames(all)})`, {
        subject: out,
        hint: 'Pass --overwrite to replace an earlier lorafuse output there, or choose a new directory.',
      });
    }
    if (foreign.length > 0) {
      throw new UsageError('OUT_DIR_HAS_OTHER_FILES', `output directory ${out} holds files lorafuse did not write: ${listNames(foreign)}`, {
        subject: out,
        hint: '--overwrite replaces only an earlier output (config.json, model*.safetensors, its index and the files copied from the base); move those files elsewhere, or choose a new directory.',
      });
    }
    return all;
  }

  /** Runs `work` as I/O that `abort()` waits for, unless the transaction is being aborted. */
  private track<T>(work: () => Promise<T>): Promise<T> {
    if (this.stopping) return Promise.reject(abandoned());
    const p = work();
    this.inFlight.add(p);
    const forget = () => this.inFlight.delete(p);
    p.then(forget, forget);
    return p;
  }

  private staged(name: string): string {
    if (this.phase !== 'open' || !this.sib) throw new Error(`internal: ${name} written outside an open output`);
    return join(this.sib.staging, name);
  }

  /**
   * Starts writing `name`; bytes go to the staging directory until `commit()`. With `startFrom`, the
   * file starts as a copy of that input file (the OS's copy: in the kernel, or a reflink), cut or
   * extended to `size` bytes, and is then written over at offsets.
   */
  async createFile(name: string, startFrom?: { readonly path: string; readonly size: number }): Promise<OutputFile> {
    const path = this.staged(name);
    const final = join(this.dir, name);
    const entry = { handle: null as FileHandle | null };
    this.files.set(name, entry);
    const handle = await this.track(async () => {
      const created = await open(path, 'wx');
      if (!startFrom) return created;
      // The copy takes the input's permissions (libuv copies the mode): a read-only base would give
      // a file this run cannot write over, and an output unlike a written one. So the mode a
      // written file gets is taken first, from the file just created.
      let mode: number;
      try {
        mode = (await created.stat()).mode & 0o7777;
      } finally {
        await created.close();
      }
      // The copy makes the file anew (COPYFILE_EXCL): over an existing one libuv first truncates it
      // to 0 bytes, and ext4 then flushes the whole copy when libuv closes it, inside the copy call
      // (0.16 s on the 124M checkpoint, measured), before anything can be written over it.
      await rm(path);
      if (faultAfterBytes !== undefined && startFrom.size > faultAfterBytes) throw Object.assign(new Error('ENOSPC: no space left on device (simulated by LORAFUSE_FAULT_ENOSPC_AFTER_BYTES)'), { code: 'ENOSPC' });
      await copyFile(startFrom.path, path, fsConstants.COPYFILE_FICLONE | fsConstants.COPYFILE_EXCL);
      await chmod(path, mode);
      const copy = await open(path, 'r+');
      try {
        // Exactly the planned size, whatever the input became since it was read. Only when it
        // differs: on ext4 a truncate to the same size still waits for the copy's writeback.
        if ((await copy.stat()).size !== startFrom.size) await copy.truncate(startFrom.size);
      } catch (e) {
        await copy.close();
        throw e;
      }
      return copy;
    }).catch((e: unknown) => {
      throw writeError(e, final);
    });
    entry.handle = handle;
    let written = startFrom?.size ?? 0;
    // Early writeback: a data sync in the background after every WRITEBACK_STEP bytes, one at a
    // time, so the disk writes while the merge still reads and computes and the fsync at close
    // has little left (Linux would otherwise hold a whole checkpoint in the page cache first).
    let syncedUpTo = 0;
    let syncing: Promise<void> | null = null;
    let syncFailure: unknown;
    const writeBack = () => {
      if (syncing !== null || written - syncedUpTo < WRITEBACK_STEP || this.stopping) return;
      syncedUpTo = written;
      syncing = this.track(() => handle.datasync()).then(
        () => {
          syncing = null;
        },
        (e: unknown) => {
          syncFailure ??= e;
          syncing = null;
        },
      );
    };
    // A copied file is all dirty pages at once: its writeback starts now.
    writeBack();
    /** Writes all of `chunk` at `position`, or at the end of what was appended when null. */
    const put = (chunk: Uint8Array, position: number | null): Promise<void> =>
      this.track(async () => {
        try {
          // A copied file had its full size checked when it was copied; writes over it do not grow it.
          if (faultAfterBytes !== undefined && !startFrom && written + chunk.byteLength > faultAfterBytes) {
            throw Object.assign(new Error('ENOSPC: no space left on device (simulated by LORAFUSE_FAULT_ENOSPC_AFTER_BYTES)'), { code: 'ENOSPC' });
          }
          // Counted before the write, so concurrent positional writes see each other's bytes.
          written += chunk.byteLength;
          let at = 0;
          while (at < chunk.byteLength) {
            this.stopIfAborted();
            const { bytesWritten } = await handle.write(chunk, at, chunk.byteLength - at, position === null ? null : position + at);
            at += bytesWritten;
          }
          writeBack();
        } catch (e) {
          throw writeError(e, final);
        }
      });
    return {
      finalName: name,
      get bytesWritten() {
        return written;
      },
      write: (chunk) => put(chunk, null),
      writeAt: (offset, chunk) => put(chunk, offset),
      close: () =>
        this.track(async () => {
          if (!entry.handle) return;
          entry.handle = null;
          try {
            await syncing;
            if (syncFailure !== undefined) throw writeError(syncFailure, final);
            await handle.sync();
          } finally {
            await handle.close();
          }
        }),
    };
  }

  /** Copies `source` in as `name` with the OS's file copy (reflink where the file system has it; links followed). */
  async copyFileIn(name: string, source: string): Promise<void> {
    const path = this.staged(name);
    this.files.set(name, { handle: null });
    await this.track(async () => {
      try {
        if (faultAfterBytes !== undefined) throw Object.assign(new Error('ENOSPC (simulated)'), { code: 'ENOSPC' });
        await copyFile(source, path, fsConstants.COPYFILE_FICLONE | fsConstants.COPYFILE_EXCL);
        const handle = await open(path, 'r+');
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
      } catch (e) {
        throw writeError(e, join(this.dir, name));
      }
    });
  }

  /** Where `name` is being written until `commit()` (to re-read it for verification). */
  tempPathOf(name: string): string {
    if (!this.files.has(name)) throw new Error(`internal: ${name} is not part of this output`);
    return this.staged(name);
  }

  /** Writes a whole small file. */
  async writeFile(name: string, bytes: Uint8Array): Promise<void> {
    const f = await this.createFile(name);
    await f.write(bytes);
    await f.close();
  }

  /**
   * Swaps the staging directory into place: an existing output is renamed aside, the new one renamed
   * to its name, and only then are the old one's files removed (files lorafuse did not write are
   * never deleted: if some appeared meanwhile, the set-aside directory is kept and named in `notes`).
   */
  commit(): Promise<Committed> {
    if (this.phase !== 'open' || this.stopping) return Promise.reject(abandoned());
    this.phase = 'committing';
    this.committing = this.doCommit().then(
      (c) => {
        this.phase = 'committed';
        return c;
      },
      (e: unknown) => {
        this.phase = 'open';
        throw e;
      },
    );
    return this.committing;
  }

  private async doCommit(): Promise<Committed> {
    const sib = this.sib!;
    const out = this.dir;
    for (const [name, f] of this.files) {
      if (f.handle) throw new Error(`internal: ${name} was not closed before commit`);
    }
    await syncDir(sib.staging);
    if (!(await this.lock!.stillHeld())) {
      throw new EnvironmentError('OUT_LOCK_LOST', `the lock ${sib.lock} was removed or taken by another run while this one wrote ${out}; nothing was changed`, {
        subject: sib.lock,
        hint: 'Run one merge into this directory at a time, and do not remove lorafuse\'s lock while it runs.',
      });
    }
    // Checked again: files may have appeared in the directory while this run wrote its output.
    const replaced = await this.checkExisting();
    try {
      // The new directory keeps the permissions of the one it replaces.
      const existing = await stat(out).catch(() => undefined);
      if (existing) await chmod(sib.staging, existing.mode & 0o7777);
      if (replaced.length > 0) {
        await rename(out, sib.replaced);
        this.setAside = true;
        try {
          await rename(sib.staging, out);
        } catch (e) {
          await rename(sib.replaced, out);
          this.setAside = false;
          throw e;
        }
        this.setAside = false;
      } else {
        // An empty directory is replaced by the rename itself.
        await rename(sib.staging, out);
      }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EXDEV' || code === 'EBUSY') {
        throw new EnvironmentError('OUT_DIR_NOT_RENAMABLE', `cannot replace ${out} (${code}): it is a mount point or on another file system than its parent`, {
          subject: out,
          hint: 'lorafuse builds the output beside the directory and renames it into place; choose a directory inside that mount as --out.',
          cause: e,
        });
      }
      throw writeError(e, out);
    }
    this.stagingMade = false;
    // The new output is in place either way; a failing directory fsync must not report it as not written.
    await syncDir(sib.parent).catch(() => undefined);
    if (replaced.length > 0) {
      const kept = await removeSetAside(sib.replaced, this.outputNames).catch(() => ['(could not list)']);
      if (kept.length > 0) this.notes.push(`kept the earlier output's files lorafuse did not write in ${sib.replaced}: ${listNames(kept)}`);
    }
    await this.lock!.release();
    return { replaced };
  }

  /**
   * Removes everything this transaction wrote (and the parent directories it created), waiting first
   * for writes in flight; an output being swapped into place is let finish. Never throws.
   */
  abort(): Promise<void> {
    this.aborting ??= (async () => {
      this.stopping = true;
      await this.beginning?.catch(() => undefined);
      if (this.committing) {
        const committed = await this.committing.then(() => true, () => false);
        if (committed) return;
      }
      while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
      for (const f of this.files.values()) {
        const h = f.handle;
        f.handle = null;
        await h?.close().catch(() => undefined);
      }
      await this.cleanUp();
      this.phase = 'aborted';
    })();
    return this.aborting;
  }

  private async cleanUp(): Promise<void> {
    if (this.sib && this.stagingMade) {
      await rm(this.sib.staging, { recursive: true, force: true }).catch(() => undefined);
      this.stagingMade = false;
    }
    await this.lock?.release();
    await removeCreatedParents(this.sib?.parent, this.createdParent);
  }

  /**
   * The last resort when a process must end now (a cleanup ran out of time, a second signal):
   * synchronously puts a set-aside output back, removes the staging directory and the lock. Writes
   * still in flight then land in unlinked files.
   */
  abandonSync(): void {
    if (this.phase === 'committed' || this.phase === 'aborted' || !this.sib) return;
    this.stopping = true;
    const sib = this.sib;
    try {
      if (this.setAside && !existsNoFollow(this.dir)) renameSync(sib.replaced, this.dir);
    } catch {
      /* the set-aside output stays under its name; the next run moves it back */
    }
    try {
      rmSync(sib.staging, { recursive: true, force: true });
    } catch {
      /* the next run removes it */
    }
    this.lock?.releaseSync();
    if (this.createdParent) {
      for (let d = sib.parent; d.length >= this.createdParent.length; d = dirname(d)) {
        try {
          rmdirSync(d);
        } catch {
          break;
        }
      }
    }
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Removes `dir` and its parents up to `top` (the first one `mkdir -p` created), while they are empty. */
async function removeCreatedParents(dir: string | undefined, top: string | undefined): Promise<void> {
  if (!dir || !top) return;
  for (let d = dir; d.length >= top.length; d = dirname(d)) {
    try {
      await rmdir(d);
    } catch {
      return;
    }
  }
}
