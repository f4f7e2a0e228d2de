/**
 * Typed errors. Every failure a user can cause or meet carries a stable `code`, names the file,
 * tensor or field involved in its message, and (where there is one) says what to do in `hint`.
 * The CLI maps `kind` to an exit code in one place (see `exitCodeFor`).
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

/** Wrong command-line arguments. */
export class UsageError extends LorafuseError {
  constructor(code: string, message: string, options?: LorafuseErrorOptions) {
    super('usage', code, message, options);
  }
}

/** An input file (checkpoint, adapter, config) is malformed or not supported. */
export class InputError extends LorafuseError {
  constructor(code: string, message: string, options?: LorafuseErrorOptions) {
    super('input', code, message, options);
  }
}

/** Something the machine should provide is missing or broken (browser, GPU adapter, disk). */
export class EnvironmentError extends LorafuseError {
  constructor(code: string, message: string, options?: LorafuseErrorOptions) {
    super('environment', code, message, options);
  }
}

/** The output does not match what was meant. */
export class VerificationError extends LorafuseError {
  constructor(code: string, message: string, options?: LorafuseErrorOptions) {
    super('verification', code, message, options);
  }
}

/** Exit code convention (GNU diff/cmp): 0 ok, 1 verification failed / differs, 2 usage or input error. */
export function exitCodeFor(error: unknown): 1 | 2 {
  if (error instanceof LorafuseError && error.kind === 'verification') return 1;
  return 2;
}
