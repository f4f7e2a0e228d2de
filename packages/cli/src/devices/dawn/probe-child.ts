/**
 * The child process of the driver probe (see driver-probe.ts): reads one request per stdin line,
 * starts a fresh Dawn instance under the request's environment overlay, asks it for an adapter and
 * a device on lorafuse's limits, and answers on stdout. Whatever the Vulkan loader, its layers,
 * the drivers and Dawn print meanwhile goes to this process's stderr, which the parent reads
 * instead of letting it reach the user's terminal; a driver that crashes takes only this process.
 */
import { writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { requestLorafuseDevice } from '@lorafuse/kernels';
import { adapterIdentity, adapterName, ANSWER_PREFIX, applyOverlay, ATTEMPT_DONE, type ProbeAnswer, type ProbeRequest } from './probe-protocol.js';

interface DawnModule {
  create(options: string[]): GPU;
}

let dawn: DawnModule | undefined;
let loadFailure = '';
try {
  dawn = (await import('webgpu')) as unknown as DawnModule;
} catch (e) {
  loadFailure = (e as Error).message.split('\n')[0] ?? '';
}

// Every instance stays referenced until this short-lived process exits: Dawn's instance must
// outlive its adapters, and tearing one down gains nothing here.
const instances: GPU[] = [];

async function attempt(request: ProbeRequest): Promise<ProbeAnswer> {
  if (dawn === undefined) return { failure: `the \`webgpu\` package (Dawn for Node) could not be loaded: ${loadFailure}` };
  const restore = applyOverlay(request.overlay);
  try {
    const gpu = dawn.create([...request.dawnOptions]);
    instances.push(gpu);
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (adapter === null) return { failure: 'Dawn found no WebGPU adapter' };
    const identity = adapterIdentity(adapter.info);
    try {
      (await requestLorafuseDevice(adapter, 'lorafuse driver probe')).destroy();
    } catch (e) {
      return { failure: `${adapterName(identity)} refused a device with lorafuse's limits: ${(e as Error).message}` };
    }
    return { adapter: identity };
  } catch (e) {
    return { failure: `Dawn failed to start: ${(e as Error).message}` };
  } finally {
    restore();
  }
}

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const answer = await attempt(JSON.parse(line) as ProbeRequest);
  writeSync(2, ATTEMPT_DONE);
  writeSync(1, `${ANSWER_PREFIX}${JSON.stringify(answer)}\n`);
}
// Dawn's instances would keep the event loop alive.
process.exit(0);
