/**
 * The WebGPU executor of `diff`: the compare kernel runs in headless Chromium. Node offers exactly the
 * two tensors' byte ranges on the runner's token-guarded 127.0.0.1 server; the page fetches them,
 * compares them on the GPU and answers with the statistics (small JSON).
 */
import { fileURLToPath } from 'node:url';
import { asEnvironmentError, startPageSession } from './page-session.js';
import { elementCount, elementTypeOf, type CompareExecutor } from '../device.js';
import { statsFromWire, type PageCompareRequest } from './protocol.js';

/** The bundled compare page (built by build-page.mjs into pages/ beside this compiled file). */
export const COMPARE_PAGE_BUNDLE = fileURLToPath(new URL('./pages/compare-page.bundle.js', import.meta.url));

const CPU_HINT = 'Or compare without a browser: `lorafuse diff ... --device cpu`.';


/** Starts Chromium (one per run) with the compare page; `close()` shuts it down. */
export async function createWebGpuCompareExecutor(options: { timeoutMs?: number } = {}): Promise<CompareExecutor> {
  const { runner, description, offer } = await startPageSession(COMPARE_PAGE_BUNDLE, CPU_HINT, options);
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
        throw asEnvironmentError(e, CPU_HINT);
      } finally {
        runner.server.withdraw(x.id);
        runner.server.withdraw(y.id);
      }
    },
    close: () => runner.close(),
  };
}
