/**
 * Where the forward pass runs: the CPU reference, or the WGSL kernels on Dawn in Node. Each opened
 * device is closed by its caller; a runner per model is made from it.
 */
import { cpuLogitsRunner, type Gpt2Model, type LogitsRunner } from '@lorafuse/core';
import { ForwardKernels } from '@lorafuse/kernels';
import { startDawnDevice } from '../devices/index.js';
import { gpuLogitsRunner } from './gpu-runner.js';

/** Devices the forward pass runs on. */
export type ForwardDeviceKind = 'cpu' | 'dawn';

/** An opened forward device. */
export interface ForwardDevice {
  readonly kind: ForwardDeviceKind;
  readonly description: string;
  runner(model: Gpt2Model): LogitsRunner;
  close(): void;
}

/** Opens `kind`; Dawn's failures are EnvironmentErrors that point at --device cpu. */
export async function openForwardDevice(kind: ForwardDeviceKind): Promise<ForwardDevice> {
  if (kind === 'cpu') return { kind, description: 'CPU reference in Node.js (f64 sums)', runner: cpuLogitsRunner, close() {} };
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
