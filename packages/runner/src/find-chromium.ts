import { execFile } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { INSTALL_CHROMIUM_HINT, RunnerError } from './errors.js';

/** Where {@link findChromium} found the browser. */
export interface ChromiumLocation {
  /** Absolute path of the executable. */
  path: string;
  /** `'CHROME_PATH'` when taken from the environment variable, else `'known-path'`. */
  source: 'CHROME_PATH' | 'known-path';
}

/** Install locations searched, in order, when `CHROME_PATH` is not set. */
export const KNOWN_CHROMIUM_PATHS: readonly string[] = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
  '/usr/bin/google-chrome-stable',
  '/snap/bin/chromium',
  '/opt/google/chrome/chrome',
  '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome',
  '/Applications/Chromium.app/Contents/MacOS/Chromium',
  '/Applications/Google Chrome Canary.app/Contents/MacOS/Google Chrome Canary',
];

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds a Chromium or Chrome executable: `CHROME_PATH` first (an error if it is set but does not
 * name an executable file), then {@link KNOWN_CHROMIUM_PATHS} (or `candidates`).
 *
 * @throws RunnerError `BROWSER_NOT_FOUND`, with a hint on how to install Chromium.
 */
export function findChromium(
  env: Record<string, string | undefined> = process.env,
  candidates: readonly string[] = KNOWN_CHROMIUM_PATHS,
): ChromiumLocation {
  const fromEnv = env['CHROME_PATH'];
  if (fromEnv !== undefined && fromEnv !== '') {
    if (isExecutableFile(fromEnv)) return { path: fromEnv, source: 'CHROME_PATH' };
    throw new RunnerError('BROWSER_NOT_FOUND', `CHROME_PATH is set to ${JSON.stringify(fromEnv)}, which is not an executable file.`, {
      subject: fromEnv,
      hint: `Point CHROME_PATH at a Chromium or Chrome executable, or unset it to search the usual places. ${INSTALL_CHROMIUM_HINT}`,
    });
  }
  for (const path of candidates) {
    if (isExecutableFile(path)) return { path, source: 'known-path' };
  }
  throw new RunnerError(
    'BROWSER_NOT_FOUND',
    `No Chromium or Chrome executable found (CHROME_PATH is not set; searched ${candidates.join(', ')}). ` +
      'lorafuse runs its WebGPU kernels in headless Chromium.',
    { hint: INSTALL_CHROMIUM_HINT },
  );
}

/**
 * Asks the executable for its version (`<path> --version`), e.g. `"Chromium 156.0.8078.108 built on
 * Debian GNU/Linux 12 (bookworm)"`. Only the first line of stdout is returned; wrapper scripts' stderr
 * noise is ignored.
 *
 * @throws RunnerError `BROWSER_LAUNCH_FAILED` when the executable cannot be run.
 */
export function chromiumVersion(path: string, timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(path, ['--version'], { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout) => {
      const line = stdout.split('\n').find((l) => l.trim() !== '')?.trim();
      if (line !== undefined && /\d+\.\d+/.test(line)) {
        resolve(line);
        return;
      }
      reject(
        new RunnerError('BROWSER_LAUNCH_FAILED', `Could not run ${JSON.stringify(path)} --version${err ? `: ${err.message}` : ''}.`, {
          subject: path,
          hint: INSTALL_CHROMIUM_HINT,
          cause: err ?? undefined,
        }),
      );
    });
  });
}
