import { describe, expect, it } from 'vitest';
import { EnvironmentError, InputError, UsageError } from '@lorafuse/core';
import { fromFsError, fromUnmappedFsError } from './fs-error.js';

/** An OS error as Node's fs raises it. */
const osError = (code: string, errno: number, syscall: string, path?: string) => Object.assign(new Error(`${code}: ${syscall}`), { code, errno, syscall, ...(path ? { path } : {}) });

describe('fromFsError', () => {
  it('a bad input path is an InputError, a bad --out path a UsageError, naming path and code', () => {
    const e = fromFsError(osError('ENOTDIR', -20, 'stat'), '/a/file/x', 'read', 'input');
    expect(e).toBeInstanceOf(InputError);
    expect(e).toMatchObject({ code: 'INPUT_PATH', subject: '/a/file/x', message: 'cannot read /a/file/x: not a directory (ENOTDIR)' });
    expect(fromFsError(osError('EISDIR', -21, 'open'), '/o', 'write', 'output')).toBeInstanceOf(UsageError);
  });

  it("the machine's refusals are EnvironmentErrors with what to do", () => {
    expect(fromFsError(osError('EACCES', -13, 'open'), '/in', 'open', 'input')).toMatchObject({ code: 'INPUT_NOT_READABLE', message: 'cannot open /in: permission denied (EACCES)' });
    expect(fromFsError(osError('EROFS', -30, 'mkdir'), '/out', 'write', 'output')).toMatchObject({ code: 'OUTPUT_NOT_WRITABLE', kind: 'environment' });
    expect(fromFsError(osError('EMFILE', -24, 'open'), '/in', 'open', 'input')).toMatchObject({ code: 'TOO_MANY_OPEN_FILES', hint: expect.stringContaining('ulimit -n') });
    expect(fromFsError(osError('ENOSPC', -28, 'write'), '/out/x', 'write', 'output')).toMatchObject({ code: 'DISK_FULL' });
    expect(fromFsError(osError('EIO', -5, 'read'), '/in', 'read', 'input')).toMatchObject({ code: 'FILE_SYSTEM_ERROR', message: 'cannot read /in: i/o error (EIO)' });
  });

  it('leaves other errors as they are', () => {
    const plain = new Error('boom');
    expect(fromFsError(plain, '/x', 'read', 'input')).toBe(plain);
    const typed = new InputError('X', 'm');
    expect(fromFsError(typed, '/x', 'read', 'input')).toBe(typed);
  });
});

describe('fromUnmappedFsError (the last resort in reportError)', () => {
  it('maps an OS error that names a path, saying what the system call did', () => {
    const e = fromUnmappedFsError(osError('ENOTDIR', -20, 'mkdir', '/f/out'));
    expect(e).toBeInstanceOf(EnvironmentError);
    expect(e).toMatchObject({ code: 'FILE_SYSTEM_ERROR', message: 'cannot create the directory /f/out: not a directory (ENOTDIR)' });
    expect(fromUnmappedFsError(osError('ELOOP', -40, 'scandir', '/l'))).toMatchObject({ message: 'cannot list the directory /l: too many symbolic links encountered (ELOOP)' });
  });
  it('leaves OS errors without a path, and non-OS errors, as they are', () => {
    const noPath = osError('ECONNRESET', -104, 'read');
    expect(fromUnmappedFsError(noPath)).toBe(noPath);
    const plain = Object.assign(new Error('x'), { code: 'ERR_INVALID_ARG_TYPE', path: '/x' });
    expect(fromUnmappedFsError(plain)).toBe(plain);
  });
});
