/// <reference types="@webgpu/types" />
/**
 * The runner page's forward-pass driver (browser code, bundled by build-page.mjs): receives a model
 * (manifest through DevTools, arrays fetched from the local server), runs it with the WGSL kernels,
 * and POSTs logits back as bytes; greedy continuations return as small JSON.
 */
import type { Gpt2Model, LogitsRunner } from '@lorafuse/core';
import { ForwardKernels, requestLorafuseDevice } from '@lorafuse/kernels';
import { fetchBytes, getDevice, postBytes, registerPageApi, startPage } from '@lorafuse/runner/page';
import { gpuLogitsRunner } from '../gpu-runner.js';
import { unpackModel, type ModelManifest } from '../model-wire.js';

startPage({ requestDevice: (adapter) => requestLorafuseDevice(adapter, 'lorafuse forward device') });

const models = new Map<string, LogitsRunner & { destroy(): void }>();
let kernels: ForwardKernels | undefined;

function f32(bytes: Uint8Array<ArrayBuffer>): Float32Array {
  return bytes.byteOffset % 4 === 0 ? new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) : new Float32Array(bytes.slice().buffer);
}

registerPageApi({
  async loadModel(args: { id: string; manifest: ModelManifest; urls: string[] }) {
    kernels ??= ForwardKernels.prepare(await getDevice());
    const arrays = await Promise.all(args.urls.map(async (u) => f32(await fetchBytes(u))));
    const model: Gpt2Model = unpackModel(args.manifest, arrays);
    models.set(args.id, gpuLogitsRunner(kernels, model));
    return true;
  },
  async logits(args: { id: string; ids: number[]; uploadUrl: string }) {
    const r = models.get(args.id);
    if (!r) throw new Error(`internal: no model ${args.id} in the page`);
    await postBytes(args.uploadUrl, await r.logits(args.ids));
    return true;
  },
  async greedy(args: { id: string; prompt: number[]; tokens: number; stopId: number | null }) {
    const r = models.get(args.id);
    if (!r) throw new Error(`internal: no model ${args.id} in the page`);
    return r.greedy(args.prompt, args.tokens, args.stopId);
  },
});
