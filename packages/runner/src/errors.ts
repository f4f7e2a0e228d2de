/**
 * Errors of the browser runner: `EnvironmentError`s of `@lorafuse/errors` with the runner's own
 * codes, so the CLI treats them like any other environment failure (exit code 2).
 */
import { EnvironmentError, type LorafuseErrorOptions } from '@lorafuse/errors';

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
  /** A transfer between the page and Node broke at the network level (no HTTP answer, or a cut body). */
  | 'PAGE_TRANSFER_FAILED'
  /** The page did not start, or a page call did not finish, within its time limit. */
  | 'PAGE_TIMEOUT';

/** How to get a browser; part of several hints. */
export const INSTALL_CHROMIUM_HINT =
  'Install Chromium (Debian/Ubuntu: `apt-get install chromium`; macOS: install Google Chrome or Chromium) ' +
  'or set CHROME_PATH to the path of a Chromium or Chrome executable.';

/** Options of {@link RunnerError}: a hint, the file or thing the error is about (e.g. the Chromium path), a cause. */
export type RunnerErrorOptions = LorafuseErrorOptions;

/** A failure of the machine's browser or GPU environment, with a stable `code`. */
export class RunnerError extends EnvironmentError {
  declare readonly code: RunnerErrorCode;
  declare readonly kind: 'environment';

  constructor(code: RunnerErrorCode, message: string, options: RunnerErrorOptions = {}) {
    super(code, message, options);
    // Set by hand rather than from the class name, which a bundler may rename.
    this.name = 'RunnerError';
  }

  /** Plain data for `--json` output (the shape of every `LorafuseError#toJSON`). */
  override toJSON(): { name: string; code: string; kind: 'environment'; message: string; hint?: string; subject?: string } {
    return { ...super.toJSON(), kind: this.kind };
  }
}

/** True when `err` is a {@link RunnerError}, optionally with the given code. */
export function isRunnerError(err: unknown, code?: RunnerErrorCode): err is RunnerError {
  return err instanceof RunnerError && (code === undefined || err.code === code);
}
