/**
 * The base of every error lorafuse throws on purpose. Every failure a user can cause or meet carries
 * a stable `code`, names the file, tensor or field involved in its message, and (where there is one)
 * says what to do in `hint`. The CLI maps `kind` to an exit code in one place (see `exitCodeFor`).
 */

/** What kind of failure this is; decides the exit code. */
export type ErrorKind =
  /** Bad command-line usage (exit 2). */
  | 'usage'
  /** Bad or unsupported input files (exit 2). */
  | 'input'
  /** The machine lacks something: browser, WebGPU adapter, disk space (exit 2). */
  | 'environment'
  /** The written output does not match what was meant, or two things compared differ (exit 1). */
  | 'verification';

/** Options of every {@link LorafuseError}. */
export interface LorafuseErrorOptions {
  /** What the user can do about it. */
  hint?: string;
  /** The file, tensor or field the error is about. */
  subject?: string;
  cause?: unknown;
}

/** Base class of every error lorafuse throws on purpose. */
export class LorafuseError extends Error {
  readonly code: string;
  readonly kind: ErrorKind;
  readonly hint: string | undefined;
  readonly subject: string | undefined;

  constructor(kind: ErrorKind, code: string, message: string, options: LorafuseErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.kind = kind;
    this.code = code;
    this.hint = options.hint;
    this.subject = options.subject;
  }

  /** Plain data for `--json` output. */
  toJSON(): { name: string; code: string; kind: ErrorKind; message: string; hint?: string; subject?: string } {
    return {
      name: this.name,
      code: this.code,
      kind: this.kind,
      message: this.message,
      ...(this.hint === undefined ? {} : { hint: this.hint }),
      ...(this.subject === undefined ? {} : { subject: this.subject }),
    };
  }
}
