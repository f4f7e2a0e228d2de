/// <reference types="@webgpu/types" />
/**
 * The runner page's merge driver (browser code, bundled by build-page.mjs): fetches a module's LoRA
 * factors from the local server, runs the LoRA merge kernel on a zero matrix, and POSTs ΔW back
 * (see {@link PageDeltaRequest}). Only URLs, shapes and scales arrive through DevTools; tensor bytes
 * travel over HTTP.
 */
import { decodeToF32 } from '@lorafuse/core';
import { requestLorafuseDevice } from '@lorafuse/kernels';
import { runLoraMerge, withLoraDelta } from '@lorafuse/kernels/internal';
import { fetchBytes, getDevice, postBytes, registerPageApi, startPage } from '@lorafuse/runner/page';
import type { PageDeltaRequest, PageDeltaResult } from '../protocol.js';

startPage({ requestDevice: (adapter) => requestLorafuseDevice(adapter, 'lorafuse runner device') });

async function loraDelta(req: PageDeltaRequest): Promise<PageDeltaResult> {
  const device = await getDevice();
  const factorBytes = await Promise.all(req.deltas.flatMap((d) => [fetchBytes(d.a.url), fetchBytes(d.b.url)]));
  const terms = req.deltas.map((d, i) => ({ a: decodeToF32(d.a.dtype, factorBytes[2 * i]!), b: decodeToF32(d.b.dtype, factorBytes[2 * i + 1]!), rank: d.rank, orientation: d.orientation, scale: d.scale, label: d.modulePath }));
  // Uploaded from the mapped range itself (the Blob body copies it once).
  await withLoraDelta(device, { rows: req.rows, cols: req.cols, terms, label: `ΔW ${req.name}` }, (delta) => postBytes(req.uploadUrl, delta));
  return { bytes: req.rows * req.cols * 4 };
}

registerPageApi({ loraDelta });

// Compile the kernel's pipeline now, while Node copies the unchanged tensors, rather than in the
// first merge: on SwiftShader that is ~0.1 s. A failure here is left for the first merge to report.
void getDevice()
  .then((device) => runLoraMerge(device, { rows: 4, cols: 4, rank: 1, orientation: 'linear', w: new Float32Array(16), a: new Float32Array(4), b: new Float32Array(4), scale: 1, label: 'warm-up' }))
  .catch(() => {});
