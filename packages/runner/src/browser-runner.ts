import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { INSTALL_CHROMIUM_HINT, RunnerError } from './errors.js';
import { chromiumVersion as readChromiumVersion, findChromium } from './find-chromium.js';
import { REPORT_BINDING, TRANSFER_BROKEN, type AdapterReport, type PageReport } from './page/protocol.js';
import { startRunnerServer, type RunnerServer } from './server.js';
import { literalPattern, removeStaleScratchDirs, SCRATCH_PREFIX } from './scratch-dirs.js';

/**
 * Flags that give headless Chromium a WebGPU adapter (SwiftShader on machines without a GPU).
 *
 * `disable_robustness` turns off Dawn's bounds clamping of every storage-buffer access: 1.3-2x
 * faster kernels on SwiftShader (packages/bench). The runner page only runs lorafuse's own kernels,
 * which bounds-check every index themselves. A later `--enable-dawn-features=` flag in `extraArgs`
 * replaces this one (Chromium keeps the last), so repeat `disable_robustness` there if needed.
 */
export const CHROMIUM_WEBGPU_ARGS: readonly string[] = [
  '--enable-unsafe-webgpu',
  '--enable-dawn-features=disable_robustness',
  '--enable-unsafe-swiftshader',
  '--enable-features=Vulkan',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  '--disable-dev-shm-usage',
];

/** Which WebGPU adapter Chromium should use. */
export type WebGpuAdapterChoice =
  /** SwiftShader (CPU Vulkan): works on any machine, deterministic, slow. The default. */
  | 'swiftshader'
  /** Chromium's own choice (a real GPU when the machine has a working driver). */
  | 'auto';

/** Options of {@link startBrowserRunner}. */
export interface BrowserRunnerOptions {
  /** The page bundle (from {@link bundlePage}) served as the runner page's only script. */
  pageBundlePath: string;
  /** Default time limit of one {@link BrowserRunner.call}, in ms (default 300 000). */
  timeoutMs?: number;
  /** Time limit for launching Chromium and getting a WebGPU device, in ms (default 90 000). */
  startupTimeoutMs?: number;
  /** Chromium executable; default {@link findChromium}(env). */
  chromiumPath?: string;
  /**
   * WebGPU adapter (default: `env.LORAFUSE_WEBGPU_ADAPTER` when it is `auto` or `swiftshader`, else
   * `'swiftshader'`).
   */
  webgpuAdapter?: WebGpuAdapterChoice;
  /** Environment used to find Chromium and read `LORAFUSE_WEBGPU_ADAPTER` (default `process.env`). */
  env?: Record<string, string | undefined>;
  /** More Chromium flags, after `baseArgs`. */
  extraArgs?: string[];
  /** The WebGPU flags (default {@link CHROMIUM_WEBGPU_ARGS}); replaced only to test failures. */
  baseArgs?: readonly string[];
  /**
   * Receives page console errors/warnings, uncaught page exceptions and WebGPU uncaptured errors,
   * one line each. Default: written to stderr with a `[lorafuse page]` prefix.
   */
  onLog?: (line: string) => void;
  /** Close the runner on process exit, SIGINT and SIGTERM (default true). */
  handleProcessExit?: boolean;
}

/** What WebGPU the page got. `limits` are the adapter's; `deviceLimits` the device's as created. */
export type AdapterInfo = AdapterReport;

/** Options of one {@link BrowserRunner.call}. */
export interface CallOptions {
  /** Time limit in ms (default: the runner's `timeoutMs`). */
  timeoutMs?: number;
}

