import { describe, expect, it } from 'vitest';
import { EnvironmentError, exitCodeFor, InputError, LorafuseError, UsageError, VerificationError } from './index.js';

describe('LorafuseError', () => {
  it('carries kind, code, hint, subject and cause, and is named after its class', () => {
    const cause = new Error('ENOENT');
    const e = new InputError('CONFIG_JSON', 'config.json is not valid JSON', { hint: 'Fix it.', subject: 'config.json', cause });
    expect(e).toBeInstanceOf(LorafuseError);
    expect(e).toBeInstanceOf(Error);
    expect(e).toMatchObject({ name: 'InputError', kind: 'input', code: 'CONFIG_JSON', message: 'config.json is not valid JSON', hint: 'Fix it.', subject: 'config.json' });
    expect(e.cause).toBe(cause);
    expect(new UsageError('X', 'm')).toMatchObject({ name: 'UsageError', kind: 'usage' });
    expect(new EnvironmentError('X', 'm')).toMatchObject({ name: 'EnvironmentError', kind: 'environment' });
    expect(new VerificationError('X', 'm')).toMatchObject({ name: 'VerificationError', kind: 'verification' });
  });

  it('toJSON gives name, code, kind, message, and hint / subject only when set', () => {
    expect(new EnvironmentError('DISK_FULL', 'no space', { hint: 'Free some.', subject: '/out', cause: new Error('x') }).toJSON()).toStrictEqual({
      name: 'EnvironmentError',
      code: 'DISK_FULL',
      kind: 'environment',
      message: 'no space',
      hint: 'Free some.',
      subject: '/out',
    });
    expect(new UsageError('BAD_ARGUMENTS', 'bad').toJSON()).toStrictEqual({ name: 'UsageError', code: 'BAD_ARGUMENTS', kind: 'usage', message: 'bad' });
    expect(JSON.parse(JSON.stringify(new InputError('C', 'm', { subject: 's' })))).toStrictEqual({ name: 'InputError', code: 'C', kind: 'input', message: 'm', subject: 's' });
  });
});

describe('exitCodeFor', () => {
  it('is 1 for verification failures and 2 for everything else', () => {
    expect(exitCodeFor(new VerificationError('OUTPUT_HEADER_MISMATCH', 'm'))).toBe(1);
    expect(exitCodeFor(new UsageError('X', 'm'))).toBe(2);
    expect(exitCodeFor(new InputError('X', 'm'))).toBe(2);
    expect(exitCodeFor(new EnvironmentError('X', 'm'))).toBe(2);
    expect(exitCodeFor(new Error('plain'))).toBe(2);
    expect(exitCodeFor('not an error')).toBe(2);
  });
});
