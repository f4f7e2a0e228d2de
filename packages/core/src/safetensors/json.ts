/**
 * A strict RFC 8259 JSON parser for safetensors headers and shard indexes.
 *
 * `JSON.parse` is not enough for these files: it keeps only the last of duplicate keys (the
 * safetensors README disallows duplicates), turns integers above 2^53 into nearby floats (the
 * reference reads sizes as u64, and overflow must be detected exactly), and accepts `1.0` or `1e2`
 * where the reference (serde_json into `usize`) rejects them. This parser keeps objects as ordered
 * entry lists and numbers as their source text.
 */

/** A parsed JSON value. Objects keep every entry in source order, duplicates included. */
export type JsonValue =
  | { readonly kind: 'object'; readonly entries: ReadonlyArray<readonly [string, JsonValue]> }
  | { readonly kind: 'array'; readonly items: readonly JsonValue[] }
  | { readonly kind: 'string'; readonly value: string }
  /** `text` is the number exactly as written. */
  | { readonly kind: 'number'; readonly text: string }
  | { readonly kind: 'boolean'; readonly value: boolean }
  | { readonly kind: 'null' };

/** A JSON syntax error at a UTF-16 code unit `position` of the text. */
export class JsonSyntaxError extends Error {
  readonly position: number;
  constructor(message: string, position: number) {
    super(`${message} at position ${position}`);
    this.name = 'JsonSyntaxError';
    this.position = position;
  }
}

/** Nesting limit, as serde_json's default recursion limit; keeps hostile headers off the call stack. */
export const JSON_MAX_DEPTH = 128;

const WS_SPACE = 0x20;
const WS_TAB = 0x09;
const WS_LF = 0x0a;
const WS_CR = 0x0d;

/**
 * Parses `text` as one JSON value with optional JSON whitespace (space, tab, LF, CR) around it.
 * Rejects lone surrogates in `\u` escapes (serde_json does too). Throws {@link JsonSyntaxError}.
 */
