import { describe, expect, it } from 'vitest';
import { integerOption, parseCommandArgs } from './args.js';

const parse = (argv: string[]) => parseCommandArgs('logits', argv, { top: { type: 'string' }, ids: { type: 'string' } });

describe('integerOption', () => {
  it('takes whole numbers of at least min, and the fallback when absent', () => {
    expect(integerOption('logits', parse(['--top', '3']), 'top', 5, 1)).toBe(3);
    expect(integerOption('logits', parse([]), 'top', 5, 1)).toBe(5);
    expect(integerOption('diff', parse(['--top', '0']), 'top', 10, 0)).toBe(0);
  });

  it('refuses fractions, values below min, and text, naming the option', () => {
    for (const [text, min] of [['1.5', 0], ['0', 1], ['x', 0], ['', 0], ['1e400', 0]] as const) {
      expect(() => integerOption('logits', parse([`--top=${text}`]), 'top', 5, min), text).toThrow(
        expect.objectContaining({ code: 'BAD_ARGUMENTS', subject: '--top', message: `lorafuse logits: --top must be a whole number >= ${min}, got "${text}"` }),
      );
    }
  });
});

describe('parseCommandArgs', () => {
  it('words a parser error on one line', () => {
    expect(() => parse(['--ids', '-1'])).toThrow(expect.objectContaining({ code: 'BAD_ARGUMENTS', message: expect.not.stringContaining('\n') }));
  });
});
