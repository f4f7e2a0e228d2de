/**
 * `@lorafuse/runner` (Node only): finds and launches headless Chromium with WebGPU, serves the runner
 * page and planned tensor byte ranges from a token-guarded 127.0.0.1 server, and calls page functions.
 * The browser side is `@lorafuse/runner/page`.
 */
export { RunnerError, isRunnerError, INSTALL_CHROMIUM_HINT, type RunnerErrorCode, type RunnerErrorOptions } from './errors.js';
export { findChromium, chromiumVersion, KNOWN_CHROMIUM_PATHS, type ChromiumLocation } from './find-chromium.js';
export { startRunnerServer, type RunnerServer, type RunnerServerOptions, type FileRange } from './server.js';
export {
  closeAllBrowserRunners,
  startBrowserRunner,
  CHROMIUM_WEBGPU_ARGS,
  type BrowserRunner,
  type BrowserRunnerOptions,
  type AdapterInfo,
  type CallOptions,
  type WebGpuAdapterChoice,
} from './browser-runner.js';
export { bundlePage, runnerPageEntry, type BundlePageOptions } from './bundle.js';
export type { AdapterReport, PageReport } from './page/protocol.js';
