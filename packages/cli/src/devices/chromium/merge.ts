/**
 * The WebGPU executor: the LoRA products run as WGSL kernels in headless Chromium. Node offers each
 * module's A and B on the runner's token-guarded 127.0.0.1 server; the page fetches them, runs the
 * merge kernel on a zero matrix and POSTs ΔW back; Node adds ΔW to W as read from the base file. W
 * never crosses the loopback, which was half of the bytes moved (and the loopback, not the kernel,
 * bounds this executor). Unchanged tensors never come here (the merge command streams them itself).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { addDeltaThenDora, doraInSequence, mergeOnCpu, withLookAhead, type FloatCodecDtype } from '@lorafuse/core';
import type { BrowserRunner, WebGpuAdapterChoice } from '@lorafuse/runner';
import { asEnvironmentError, startPageSession } from './page-session.js';
import type { PageDeltaRequest, PageDeltaResult } from './protocol.js';
import type { MergedBytes, MergeExecutor, MergeTensor } from '../device.js';
import type { OpenFiles } from '../../fs/inputs.js';

/**
 * The bundled runner page (built by build-page.mjs into pages/ beside this compiled file; from the
 * TypeScript sources, as in unit tests, the built one in dist/).
 */
export const MERGE_PAGE_BUNDLE = [new URL('./pages/merge-page.bundle.js', import.meta.url), new URL('../../../dist/devices/chromium/pages/merge-page.bundle.js', import.meta.url)]
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
export async function createWebGpuExecutor(files: OpenFiles, options: WebGpuExecutorOptions = {}): Promise<WebGpuExecutor> {
  const session = await startPageSession(MERGE_PAGE_BUNDLE, CPU_HINT, options);
  const { runner, description, offer } = session;
  const mergeOne = async (t: MergeTensor): Promise<MergedBytes> => {
    // DoRA adapters among several: the per-adapter steps run on the CPU (core), as on every device.
    if (doraInSequence(t.source)) return mergeOnCpu(t.source, t.dtype as FloatCodecDtype, (ref) => files.get(ref.file).read(ref.fileOffset, ref.byteLength));
    const { base, deltas } = t.source;
    const { rows, cols } = deltas[0]!;
    const factors = deltas.map((d) => ({ d, a: offer(d.a), b: offer(d.b) }));
    const uploadId = session.nextId('u');
    const upload = runner.server.expectUpload(uploadId, rows * cols * 4);
    const req: PageDeltaRequest = {
      name: t.name,
      rows,
      cols,
      deltas: factors.map(({ d, a, b }) => ({ modulePath: d.modulePath, a: { url: a.url, dtype: d.a.dtype as FloatCodecDtype }, b: { url: b.url, dtype: d.b.dtype as FloatCodecDtype }, rank: d.rank, scale: d.scale, orientation: d.orientation })),
      uploadUrl: runner.server.uploadUrl(uploadId),
    };
    try {
      const call = runner.call<PageDeltaResult>('loraDelta', req);
      // An upload cut off mid-body is a symptom (the page or its browser went away): the call says why.
      const received = upload.catch((e: unknown) => call.then(() => Promise.reject(e)));
      const [, delta, wBytes] = await Promise.all([call, received, files.get(base.file).read(base.fileOffset, base.byteLength)]);
      return await addDeltaThenDora(t.source, wBytes, delta, t.dtype as FloatCodecDtype, (ref) => files.get(ref.file).read(ref.fileOffset, ref.byteLength));
    } catch (e) {
      runner.server.cancelUpload(uploadId);
      throw asMergeEnvironmentError(e);
    } finally {
      for (const id of factors.flatMap((f) => [f.a.id, f.b.id])) runner.server.withdraw(id);
    }
  };
  const prefetcher = withLookAhead(mergeOne, { limit: options.depth ?? 3 });
  return {
    device: 'webgpu',
    description,
    adapterInfo: runner.adapterInfo,
    merge: (t) => prefetcher.run(t),
    prefetch: (tensors) => prefetcher.prefetch(tensors),
    close: async () => {
      // Closing the browser first makes merges still in flight fail fast instead of finishing.
      const drained = prefetcher.drain();
      await runner.close();
      await drained;
    },
  };
}

