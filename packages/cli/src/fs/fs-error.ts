/**
 * An operating-system error from the file system as a lorafuse error that names the path, what was
 * being done and the OS error code. A path that cannot be used (missing, not a directory, a symlink
 * loop) is the input's or the command line's fault; permissions, read-only disks, full disks and
 * exhausted file descriptors are the machine's. None of them is a bug in lorafuse.
 */
import { getSystemErrorMap } from 'node:util';
import { EnvironmentError, InputError, LorafuseError, UsageError } from '@lorafuse/core';

/** Whose path it is: an input file or directory, the output directory, or not known. */
export type FsRole = 'input' | 'output' | 'unknown';

/** Codes that mean the path itself cannot be used as given. */
const BAD_PATH = new Set(['ENOENT', 'ENOTDIR', 'EISDIR', 'ELOOP', 'ENAMETOOLONG']);

/** What the OS error means, in words. */
function describe(e: NodeJS.ErrnoException): string {
  const known = typeof e.errno === 'number' ? getSystemErrorMap().get(e.errno)?.[1] : undefined;
  return known ?? e.code ?? 'unknown error';
}

/** The `code` of an OS error (`ENOENT`, `EACCES`, ...), or undefined for anything else. */
export function osErrorCode(e: unknown): string | undefined {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return e instanceof Error && typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/**
 * `error` as a typed lorafuse error when it is an OS error; anything else is returned unchanged (a
 * lorafuse error stays as it is). `action` says what failed: "read", "open the output directory".
 */
export function fromFsError(error: unknown, path: string, action: string, role: FsRole): unknown {
  if (error instanceof LorafuseError) return error;
  const code = osErrorCode(error);
  if (code === undefined) return error;
  const e = error as NodeJS.ErrnoException;
  const message = `cannot ${action} ${path}: ${describe(e)} (${code})`;
  const options = { subject: path, cause: error };
  if (BAD_PATH.has(code)) {
    if (role === 'input') return new InputError('INPUT_PATH', message, { ...options, hint: 'Check the path: every input must be an existing file or directory you can read.' });
    if (role === 'output') return new UsageError('OUTPUT_PATH', message, { ...options, hint: 'Choose an --out path whose parent directories exist and are directories.' });
  }
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new EnvironmentError('DISK_FULL', message, { ...options, hint: 'Free some space or choose an --out directory on another disk.' });
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    if (role === 'output') return new EnvironmentError('OUTPUT_NOT_WRITABLE', message, { ...options, hint: 'Choose an --out directory you can write to.' });
    return new EnvironmentError(role === 'input' ? 'INPUT_NOT_READABLE' : 'PERMISSION_DENIED', message, { ...options, hint: 'Check the permissions of the path (and of its parent directories).' });
  }
  if (code === 'EMFILE' || code === 'ENFILE') {
    return new EnvironmentError('TOO_MANY_OPEN_FILES', message, { ...options, hint: 'Raise the open-file limit (`ulimit -n`) or close other programs, then run again.' });
  }
  return new EnvironmentError('FILE_SYSTEM_ERROR', message, { ...options, hint: 'The operating system refused the operation; check the disk and the path, then run again.' });
}

/** What a system call was doing, in words for "cannot … <path>". */
const SYSCALL_WORDS: Readonly<Record<string, string>> = {
  open: 'open',
  read: 'read',
  stat: 'read',
  lstat: 'read',
  fstat: 'read',
  scandir: 'list the directory',
  opendir: 'list the directory',
  realpath: 'resolve',
  mkdir: 'create the directory',
  write: 'write',
  copyfile: 'copy to',
  rename: 'rename',
  unlink: 'remove',
  rmdir: 'remove the directory',
  fsync: 'flush',
  access: 'access',
};

/**
 * The last resort for an OS error no call site mapped: when it names a path, a typed error saying
 * what failed on which path with the OS code (whose path it was is not known here); anything else
 * is returned unchanged.
 */
export function fromUnmappedFsError(error: unknown): unknown {
  const e = error as NodeJS.ErrnoException;
  if (osErrorCode(error) === undefined || typeof e.path !== 'string') return error;
  const action = (e.syscall && SYSCALL_WORDS[e.syscall]) ?? `${e.syscall ?? 'use'}`;
  return fromFsError(error, e.path, action, 'unknown');
}