/** A running headless Chromium with a WebGPU device, its runner page and its byte server. */
export interface BrowserRunner {
  /** The runner page (puppeteer). Send only small control data through it. */
  readonly page: Page;
  /** The token-guarded server: offer tensor byte ranges, expect uploads. */
  readonly server: RunnerServer;
  readonly adapterInfo: AdapterInfo;
  readonly chromiumPath: string;
  /** `chromium --version` output, e.g. `Chromium 156.0.8078.108 built on Debian ...`. */
  readonly chromiumVersion: string;
  /** The temporary Chromium profile directory (removed, with Chromium's TMPDIR beside it, by {@link close}). */
  readonly userDataDir: string;
  /**
   * Calls `globalThis.lorafuse[fnName](args)` in the page and returns its (JSON) result. `args` must be
   * small JSON: URLs, shapes, options, never tensor bytes.
   *
   * @throws RunnerError `PAGE_TIMEOUT`, `PAGE_CRASHED` or `DEVICE_LOST`; the page's own error otherwise.
   */
  call<T = unknown>(fnName: string, args?: unknown, options?: CallOptions): Promise<T>;
  /** Whether {@link close} was called. */
  readonly closed: boolean;
  /** Kills Chromium, stops the server and removes the temporary profile. Idempotent. */
  close(): Promise<void>;
}

function defaultLog(line: string): void {
  process.stderr.write(`[lorafuse page] ${line}\n`);
}

/** What to do when Chromium or its page went away on their own (every runner error carries a hint). */
const CRASHED_HINT = 'Something killed it, or it crashed (out of memory?); run again.';

/**
 * A page function's rejection as Node reports it: a transfer the network broke is the environment's
 * (a `RunnerError`); any other error is the page's own and passes through as it is.
 */
