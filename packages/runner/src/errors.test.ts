import { EnvironmentError, exitCodeFor, LorafuseError } from '@lorafuse/errors';
import { describe, expect, it } from 'vitest';
import { isRunnerError, RunnerError } from './errors.js';

describe('RunnerError', () => {
  it('is an EnvironmentError named RunnerError, with exit code 2', () => {
    const e = new RunnerError('DEVICE_LOST', 'lost');
    expect(e).toBeInstanceOf(EnvironmentError);
    expect(e).toBeInstanceOf(LorafuseError);
    expect(e).toMatchObject({ name: 'RunnerError', kind: 'environment', code: 'DEVICE_LOST', message: 'lost' });
    expect(exitCodeFor(e)).toBe(2);
    expect(isRunnerError(e)).toBe(true);
    expect(isRunnerError(e, 'DEVICE_LOST')).toBe(true);
    expect(isRunnerError(e, 'PAGE_CRASHED')).toBe(false);
    expect(isRunnerError(new EnvironmentError('DEVICE_LOST', 'lost'))).toBe(false);
  });

  it('toJSON gives name, code, kind, message, and hint / subject only when set', () => {
    expect(new RunnerError('BROWSER_NOT_FOUND', 'none', { hint: 'Install it.', subject: '/usr/bin/chromium', cause: new Error('x') }).toJSON()).toStrictEqual({
      name: 'RunnerError',
      code: 'BROWSER_NOT_FOUND',
      kind: 'environment',
      message: 'none',
      hint: 'Install it.',
      subject: '/usr/bin/chromium',
    });
    expect(JSON.stringify(new RunnerError('PAGE_TIMEOUT', 'slow'))).toBe('{"name":"RunnerError","code":"PAGE_TIMEOUT","kind":"environment","message":"slow"}');
  });
});