export function parseJsonStrict(text: string): JsonValue {
  let pos = 0;
  const n = text.length;

  const fail = (message: string, at = pos): never => {
    throw new JsonSyntaxError(message, at);
  };

  const skipWhitespace = (): void => {
    while (pos < n) {
      const c = text.charCodeAt(pos);
      if (c !== WS_SPACE && c !== WS_TAB && c !== WS_LF && c !== WS_CR) break;
      pos++;
    }
  };

  const expectLiteral = (word: string): void => {
    if (text.startsWith(word, pos)) pos += word.length;
    else fail('invalid literal');
  };

  const hex4 = (): number => {
    if (pos + 4 > n) fail('truncated \\u escape');
    let v = 0;
    for (let i = 0; i < 4; i++) {
      const c = text.charCodeAt(pos + i);
      let d: number;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if (c >= 0x41 && c <= 0x46) d = c - 0x37;
      else if (c >= 0x61 && c <= 0x66) d = c - 0x57;
      else return fail('invalid \\u escape', pos + i);
      v = (v << 4) | d;
    }
    pos += 4;
    return v;
  };

  const parseString = (): string => {
    // pos is at the opening quote.
    pos++;
    let out = '';
    let runStart = pos;
    for (;;) {
      if (pos >= n) fail('unterminated string');
      const c = text.charCodeAt(pos);
      if (c === 0x22) {
        out += text.slice(runStart, pos);
        pos++;
        return out;
      }
      if (c < 0x20) fail('control character in string');
      if (c !== 0x5c) {
        pos++;
        continue;
      }
      out += text.slice(runStart, pos);
      pos++;
      if (pos >= n) fail('unterminated escape');
      const e = text.charCodeAt(pos);
      pos++;
      switch (e) {
        case 0x22: out += '"'; break;
        case 0x5c: out += '\\'; break;
        case 0x2f: out += '/'; break;
        case 0x62: out += '\b'; break;
        case 0x66: out += '\f'; break;
        case 0x6e: out += '\n'; break;
        case 0x72: out += '\r'; break;
        case 0x74: out += '\t'; break;
        case 0x75: {
          const u = hex4();
          if (u >= 0xdc00 && u <= 0xdfff) fail('lone trailing surrogate in \\u escape', pos - 6);
          if (u >= 0xd800 && u <= 0xdbff) {
            if (text.charCodeAt(pos) !== 0x5c || text.charCodeAt(pos + 1) !== 0x75) fail('lone leading surrogate in \\u escape', pos - 6);
            pos += 2;
            const low = hex4();
            if (low < 0xdc00 || low > 0xdfff) fail('lone leading surrogate in \\u escape', pos - 12);
            out += String.fromCharCode(u, low);
          } else {
            out += String.fromCharCode(u);
          }
          break;
        }
        default:
          fail('invalid escape', pos - 1);
      }
      runStart = pos;
    }
  };

  const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

  const parseNumber = (): string => {
    const start = pos;
    if (text.charCodeAt(pos) === 0x2d) pos++;
    const first = text.charCodeAt(pos);
    if (first === 0x30) pos++;
    else if (first >= 0x31 && first <= 0x39) while (pos < n && isDigit(text.charCodeAt(pos))) pos++;
    else fail('invalid number');
    if (text.charCodeAt(pos) === 0x2e) {
      pos++;
      if (!isDigit(text.charCodeAt(pos))) fail('invalid number');
      while (pos < n && isDigit(text.charCodeAt(pos))) pos++;
    }
    const e = text.charCodeAt(pos);
    if (e === 0x65 || e === 0x45) {
      pos++;
      const s = text.charCodeAt(pos);
      if (s === 0x2b || s === 0x2d) pos++;
      if (!isDigit(text.charCodeAt(pos))) fail('invalid number');
      while (pos < n && isDigit(text.charCodeAt(pos))) pos++;
    }
    return text.slice(start, pos);
  };

  const parseValue = (depth: number): JsonValue => {
    if (depth > JSON_MAX_DEPTH) fail('nesting too deep');
    skipWhitespace();
    if (pos >= n) fail('unexpected end of input');
    const c = text.charCodeAt(pos);
    switch (c) {
      case 0x7b: {
        pos++;
        const entries: Array<readonly [string, JsonValue]> = [];
        skipWhitespace();
        if (text.charCodeAt(pos) === 0x7d) {
          pos++;
          return { kind: 'object', entries };
        }
        for (;;) {
          skipWhitespace();
          if (text.charCodeAt(pos) !== 0x22) fail('expected a string key');
          const key = parseString();
          skipWhitespace();
          if (text.charCodeAt(pos) !== 0x3a) fail("expected ':'");
          pos++;
          entries.push([key, parseValue(depth + 1)]);
          skipWhitespace();
          const d = text.charCodeAt(pos);
          pos++;
          if (d === 0x7d) return { kind: 'object', entries };
          if (d !== 0x2c) fail("expected ',' or '}'", pos - 1);
        }
      }
      case 0x5b: {
        pos++;
        const items: JsonValue[] = [];
        skipWhitespace();
        if (text.charCodeAt(pos) === 0x5d) {
          pos++;
          return { kind: 'array', items };
        }
        for (;;) {
          items.push(parseValue(depth + 1));
          skipWhitespace();
          const d = text.charCodeAt(pos);
          pos++;
          if (d === 0x5d) return { kind: 'array', items };
          if (d !== 0x2c) fail("expected ',' or ']'", pos - 1);
        }
      }
      case 0x22:
        return { kind: 'string', value: parseString() };
      case 0x74:
        expectLiteral('true');
        return { kind: 'boolean', value: true };
      case 0x66:
        expectLiteral('false');
        return { kind: 'boolean', value: false };
      case 0x6e:
        expectLiteral('null');
        return { kind: 'null' };
      default:
        return { kind: 'number', text: parseNumber() };
    }
  };

  const value = parseValue(0);
  skipWhitespace();
  if (pos < n) fail('trailing characters after the JSON value');
  return value;
}

/** Short description of a JSON value's type for error messages ("a string", "an array", …). */
export function describeJson(value: JsonValue): string {
  switch (value.kind) {
    case 'object':
      return 'an object';
    case 'array':
      return 'an array';
    case 'string':
      return 'a string';
    case 'number':
      return `the number ${value.text.length > 40 ? `${value.text.slice(0, 40)}…` : value.text}`;
    case 'boolean':
      return value.value ? 'true' : 'false';
    case 'null':
      return 'null';
  }
}

/** True if `text` is a JSON number written as a non-negative integer without sign, fraction or exponent. */
export function isPlainUnsignedInteger(text: string): boolean {
  return /^(?:0|[1-9][0-9]*)$/.test(text);
}

/** The first key that appears twice in `entries`, or undefined. */
export function firstDuplicateKey(entries: ReadonlyArray<readonly [string, unknown]>): string | undefined {
  const seen = new Set<string>();
  for (const [key] of entries) {
    if (seen.has(key)) return key;
    seen.add(key);
  }
  return undefined;
}