function pageCallError(err: unknown): unknown {
  const message = err instanceof Error ? err.message : String(err);
  const at = message.indexOf(TRANSFER_BROKEN);
  if (at < 0) return err;
  // The page's message goes on with its stack (frames that name the server's secret URL): one line.
  const what = message.slice(at + TRANSFER_BROKEN.length).split('\n', 1)[0];
  return new RunnerError('PAGE_TRANSFER_FAILED', `The runner page lost its connection to lorafuse: ${what}.`, {
    hint: "Chromium's network service may have crashed or been killed; run again.",
    cause: err,
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

/** Close functions of every runner started in this process and not yet closed (starting ones too). */
const liveRunners = new Set<() => Promise<void>>();

/**
 * Closes every browser runner of this process, including one still starting: for a program's own
 * Ctrl-C handler, which must not exit before the browsers and their temporary profiles are gone.
 */
export async function closeAllBrowserRunners(): Promise<void> {
  await Promise.allSettled([...liveRunners].map((close) => close()));
}

/**
 * Launches headless Chromium with WebGPU, serves and opens the runner page (whose bundle must call
 * `startPage` of `@lorafuse/runner/page`), and waits until the page has its `GPUDevice`.
 * One runner per CLI run; always `close()` it (it is also closed on exit, SIGINT and SIGTERM).
 *
 * @throws RunnerError `BROWSER_NOT_FOUND`, `BROWSER_LAUNCH_FAILED`, `NO_WEBGPU_ADAPTER`,
 *   `PAGE_TIMEOUT` or `PAGE_CRASHED`; nothing is left running after a failed start.
 */
export async function startBrowserRunner(options: BrowserRunnerOptions): Promise<BrowserRunner> {
  const env = options.env ?? process.env;
  const timeoutMs = options.timeoutMs ?? 300_000;
  const startupTimeoutMs = options.startupTimeoutMs ?? 90_000;
  const log = options.onLog ?? defaultLog;
  const envAdapter = env['LORAFUSE_WEBGPU_ADAPTER'];
  const adapterChoice: WebGpuAdapterChoice =
    options.webgpuAdapter ?? (envAdapter === 'auto' || envAdapter === 'swiftshader' ? envAdapter : 'swiftshader');
  const chromiumPath = options.chromiumPath ?? findChromium(env).path;
  // Loading puppeteer (~0.2 s; not at the top of this module, so that runs which never start a
  // browser do not pay for it) overlaps `chromium --version` and the server start.
  const puppeteerLoad = import('puppeteer-core');
  puppeteerLoad.catch(() => {}); // awaited below, after the version check that explains most failures
  // The version is asked while the browser starts, not before (through Debian's wrapper script it
  // costs 0.2-0.4 s). A program that is not Chromium fails the check, and since launched as a
  // browser it may never answer, its launch is then aborted rather than waited out.
  const versionCheck = readChromiumVersion(chromiumPath);
  versionCheck.catch(() => {}); // awaited below
  const abortLaunch = new AbortController();
  let version = 'version not known yet';

  // One directory holds the profile and Chromium's own TMPDIR: a browser killed mid-start leaves
  // org.chromium.* scratch directories in its TMPDIR, and this way they go with the profile.
  // What SIGKILLed runs left behind goes meanwhile (their Chromium exits with its pipe; the profile stays).
  void removeStaleScratchDirs(tmpdir());
  const scratchDir = await mkdtemp(join(tmpdir(), SCRATCH_PREFIX)).catch((err: NodeJS.ErrnoException) => {
    throw new RunnerError('BROWSER_LAUNCH_FAILED', `Could not make a directory for Chromium's profile in ${tmpdir()}: ${err.code ?? err.message}.`, {
      subject: tmpdir(),
      hint: 'The profile (and Chromium\'s scratch files) go in TMPDIR: point TMPDIR at a writable directory with some free space.',
      cause: err,
    });
  });
  const userDataDir = join(scratchDir, 'profile');
  const chromiumTmp = join(scratchDir, 'tmp');
  await Promise.all([mkdir(userDataDir), mkdir(chromiumTmp)]);
  let server: RunnerServer | undefined;
  let browser: Browser | undefined;
  let closing: Promise<void> | undefined;
  let fatal: RunnerError | undefined;
  // The launch in flight, so that a close() during startup (Ctrl-C) still finds and ends the browser.
  let launching: Promise<Browser> | undefined;
  const fatalListeners = new Set<(err: Error) => void>();

  const fail = (err: RunnerError): void => {
    if (closing !== undefined || fatal !== undefined) return;
    fatal = err;
    for (const listener of [...fatalListeners]) listener(err);
  };

  const killGroup = (b: Browser | undefined): void => {
    const proc = b?.process();
    try {
      // The whole process group (puppeteer starts Chromium as a group leader): a GPU, renderer or
      // zygote process still alive would keep writing into the profile and its TMPDIR while they
      // are being removed.
      if (proc?.pid !== undefined && process.platform !== 'win32') process.kill(-proc.pid, 'SIGKILL');
      else proc?.kill('SIGKILL');
    } catch {
      try {
        proc?.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  const killByScratchDir = (): void => {
    if (process.platform === 'win32') return;
    try {
      // pkill takes a regular expression: the path's own characters (a '.' or '+' in TMPDIR) match literally.
      execFileSync('pkill', ['-KILL', '-f', literalPattern(scratchDir)], { stdio: 'ignore', timeout: 2_000 });
    } catch {
      // none left (pkill exits 1), or no pkill: nothing more to do on exit
    }
  };
  const killNow = (): void => {
    killGroup(browser);
    // Still launching (no process handle yet): the only Chromium started with this scratch directory
    // is ours. Left alive, it would recreate the profile after it is removed.
    if (browser === undefined && launching !== undefined) killByScratchDir();
    try {
      rmSync(scratchDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
    } catch {
      // best effort on exit
    }
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    void close().finally(() => {
      // Re-raise the signal when nobody else handles it, so the process ends as it would have.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  };
  const onSigint = (): void => onSignal('SIGINT');
  const onSigterm = (): void => onSignal('SIGTERM');
  const handleExit = options.handleProcessExit ?? true;
  if (handleExit) {
    process.on('exit', killNow);
    process.once('SIGINT', onSigint);
    process.once('SIGTERM', onSigterm);
  }

  function close(): Promise<void> {
    closing ??= (async () => {
      if (handleExit) {
        // The exit hook stays until the close is done: a process that exits during it (a signal
        // handler's time ran out) still kills the browser and removes the profile.
        process.off('SIGINT', onSigint);
        process.off('SIGTERM', onSigterm);
      }
      const closedErr = new Error('The browser runner was closed.');
      for (const listener of [...fatalListeners]) listener(closedErr);
      if (browser === undefined && launching !== undefined) browser = await launching.catch(() => undefined);
      if (browser === undefined && launching !== undefined) killByScratchDir();
      if (browser !== undefined) {
        // Killed, not closed through DevTools: the profile is scratch, so nothing is lost, and a
        // graceful close cost ~0.35 s at the end of every run. The wait for the main process keeps
        // it from writing into the profile while that is removed (its children go with the group).
        const proc = browser.process();
        const exited = proc === null || proc.exitCode !== null || proc.signalCode !== null ? Promise.resolve() : new Promise<void>((resolve) => proc.once('exit', () => resolve()));
        killGroup(browser);
        await withTimeout(exited, 10_000, () => new Error('Chromium did not exit')).catch(() => {});
      }
      await server?.close();
      await rm(scratchDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
      if (handleExit) process.off('exit', killNow);
      liveRunners.delete(close);
    })();
    return closing;
  }
  liveRunners.add(close);

  try {
    server = await startRunnerServer({ pageBundlePath: options.pageBundlePath });
    const args = [
      ...(options.baseArgs ?? CHROMIUM_WEBGPU_ARGS),
      ...(adapterChoice === 'swiftshader' ? ['--use-webgpu-adapter=swiftshader'] : []),
      ...(options.extraArgs ?? []),
    ];
    try {
      if (closing !== undefined) throw new Error('The browser runner was closed during startup.');
      const { default: puppeteer } = await puppeteerLoad;
      if (closing !== undefined) throw new Error('The browser runner was closed during startup.');
      launching = puppeteer.launch({
        signal: abortLaunch.signal,
        executablePath: chromiumPath,
        headless: true,
        args,
        userDataDir,
        env: { ...process.env, TMPDIR: chromiumTmp },
        pipe: true, // DevTools over a pipe: no debugging port is opened
        handleSIGINT: false,
        handleSIGTERM: false,
        handleSIGHUP: false,
        timeout: startupTimeoutMs,
        // Our own per-call timeouts decide; keep puppeteer's protocol timeout out of the way.
        protocolTimeout: 24 * 3600 * 1000,
      });
      launching.catch(() => {}); // awaited below, after the version check
      version = await versionCheck.catch((e: unknown) => {
        abortLaunch.abort();
        throw e;
      });
      browser = await launching;
      if (closing !== undefined) throw new Error('The browser runner was closed during startup.');
    } catch (cause) {
      if (cause instanceof RunnerError) throw cause;
      // A launch that failed before the version was known: a failed version check explains it best.
      version = await versionCheck;
      throw new RunnerError('BROWSER_LAUNCH_FAILED', `Could not launch ${chromiumPath} (${version}): ${(cause as Error).message}`, {
        subject: chromiumPath,
        hint: `Check that this Chromium runs headless on this machine (try \`${chromiumPath} --headless=new --no-sandbox --dump-dom about:blank\`). ${INSTALL_CHROMIUM_HINT}`,
        cause,
      });
    }
    browser.on('disconnected', () =>
      fail(new RunnerError('PAGE_CRASHED', 'Chromium exited unexpectedly.', { subject: chromiumPath, hint: CRASHED_HINT })),
    );

    const page = (await browser.pages())[0] ?? (await browser.newPage());
    page.on('error', (err: Error) => fail(new RunnerError('PAGE_CRASHED', `The runner page crashed: ${err.message}`, { hint: CRASHED_HINT, cause: err })));
    page.on('pageerror', (err: unknown) => log(`uncaught: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`));
    page.on('console', (msg) => {
      const type = msg.type();
      if (type === 'error' || type === 'warn') log(`console.${type}: ${msg.text()}`);
    });

    let onReady!: (info: AdapterReport) => void;
    let onInitFailed!: (err: Error) => void;
    const ready = new Promise<AdapterReport>((resolve, reject) => {
      onReady = resolve;
      onInitFailed = reject;
    });
    ready.catch(() => {});
    await page.exposeFunction(REPORT_BINDING, (message: PageReport) => {
      switch (message.type) {
        case 'ready':
          onReady(message.adapter);
          break;
        case 'init-failed':
          onInitFailed(
            new RunnerError('NO_WEBGPU_ADAPTER', `Chromium gave the runner page no WebGPU device: ${message.message}`, {
              subject: chromiumPath,
              hint:
                `Chromium was started with ${args.filter((a) => a.includes('webgpu') || a.includes('swiftshader') || a.includes('Vulkan')).join(' ')}. ` +
                'WebGPU without a GPU needs a Chromium build with SwiftShader Vulkan (Debian/Ubuntu `chromium` has it). ' +
                'Try LORAFUSE_WEBGPU_ADAPTER=auto on a machine with a GPU, or another Chromium via CHROME_PATH.',
            }),
          );
          break;
        case 'device-lost':
          fail(new RunnerError('DEVICE_LOST', `The page's WebGPU device was lost (${message.reason}): ${message.message}`, {
            hint: 'The GPU process may have crashed or run out of memory; run again, with smaller inputs if it repeats.',
          }));
          onInitFailed(new RunnerError('DEVICE_LOST', `The page's WebGPU device was lost during startup: ${message.message}`, { hint: CRASHED_HINT }));
          break;
        case 'uncaptured-error':
          log(`WebGPU uncaptured error: ${message.message}`);
          break;
      }
    });

    const startupFatal = new Promise<never>((_, reject) => fatalListeners.add(reject));
    startupFatal.catch(() => {});
    const startupTimeout = (): RunnerError =>
      new RunnerError('PAGE_TIMEOUT', `The runner page did not report a WebGPU device within ${startupTimeoutMs} ms.`, {
        hint: 'Check that the page bundle calls startPage() of @lorafuse/runner/page, and look for page errors above.',
      });
    const started = Date.now();
    await withTimeout(Promise.race([page.goto(server.pageUrl, { waitUntil: 'load', timeout: 0 }), startupFatal]), startupTimeoutMs, startupTimeout);
    const adapterInfo = await withTimeout(
      Promise.race([ready, startupFatal]),
      Math.max(1, startupTimeoutMs - (Date.now() - started)),
      startupTimeout,
    );
    fatalListeners.clear();

    const srv = server;
    const runner: BrowserRunner = {
      page,
      server: srv,
      adapterInfo,
      chromiumPath,
      chromiumVersion: version,
      userDataDir,
      get closed() {
        return closing !== undefined;
      },
      call<T>(fnName: string, callArgs?: unknown, callOptions?: CallOptions): Promise<T> {
        if (closing !== undefined) return Promise.reject(new Error('The browser runner was closed.'));
        if (fatal !== undefined) return Promise.reject(fatal);
        const limit = callOptions?.timeoutMs ?? timeoutMs;
        return new Promise<T>((resolve, reject) => {
          const settle = (): void => {
            clearTimeout(timer);
            fatalListeners.delete(onFatal);
          };
          const onFatal = (err: Error): void => {
            settle();
            reject(err);
          };
          const timer = setTimeout(() => {
            settle();
            reject(
              new RunnerError('PAGE_TIMEOUT', `Page call lorafuse.${fnName} did not finish within ${limit} ms.`, {
                hint: 'SwiftShader runs WebGPU on the CPU and is slow for large tensors; raise the time limit or use a machine with a GPU.',
              }),
            );
          }, limit);
          fatalListeners.add(onFatal);
          page
            .evaluate(
              async (name: string, a: unknown) => {
                const api = (globalThis as { lorafuse?: Record<string, (x: unknown) => unknown> }).lorafuse;
                const fn = api?.[name];
                if (typeof fn !== 'function') {
                  throw new Error(`The runner page has no function lorafuse.${name} (registered: ${Object.keys(api ?? {}).join(', ') || 'none'}).`);
                }
                return await fn(a);
              },
              fnName,
              callArgs ?? null,
            )
            .then(
              (value) => {
                settle();
                resolve(value as T);
              },
              (err: unknown) => {
                // A crash rejects the evaluation before the crash event arrives; give it a moment.
                setTimeout(() => {
                  settle();
                  reject(fatal ?? pageCallError(err));
                }, 50);
              },
            );
        });
      },
      close,
    };
    return runner;
  } catch (err) {
    await close().catch(() => {});
    if (err instanceof RunnerError) throw err;
    // Chromium dying during startup surfaces as whatever puppeteer was doing at that moment
    // ("Requesting main frame too early!", "Target closed", ...): say what happened instead.
    throw fatal ?? new RunnerError('PAGE_CRASHED', `Chromium failed while the runner page was starting: ${(err as Error).message}`, { subject: chromiumPath, hint: CRASHED_HINT, cause: err });
  }
}
