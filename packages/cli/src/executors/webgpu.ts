/**
 * The WebGPU executor: merges run as WGSL kernels in headless Chromium. Node offers exactly the planned
 * byte ranges on the runner's token-guarded 127.0.0.1 server; the page fetches them, merges, and POSTs
 * the result back. Unchanged tensors never come here (the merge command streams them itself).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FloatCodecDtype } from '@lorafuse/core';
import type { BrowserRunner, WebGpuAdapterChoice } from '@lorafuse/runner';
import { asEnvironmentError, startPageSession } from './page-session.js';
import type { PageMergeRequest, PageMergeResult } from '../page/protocol.js';
import { withPrefetch, type MergedBytes, type MergeExecutor, type MergeTensor } from './executor.js';
import type { OpenFiles } from '../fs/inputs.js';

/**
 * The bundled runner page (built by build-page.mjs next to the compiled CLI; from the TypeScript
 * sources, as in unit tests, the built one in dist/).
 */
export const MERGE_PAGE_BUNDLE = [new URL('../page/merge-page.bundle.js', import.meta.url), new URL('../../dist/page/merge-page.bundle.js', import.meta.url)]
  .map((u) => fileURLToPath(u))
  .find((p, i, all) => existsSync(p) || i === all.length - 1)!;

const CPU_HINT = 'Or run the merge without a browser: `lorafuse merge ... --device cpu`.';

/** Runner errors as lorafuse errors pointing at `lorafuse merge --device cpu`. */
export const asMergeEnvironmentError = (error: unknown) => asEnvironmentError(error, CPU_HINT);

/** Options of {@link createWebGpuExecutor}. */
export interface WebGpuExecutorOptions {
  /** Time limit of one page call, in ms. */
  timeoutMs?: number;
  /** Which adapter Chromium uses (default: the runner's, `LORAFUSE_WEBGPU_ADAPTER` or SwiftShader). */
  webgpuAdapter?: WebGpuAdapterChoice;
  /** Merges in flight when the caller prefetches (default 3: fetch, compute and upload overlap). */
  depth?: number;
}

/** What the WebGPU executor reports about its adapter, for {@link MergeExecutor.description} and device choice. */
export interface WebGpuExecutor extends MergeExecutor {
  readonly device: 'webgpu';
  readonly adapterInfo: BrowserRunner['adapterInfo'];
}

/**
 * Starts Chromium (one per run) and returns the executor; `close()` shuts the browser down. With
 * {@link MergeExecutor.prefetch}, up to `depth` tensors are in the page at once: one downloading,
 * one on the GPU, one uploading.
 */
export async function createWebGpuExecutor(_files: OpenFiles, options: WebGpuExecutorOptions = {}): Promise<WebGpuExecutor> {
  const session = await startPageSession(MERGE_PAGE_BUNDLE, CPU_HINT, options);
  const { runner, description, offer } = session;
  const mergeOne = async (t: MergeTensor): Promise<MergedBytes> => {
    const { base, deltas } = t.source;
    const w = offer(base);
    const factors = deltas.map((d) => ({ d, a: offer(d.a), b: offer(d.b) }));
    const uploadId = session.nextId('u');
    const outBytes = t.shape.reduce((n, x) => n * x, 1) * (t.dtype === 'F32' ? 4 : 2);
    const upload = runner.server.expectUpload(uploadId, outBytes);
    const req: PageMergeRequest = {
      name: t.name,
      w: { url: w.url, dtype: base.dtype as FloatCodecDtype, rows: deltas[0]!.rows, cols: deltas[0]!.cols },
      deltas: factors.map(({ d, a, b }) => ({ modulePath: d.modulePath, a: { url: a.url, dtype: d.a.dtype as FloatCodecDtype }, b: { url: b.url, dtype: d.b.dtype as FloatCodecDtype }, rank: d.rank, scale: d.scale, orientation: d.orientation })),
      outDtype: t.dtype as FloatCodecDtype,
      uploadUrl: runner.server.uploadUrl(uploadId),
    };
    try {
      const [result, bytes] = await Promise.all([runner.call<PageMergeResult>('mergeTensor', req), upload]);
      return { bytes, nonFinite: result.nonFinite };
    } catch (e) {
      runner.server.cancelUpload(uploadId);
      throw asMergeEnvironmentError(e);
    } finally {
      for (const id of [w.id, ...factors.flatMap((f) => [f.a.id, f.b.id])]) runner.server.withdraw(id);
    }
  };
  const prefetcher = withPrefetch(mergeOne, options.depth ?? 3);
  return {
    device: 'webgpu',
    description,
    adapterInfo: runner.adapterInfo,
    merge: (t) => prefetcher.merge(t),
    prefetch: (tensors) => prefetcher.prefetch(tensors),
    close: async () => {
      // Closing the browser first makes merges still in flight fail fast instead of finishing.
      const drained = prefetcher.drain();
      await runner.close();
      await drained;
    },
  };
}
