import { describe, expect, it } from 'vitest';
import { terminalJson, terminalLines, terminalSafe } from './terminal-text.js';

/** Every character a terminal acts on or reorders by. */
const HOSTILE = ['\x00', '\x07', '\x08', '\t', '\n', '\x0b', '\r', '\x1b', '\x7f', '\x80', '\x9b', '\x9d', '\u061c', '\u200e', '\u200f', '\u2028', '\u2029', '\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069'];
const RAW = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

describe('terminal text', () => {
  it('writes control and bidi characters as visible escapes, leaving the rest', () => {
    expect(terminalSafe('h.0.\x1b[2Jattn')).toBe('h.0.\\x1b[2Jattn');
    expect(terminalSafe('evil\u202eniwt')).toBe('evil\\u202eniwt');
    expect(terminalSafe('a\nb\tc\rd')).toBe('a\\nb\\tc\\rd');
    expect(terminalSafe('\x9b31m\u2028')).toBe('\\x9b31m\\u2028');
    expect(terminalSafe('C:\\models\\gpt2 — é ✓ 模型')).toBe('C:\\models\\gpt2 — é ✓ 模型');
    for (const c of HOSTILE) expect(terminalSafe(`x${c}y`)).not.toMatch(RAW);
  });

  it('keeps only its own line breaks between lines', () => {
    expect(terminalLines(['one', 'two\nforged: verified', ''])).toBe('one\ntwo\\nforged: verified\n\n');
  });

  it('JSON stays valid and parses back to the same value, with nothing raw in it', () => {
    const value = { name: HOSTILE.join(''), nested: [{ k: `\u202e${'\x1b'}]0;title\x07` }], n: 1 };
    const text = terminalJson(value);
    expect(text.endsWith('}\n')).toBe(true);
    // The pretty-printing's own newlines aside.
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/);
    expect(JSON.parse(text)).toStrictEqual(value);
    expect(JSON.parse(terminalJson({ x: Infinity }, (_k, v) => (v === Infinity ? 'inf' : v)))).toStrictEqual({ x: 'inf' });
  });
});
