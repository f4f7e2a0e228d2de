/**
 * The WebGPU executor of `diff`: the compare kernel runs in headless Chromium. Node offers exactly the
 * two tensors' byte ranges on the runner's token-guarded 127.0.0.1 server; the page fetches them,
 * compares them on the GPU and answers with the statistics (small JSON).
 */
import { fileURLToPath } from 'node:url';
import { EnvironmentError, type TensorRef } from '@lorafuse/core';
import { isRunnerError, startBrowserRunner, type BrowserRunner } from '@lorafuse/runner';
import { elementCount, elementTypeOf, type CompareExecutor } from './executor.js';
import { statsFromWire, type PageCompareRequest } from './protocol.js';

/** The bundled compare page (built by build-page.mjs next to the compiled CLI). */
export const COMPARE_PAGE_BUNDLE = fileURLToPath(new URL('../page/compare-page.bundle.js', import.meta.url));

const CPU_HINT = 'Or compare without a browser: `lorafuse diff ... --device cpu`.';

function asEnvironmentError(error: unknown): unknown {
  if (!isRunnerError(error)) return error;
  return new EnvironmentError(error.code, error.message, { hint: [error.hint, CPU_HINT].filter(Boolean).join(' '), cause: error, ...(error.subject ? { subject: error.subject } : {}) });
}

/** Starts Chromium (one per run) with the compare page; `close()` shuts it down. */
export async function createWebGpuCompareExecutor(options: { timeoutMs?: number } = {}): Promise<CompareExecutor> {
  let runner: BrowserRunner;
  try {
    runner = await startBrowserRunner({ pageBundlePath: COMPARE_PAGE_BUNDLE, ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) });
  } catch (e) {
    throw asEnvironmentError(e);
  }
  const info = runner.adapterInfo;
  const description = [info.description || info.device || info.architecture || 'WebGPU adapter', info.vendor ? `(${info.vendor})` : '', info.isFallbackAdapter ? '[software fallback]' : '']
    .filter(Boolean)
    .join(' ');
  let seq = 0;
  const offer = (ref: TensorRef) => {
    const id = `c${++seq}`;
    return { id, url: runner.server.offerFileRange(id, { path: ref.file, offset: ref.fileOffset, length: ref.byteLength }) };
  };
  return {
    device: 'webgpu',
    description,
    async compare(a, b, tolerance) {
      const x = offer(a);
      const y = offer(b);
      const req: PageCompareRequest = {
        name: a.name,
        count: elementCount(a),
        a: { url: x.url, type: elementTypeOf(a) },
        b: { url: y.url, type: elementTypeOf(b) },
        atol: tolerance.atol,
        rtol: tolerance.rtol,
        equalNan: tolerance.equalNan,
      };
      try {
        return statsFromWire(await runner.call<string>('compareTensors', req));
      } catch (e) {
        throw asEnvironmentError(e);
      } finally {
        runner.server.withdraw(x.id);
        runner.server.withdraw(y.id);
      }
    },
    close: () => runner.close(),
  };
}
