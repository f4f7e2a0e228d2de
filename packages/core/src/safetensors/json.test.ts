import { describe, expect, it } from 'vitest';
import { firstDuplicateKey, isPlainUnsignedInteger, JSON_MAX_DEPTH, JsonSyntaxError, parseJsonStrict } from './json.js';

describe('parseJsonStrict', () => {
  it('keeps duplicate keys in order and numbers as written', () => {
    expect(parseJsonStrict(' {"a":1,"a":18446744073709551617,"b":[1.50,-0e+1]}\n')).toEqual({
      kind: 'object',
      entries: [
        ['a', { kind: 'number', text: '1' }],
        ['a', { kind: 'number', text: '18446744073709551617' }],
        [
          'b',
          {
            kind: 'array',
            items: [
              { kind: 'number', text: '1.50' },
              { kind: 'number', text: '-0e+1' },
            ],
          },
        ],
      ],
    });
  });

  it('decodes escapes like JSON.parse', () => {
    const text = '"\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\uD83D\\uDE00 é"';
    expect(parseJsonStrict(text)).toEqual({ kind: 'string', value: JSON.parse(text) as string });
  });

  it('parses the same values JSON.parse does for ordinary documents', () => {
    const text = '{"x":[true,false,null,{"y":"z"},[],{}],"n":-12.5e-3}';
    const toPlain = (v: ReturnType<typeof parseJsonStrict>): unknown => {
      switch (v.kind) {
        case 'object':
          return Object.fromEntries(v.entries.map(([k, x]) => [k, toPlain(x)]));
        case 'array':
          return v.items.map(toPlain);
        case 'number':
          return Number(v.text);
        case 'null':
          return null;
        default:
          return v.value;
      }
    };
    expect(toPlain(parseJsonStrict(text))).toEqual(JSON.parse(text));
  });

  it.each([
    ['', 'empty input'],
    ['{"a":1,}', 'trailing comma'],
    ['{a:1}', 'unquoted key'],
    ["{'a':1}", 'single quotes'],
    ['01', 'leading zero'],
    ['1.', 'bare decimal point'],
    ['+1', 'plus sign'],
    ['.5', 'no integer part'],
    ['NaN', 'NaN'],
    ['"\\x41"', 'invalid escape'],
    ['"\\ud800"', 'lone leading surrogate'],
    ['"\\udc00"', 'lone trailing surrogate'],
    ['"\\ud800\\u0041"', 'leading surrogate then a non-surrogate'],
    ['"a\tb"', 'raw tab in a string'],
    ['\u00a0{}', 'non-JSON whitespace'],
    ['{}{}', 'two values'],
    ['tru', 'truncated literal'],
  ])('rejects %j (%s)', (text) => {
    expect(() => parseJsonStrict(text)).toThrow(JsonSyntaxError);
  });

  it('limits nesting depth', () => {
    expect(() => parseJsonStrict('['.repeat(JSON_MAX_DEPTH) + ']'.repeat(JSON_MAX_DEPTH))).not.toThrow();
    expect(() => parseJsonStrict('['.repeat(JSON_MAX_DEPTH + 2) + ']'.repeat(JSON_MAX_DEPTH + 2))).toThrow(/nesting too deep/);
    expect(() => parseJsonStrict('['.repeat(100_000))).toThrow(JsonSyntaxError);
  });
});

describe('helpers', () => {
  it('isPlainUnsignedInteger', () => {
    expect(['0', '7', '18446744073709551616'].every(isPlainUnsignedInteger)).toBe(true);
    expect(['-0', '01', '1.0', '1e2', '-1', ''].some(isPlainUnsignedInteger)).toBe(false);
  });

  it('firstDuplicateKey', () => {
    expect(firstDuplicateKey([['a', 1], ['b', 2], ['a', 3]])).toBe('a');
    expect(firstDuplicateKey([['a', 1], ['b', 2]])).toBeUndefined();
  });
});
