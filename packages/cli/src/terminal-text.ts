/**
 * Text for a terminal from values a hostile file controls. Tensor names, config strings, paths and
 * error messages can hold escape sequences (recolour or clear the screen, set the window title),
 * carriage returns and newlines (forge lines), and bidi overrides (show text in another order than
 * it is). Every line lorafuse prints goes through {@link terminalLines}, every JSON document through
 * {@link terminalJson}; only the line breaks between lines are lorafuse's own.
 */

/**
 * C0 controls (tab and newline included: inside a value they are not our formatting), DEL, C1
 * controls, the bidi embeddings, overrides, isolates and marks, and the Unicode line and paragraph
 * separators.
 */
const UNSAFE_IN_TEXT = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** What JSON.stringify leaves raw among those (it escapes C0 itself). */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const SHORT: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

const hex = (c: string, digits: number) => c.charCodeAt(0).toString(16).padStart(digits, '0');

/**
 * One line made safe to show: each unsafe character becomes a visible escape (`\x1b`, `\n`,
 * `\u202e`). Backslashes are left as they are, so ordinary paths and patterns read unchanged.
 */
export function terminalSafe(text: string): string {
  return text.replace(UNSAFE_IN_TEXT, (c) => SHORT[c] ?? (c.charCodeAt(0) <= 0xff ? `\\x${hex(c, 2)}` : `\\u${hex(c, 4)}`));
}

/** Lines of human output as text: each made {@link terminalSafe}, each ended by a newline. */
export function terminalLines(lines: readonly string[]): string {
  return lines.map((line) => `${terminalSafe(line)}\n`).join('');
}

/**
 * `JSON.stringify(value, replacer, 2)` plus a newline, with C1 controls, DEL, bidi characters and
 * line/paragraph separators written as `\uXXXX` too: the same JSON value, harmless on a terminal.
 * Those characters can only occur inside JSON strings, where the escape means the same character.
 */
export function terminalJson(value: unknown, replacer?: (key: string, value: unknown) => unknown): string {
  return `${JSON.stringify(value, replacer, 2).replace(UNSAFE_IN_JSON, (c) => `\\u${hex(c, 4)}`)}\n`;
}
