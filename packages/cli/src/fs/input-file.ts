/**
 * Every input file is checked before it is opened: `stat` (which follows symbolic links) must show a
 * regular file. Opening a FIFO blocks until a writer comes, and a device such as `/dev/zero` never
 * ends, so either would hang the run or fill memory; a directory cannot be read as a file. Files
 * read whole (configs, the shard index) also have a size limit.
 */
import { constants, type Dirent, type Stats } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '@lorafuse/core';
import { formatBytes } from '../output.js';
import { fromFsError } from './fs-error.js';

/** The most bytes of a JSON file (config.json, adapter_config.json, the shard index) read whole. */
export const MAX_JSON_FILE_BYTES = 64 * 1024 * 1024;

/** What a path that is not a regular file is, in words. */
function kindOf(s: Stats): string {
  if (s.isDirectory()) return 'a directory';
  if (s.isFIFO()) return 'a FIFO (named pipe)';
  if (s.isCharacterDevice()) return 'a character device';
  if (s.isBlockDevice()) return 'a block device';
  if (s.isSocket()) return 'a socket';
  return 'not a regular file';
}

function notAFile(path: string, s: Stats): InputError {
  return new InputError('INPUT_NOT_A_FILE', `${path} is ${kindOf(s)}, not a regular file`, {
    subject: path,
    hint: 'lorafuse reads inputs only from regular files (a symbolic link to one is fine); give the real file.',
  });
}

/** Stats `path` (following symbolic links) and refuses anything but a regular file. */
export async function statInputFile(path: string): Promise<Stats> {
  let s: Stats;
  try {
    s = await stat(path);
  } catch (e) {
    throw fromFsError(e, path, 'read', 'input');
  }
  if (!s.isFile()) throw notAFile(path, s);
  return s;
}

/**
 * Opens a regular input file read-only. The type is checked by `stat` first, and again on the open
 * handle, so a file swapped for a FIFO in between is refused too (non-blocking open: it cannot hang).
 */
export async function openInputFile(path: string): Promise<{ handle: FileHandle; size: number }> {
  await statInputFile(path);
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw fromFsError(e, path, 'open', 'input');
  }
  try {
    const s = await handle.stat();
    if (!s.isFile()) throw notAFile(path, s);
    return { handle, size: s.size };
  } catch (e) {
    await handle.close().catch(() => undefined);
    throw fromFsError(e, path, 'read', 'input');
  }
}

/**
 * Reads at most `maxBytes` of a regular input file from its start; refuses a file longer than
 * `limit` before reading any of it.
 */
async function readHead(path: string, maxBytes: number, limit = Infinity): Promise<Buffer> {
  const { handle, size } = await openInputFile(path);
  try {
    if (size > limit) throw tooLarge(path, size, limit);
    const bytes = Buffer.alloc(Math.min(size, maxBytes));
    let done = 0;
    while (done < bytes.byteLength) {
      const { bytesRead } = await handle.read(bytes, done, bytes.byteLength - done, done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return bytes.subarray(0, done);
  } catch (e) {
    throw fromFsError(e, path, 'read', 'input');
  } finally {
    await handle.close().catch(() => undefined);
  }
}

function tooLarge(path: string, size: number, limit: number): InputError {
  return new InputError('INPUT_TOO_LARGE', `${path} is ${formatBytes(size)}; lorafuse reads a file like it whole only up to ${formatBytes(limit)}`, {
    subject: path,
    hint: 'Config and index files are a few KiB to a few MiB; check that this is the right file.',
  });
}

/** The first `length` bytes of a regular input file (fewer if it is shorter). */
export async function readInputHead(path: string, length: number): Promise<Buffer> {
  return readHead(path, length);
}

/** A whole regular input file of at most `maxBytes` (default {@link MAX_JSON_FILE_BYTES}). */
export async function readInputFile(path: string, maxBytes = MAX_JSON_FILE_BYTES): Promise<Buffer> {
  // One byte more than allowed: a file that grew after its size was read is caught too.
  const bytes = await readHead(path, maxBytes + 1, maxBytes);
  if (bytes.byteLength > maxBytes) throw tooLarge(path, bytes.byteLength, maxBytes);
  return bytes;
}

/** A whole regular input file as UTF-8 text, at most `maxBytes` long. */
export async function readInputText(path: string, maxBytes = MAX_JSON_FILE_BYTES): Promise<string> {
  return (await readInputFile(path, maxBytes)).toString('utf8');
}

/**
 * Refuses, among the directory entries `entries` of `dir`, those called one of `names` that are
 * not regular files once symbolic links are followed (a directory named model.safetensors, a FIFO,
 * a link to /dev/zero or a link loop), naming the path and what it is.
 */
export async function refuseIrregularEntries(dir: string, entries: readonly Dirent[], names: Iterable<string>): Promise<void> {
  const wanted = new Set(names);
  for (const entry of entries) {
    if (wanted.has(entry.name) && !entry.isFile()) await statInputFile(join(dir, entry.name));
  }
}
