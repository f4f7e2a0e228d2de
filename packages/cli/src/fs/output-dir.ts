/**
 * The output directory as a transaction: files are written under temporary names inside it, fsynced,
 * and renamed into place only on `commit()`. `abort()` leaves nothing new behind.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, constants as fsConstants, mkdir, open, readdir, realpath, rename, rm, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, isAbsolute } from 'node:path';
import { EnvironmentError, UsageError, type ByteSink, type PositionalByteSink } from '@lorafuse/core';
import { fromFsError } from './fs-error.js';

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

/** A write failure as a lorafuse error: a full disk or quota is the machine's, not the input's. */
function writeError(e: unknown, path: string): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new EnvironmentError('DISK_FULL', `no space left on the device writing ${path}`, { subject: path, hint: 'Free some space or choose an --out directory on another disk; nothing was written.', cause: e });
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new EnvironmentError('OUTPUT_NOT_WRITABLE', `cannot write ${path} (${code})`, { subject: path, hint: 'Choose an --out directory you can write to.', cause: e });
  }
  return fromFsError(e, path, 'write', 'output');
}

/** One output directory being written. */
export class OutputTransaction {
  private readonly files: Array<{ temp: string; final: string; handle: FileHandle | null }> = [];
  private readonly tag = randomBytes(6).toString('hex');
  private done = false;

  private constructor(readonly dir: string, private readonly createdDir: boolean, private readonly overwrite: boolean) {}

  /** Prepares `dir`: creates it if missing; refuses a non-empty one unless `overwrite`. */
  static async begin(dir: string, overwrite: boolean): Promise<OutputTransaction> {
    const abs = resolve(dir);
    let created = false;
    try {
      const s = await stat(abs);
      if (!s.isDirectory()) throw new UsageError('OUT_NOT_DIR', `output path ${abs} exists and is not a directory`, { subject: abs });
      const entries = await readdir(abs);
      if (entries.length > 0 && !overwrite) {
        throw new UsageError('OUT_DIR_NOT_EMPTY', `output directory ${abs} is not empty`, {
          subject: abs,
          hint: 'Pass --overwrite to replace its contents, or choose a new directory.',
        });
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fromFsError(e, abs, 'use the output directory', 'output');
      try {
        await mkdir(abs, { recursive: true });
      } catch (err) {
        throw writeError(err, abs);
      }
      created = true;
    }
    return new OutputTransaction(abs, created, overwrite);
  }

  /** Starts writing `name`; bytes go to a temporary file until `commit()`. */
  async createFile(name: string): Promise<OutputFile> {
    const final = join(this.dir, name);
    const temp = join(this.dir, `.${name}.lorafuse-${this.tag}.tmp`);
    let handle: FileHandle;
    try {
      handle = await open(temp, 'wx');
    } catch (e) {
      throw writeError(e, final);
    }
    const entry = { temp, final, handle: handle as FileHandle | null };
    this.files.push(entry);
    let written = 0;
    /** Writes all of `chunk` at `position`, or at the end of what was appended when null. */
    const put = async (chunk: Uint8Array, position: number | null): Promise<void> => {
      try {
        if (faultAfterBytes !== undefined && written + chunk.byteLength > faultAfterBytes) {
          throw Object.assign(new Error('ENOSPC: no space left on device (simulated by LORAFUSE_FAULT_ENOSPC_AFTER_BYTES)'), { code: 'ENOSPC' });
        }
        // Counted before the write, so concurrent positional writes see each other's bytes.
        written += chunk.byteLength;
        let at = 0;
        while (at < chunk.byteLength) {
          const { bytesWritten } = await handle.write(chunk, at, chunk.byteLength - at, position === null ? null : position + at);
          at += bytesWritten;
        }
      } catch (e) {
        throw writeError(e, final);
      }
    };
    return {
      finalName: name,
      get bytesWritten() {
        return written;
      },
      write: (chunk) => put(chunk, null),
      writeAt: (offset, chunk) => put(chunk, offset),
      async close(): Promise<void> {
        if (!entry.handle) return;
        entry.handle = null;
        await handle.sync();
        await handle.close();
      },
    };
  }

  /** Copies `source` in as `name` with the OS's file copy (reflink where the file system has it). */
  async copyFileIn(name: string, source: string): Promise<void> {
    const f = await this.createFile(name);
    await f.close();
    try {
      if (faultAfterBytes !== undefined) throw Object.assign(new Error('ENOSPC (simulated)'), { code: 'ENOSPC' });
      await copyFile(source, this.tempPathOf(name), fsConstants.COPYFILE_FICLONE);
    } catch (e) {
      throw writeError(e, join(this.dir, name));
    }
    const handle = await open(this.tempPathOf(name), 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** Where `name` is being written until `commit()` (to re-read it for verification). */
  tempPathOf(name: string): string {
    const entry = this.files.find((f) => f.final === join(this.dir, name));
    if (!entry) throw new Error(`internal: ${name} is not part of this output`);
    return entry.temp;
  }

  /** Writes a whole small file. */
  async writeFile(name: string, bytes: Uint8Array): Promise<void> {
    const f = await this.createFile(name);
    await f.write(bytes);
    await f.close();
  }

  /** Renames every file into place. With `overwrite`, files of an earlier output that this one does not write are removed. */
  async commit(): Promise<void> {
    for (const f of this.files) {
      if (f.handle) throw new Error(`internal: ${f.final} was not closed before commit`);
    }
    if (this.overwrite && !this.createdDir) {
      const mine = new Set(this.files.flatMap((f) => [basename(f.temp), basename(f.final)]));
      for (const entry of await readdir(this.dir, { withFileTypes: true })) {
        if (entry.isFile() && !mine.has(entry.name)) await unlink(join(this.dir, entry.name));
      }
    }
    for (const f of this.files) await rename(f.temp, f.final);
    const dirHandle = await open(this.dir, 'r');
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
    this.done = true;
  }

  /** Removes everything this transaction wrote (and the directory, if it created it). Never throws. */
  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    for (const f of this.files) {
      try {
        await f.handle?.close();
      } catch {
        /* already closed */
      }
      await rm(f.temp, { force: true });
    }
    if (this.createdDir) await rmdir(this.dir).catch(() => undefined);
  }
}
