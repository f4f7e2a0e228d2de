/** reportError: OS errors that name a path are explained, not called bugs; real bugs still are. */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { reportError } from '../src/main.js';
import type { Io } from '../src/output.js';

function captureIo(): { io: Io; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  const sink = (add: (s: string) => void) => new Writable({ write: (chunk: Buffer, _enc, done) => (add(chunk.toString()), done()) });
  return { io: { stdout: sink((s) => (out += s)), stderr: sink((s) => (err += s)) }, out: () => out, err: () => err };
}

const osError = (code: string, errno: number, syscall: string, path: string) => Object.assign(new Error(`${code}: ${syscall} '${path}'`), { code, errno, syscall, path });

describe('reportError', () => {
  it('an unmapped OS error with a path: what failed, the path and the code, exit 2, no bug wording', async () => {
    const c = captureIo();
    expect(reportError(osError('EMFILE', -24, 'open', '/data/model.safetensors'), false, c.io)).toBe(2);
    await new Promise((r) => setImmediate(r));
    expect(c.err()).toContain('lorafuse: error: cannot open /data/model.safetensors: too many open files (EMFILE)');
    expect(c.err()).toContain('ulimit -n');
    expect(c.err()).not.toContain('bug');
    const j = captureIo();
    reportError(osError('EACCES', -13, 'mkdir', '/srv/out'), true, j.io);
    await new Promise((r) => setImmediate(r));
    expect(JSON.parse(j.out())).toMatchObject({ ok: false, exitCode: 2, error: { name: 'EnvironmentError', kind: 'environment', code: 'PERMISSION_DENIED', subject: '/srv/out' } });
  });

  it('LORAFUSE_DEBUG prints the stack and the causes\' stacks (a page error keeps its own there); without it, neither', async () => {
    const page = new Error('Failed to fetch');
    page.stack = 'Error: Failed to fetch\n    at postBytes (page.js:1:2)';
    const thrown = new Error('the upload failed', { cause: page });
    const quiet = captureIo();
    reportError(thrown, false, quiet.io);
    await new Promise((r) => setImmediate(r));
    expect(quiet.err()).not.toMatch(/caused by|postBytes/);
    const before = process.env['LORAFUSE_DEBUG'];
    process.env['LORAFUSE_DEBUG'] = '1';
    try {
      const debug = captureIo();
      reportError(thrown, false, debug.io);
      await new Promise((r) => setImmediate(r));
      expect(debug.err()).toMatch(/Error: the upload failed\n\s+at [\s\S]*caused by:\nError: Failed to fetch\n\s+at postBytes \(page\.js:1:2\)/);
    } finally {
      if (before === undefined) delete process.env['LORAFUSE_DEBUG'];
      else process.env['LORAFUSE_DEBUG'] = before;
    }
  });

  it('anything else is still reported as a bug', async () => {
    const c = captureIo();
    expect(reportError(new TypeError('x is undefined'), false, c.io)).toBe(2);
    await new Promise((r) => setImmediate(r));
    expect(c.err()).toContain('this is a bug in lorafuse');
  });
});
