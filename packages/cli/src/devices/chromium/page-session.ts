/**
 * One runner page in headless Chromium for an executor (merge or compare): started once per run,
 * its runner errors turned into lorafuse errors that point at `--device cpu`, a description of the
 * adapter for reports, and byte ranges offered under fresh ids.
 */
import { EnvironmentError, type TensorRef } from '@lorafuse/core';
import { isRunnerError, startBrowserRunner, type BrowserRunner, type WebGpuAdapterChoice } from '@lorafuse/runner';
import { terminalLines } from '../../terminal-text.js';

/** Turns the runner's environment failures into lorafuse errors whose hint ends with `cpuHint`. */
export function asEnvironmentError(error: unknown, cpuHint = 'Or run without a browser: `--device cpu`.'): unknown {
  if (!isRunnerError(error)) return error;
  return new EnvironmentError(error.code, error.message, { hint: [error.hint, cpuHint].filter(Boolean).join(' '), cause: error, ...(error.subject ? { subject: error.subject } : {}) });
}

/** A started page and what executors need around it. */
export interface PageSession {
  readonly runner: BrowserRunner;
  /** The adapter in words, e.g. `swiftshader (google) [software fallback]`. */
  readonly description: string;
  /** Offers a tensor's byte range to the page under a fresh id. */
  offer(ref: TensorRef): { readonly id: string; readonly url: string };
  /** A fresh id (for uploads). */
  nextId(prefix: string): string;
}

/** Starts Chromium with `pageBundlePath`; failures are `EnvironmentError`s ending in `cpuHint`. */
export async function startPageSession(pageBundlePath: string, cpuHint: string, options: { timeoutMs?: number; webgpuAdapter?: WebGpuAdapterChoice } = {}): Promise<PageSession> {
  let runner: BrowserRunner;
  try {
    runner = await startBrowserRunner({
      pageBundlePath,
      // The page's errors can quote tensor names from the input files.
      onLog: (line) => process.stderr.write(terminalLines([`[lorafuse page] ${line}`])),
      ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
      ...(options.webgpuAdapter ? { webgpuAdapter: options.webgpuAdapter } : {}),
    });
  } catch (e) {
    throw asEnvironmentError(e, cpuHint);
  }
  const info = runner.adapterInfo;
  const description = [info.description || info.device || info.architecture || 'WebGPU adapter', info.vendor ? `(${info.vendor})` : '', info.isFallbackAdapter ? '[software fallback]' : '']
    .filter(Boolean)
    .join(' ');
  let seq = 0;
  const nextId = (prefix: string) => `${prefix}${++seq}`;
  return {
    runner,
    description,
    nextId,
    offer(ref) {
      const id = nextId('t');
      return { id, url: runner.server.offerFileRange(id, { path: ref.file, offset: ref.fileOffset, length: ref.byteLength }) };
    },
  };
}
