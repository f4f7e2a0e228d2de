/**
 * Where the forward pass runs: the CPU reference, or the WGSL kernels on Dawn in Node. Each opened
 * device is closed by its caller; a runner per model is made from it.
 */
import { cpuLogitsRunner, type Gpt2Model, type LogitsRunner } from '@lorafuse/core';
import { ForwardKernels } from '@lorafuse/kernels';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startDawnDevice, startPageSession, type PageSession } from '../devices/index.js';
import { packModel } from './model-wire.js';
import { gpuLogitsRunner } from './gpu-runner.js';

/** Devices the forward pass runs on. */
export type ForwardDeviceKind = 'cpu' | 'dawn' | 'webgpu';

/** The forward page bundle, beside the compiled module (dist/forward/pages/). */
const FORWARD_PAGE_BUNDLE = [new URL('./pages/forward-page.bundle.js', import.meta.url), new URL('../../dist/forward/pages/forward-page.bundle.js', import.meta.url)]
  .map((u) => fileURLToPath(u))
  .find((p, i, all) => existsSync(p) || i === all.length - 1)!;

/** An opened forward device. */
export interface ForwardDevice {
  readonly kind: ForwardDeviceKind;
  readonly description: string;
  runner(model: Gpt2Model): LogitsRunner;
  close(): Promise<void> | void;
}

/** Opens `kind`; Dawn's failures are EnvironmentErrors that point at --device cpu. */
export async function openForwardDevice(kind: ForwardDeviceKind): Promise<ForwardDevice> {
  if (kind === 'cpu') return { kind, description: 'CPU reference in Node.js (f64 sums)', runner: cpuLogitsRunner, close() {} };
  if (kind === 'webgpu') return openChromiumForward();
  const dawn = await startDawnDevice(process.env, 'Use --device cpu.');
  const kernels = ForwardKernels.prepare(dawn.device);
  const runners: Array<{ destroy(): void }> = [];
  return {
    kind,
    description: `WGSL kernels on ${dawn.description}`,
    runner(model) {
      const r = gpuLogitsRunner(kernels, model);
      runners.push(r);
      return r;
    },
    close() {
      for (const r of runners) r.destroy();
      kernels.destroy();
      dawn.destroy();
    },
  };
}

/**
 * The WGSL kernels in headless Chromium: each model's arrays are offered as bytes on the runner's
 * local server and fetched by the page once; logits come back as an upload, greedy tokens as JSON.
 */
async function openChromiumForward(): Promise<ForwardDevice> {
  const session: PageSession = await startPageSession(FORWARD_PAGE_BUNDLE, 'Or use --device cpu or --device dawn.', { timeoutMs: 1_800_000 });
  const server = session.runner.server;
  const offered: string[] = [];
  return {
    kind: 'webgpu',
    description: `WGSL kernels in headless Chromium on ${session.description}`,
    runner(model) {
      const id = session.nextId('model');
      let loading: Promise<unknown> | undefined;
      const load = () => {
        loading ??= (async () => {
          const { manifest, arrays } = packModel(model);
          const urls = arrays.map((a, i) => {
            const aid = `${id}-a${i}`;
            offered.push(aid);
            return server.offerBytes(aid, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
          });
          await session.runner.call('loadModel', { id, manifest, urls });
        })();
        return loading;
      };
      return {
        model,
        async logits(ids) {
          await load();
          const up = session.nextId('logits');
          const bytes = server.expectUpload(up, ids.length * model.head.outDim * 4);
          await session.runner.call('logits', { id, ids, uploadUrl: server.uploadUrl(up) });
          const b = await bytes;
          return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
        },
        async greedy(prompt, tokens, stopId = null) {
          await load();
          return session.runner.call<number[]>('greedy', { id, prompt, tokens, stopId });
        },
      };
    },
    async close() {
      for (const aid of offered) server.withdraw(aid);
      return session.runner.close();
    },
  };
}
