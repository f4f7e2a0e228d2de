/**
 * Errors of the browser runner. They mirror `EnvironmentError` of `@lorafuse/core` (same `code`,
 * `kind`, `hint` fields and `toJSON` shape) without importing it, so that the runner builds before
 * core. The CLI maps `kind: 'environment'` to exit code 2 like any other environment error.
 */

/** Stable codes of {@link RunnerError}. */
export type RunnerErrorCode =
  /** No Chromium executable found, or `CHROME_PATH` names something that is not executable. */
  | 'BROWSER_NOT_FOUND'
  /** Chromium was found but could not be started or connected to. */
  | 'BROWSER_LAUNCH_FAILED'
  /** The page started but `navigator.gpu` gave no adapter or no device. */
  | 'NO_WEBGPU_ADAPTER'
  /** The page's `GPUDevice` was lost while the runner was in use. */
  | 'DEVICE_LOST'
  /** The renderer process crashed or Chromium went away. */
  | 'PAGE_CRASHED'
  /** The page did not start, or a page call did not finish, within its time limit. */
  | 'PAGE_TIMEOUT';

/** How to get a browser; part of several hints. */
export const INSTALL_CHROMIUM_HINT =
  'Install Chromium (Debian/Ubuntu: `apt-get install chromium`; macOS: install Google Chrome or Chromium) ' +
  'or set CHROME_PATH to the path of a Chromium or Chrome executable.';

/** Options of {@link RunnerError}. */
export interface RunnerErrorOptions {
  /** What the user can do about it. */
  hint?: string;
  /** The file or thing the error is about (e.g. the Chromium path). */
  subject?: string;
  cause?: unknown;
}

/** A failure of the machine's browser or GPU environment, with a stable `code`. */
export class RunnerError extends Error {
  readonly code: RunnerErrorCode;
  readonly kind = 'environment' as const;
  readonly hint: string | undefined;
  readonly subject: string | undefined;

  constructor(code: RunnerErrorCode, message: string, options: RunnerErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RunnerError';
    this.code = code;
    this.hint = options.hint;
    this.subject = options.subject;
  }

  /** Plain data for `--json` output (same shape as core's `LorafuseError#toJSON`). */
  toJSON(): { name: string; code: string; kind: 'environment'; message: string; hint?: string; subject?: string } {
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

/** True when `err` is a {@link RunnerError}, optionally with the given code. */
export function isRunnerError(err: unknown, code?: RunnerErrorCode): err is RunnerError {
  return err instanceof RunnerError && (code === undefined || err.code === code);
}
