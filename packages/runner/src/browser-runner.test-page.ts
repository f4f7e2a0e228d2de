/// <reference types="@webgpu/types" />
// Page entry for browser-runner.test.ts: a few functions that exercise the runtime.
import { fetchBytes, getDevice, postBytes, registerPageApi, startPage } from './page/index.js';

/** Limits browser-runner.test.ts expects the device to have at the adapter's own values. */
const RAISED_FOR_TEST = ['maxBufferSize', 'maxStorageBufferBindingSize', 'maxComputeWorkgroupStorageSize'] as const;

// The runner cannot import kernels' requestLorafuseDevice (kernels' tests import the runner), so this
// page raises the few limits its test checks itself.
startPage({
  requestDevice: (adapter) => {
    const requiredLimits: Record<string, number> = {};
    for (const name of RAISED_FOR_TEST) requiredLimits[name] = adapter.limits[name];
    return adapter.requestDevice({ label: 'runner test device', requiredLimits });
  },
});

registerPageApi({
  echo: (args: unknown) => ({ echoed: args }),
  neverResolves: () => new Promise(() => {}),
  /** Transfers the network refuses (another origin: the page's CSP blocks it, and fetch rejects as when a connection breaks). */
  postNowhere: () => postBytes('http://127.0.0.1:9/nowhere', new Uint8Array(8)),
  fetchNowhere: () => fetchBytes('http://127.0.0.1:9/nowhere'),
  throws: (args: { message: string }) => {
    throw new Error(args.message);
  },
  /** Downloads bytes, adds 1 to each on the GPU, uploads the result. */
  async incrementOnGpu(args: { inUrl: string; outUrl: string }) {
    const device = await getDevice();
    const input = await fetchBytes(args.inUrl);
    const words = new Uint32Array(input.buffer, input.byteOffset, input.byteLength / 4);
    const buffer = device.createBuffer({ label: 'test data', size: words.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(buffer, 0, words);
    const module = device.createShaderModule({
      label: 'test increment',
      code: '@group(0) @binding(0) var<storage, read_write> d: array<u32>;\n@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3u) { if (id.x < arrayLength(&d)) { d[id.x] = d[id.x] + 1u; } }',
    });
    const pipeline = device.createComputePipeline({ label: 'test increment', layout: 'auto', compute: { module, entryPoint: 'main' } });
    const readback = device.createBuffer({ label: 'test readback', size: words.byteLength, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const encoder = device.createCommandEncoder({ label: 'test increment' });
    const pass = encoder.beginComputePass({ label: 'test increment' });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, device.createBindGroup({ label: 'test increment', layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer } }] }));
    pass.dispatchWorkgroups(Math.ceil(words.length / 64));
    pass.end();
    encoder.copyBufferToBuffer(buffer, 0, readback, 0, words.byteLength);
    device.queue.submit([encoder.finish()]);
    await readback.mapAsync(GPUMapMode.READ);
    const out = new Uint8Array(readback.getMappedRange().slice(0));
    readback.unmap();
    buffer.destroy();
    readback.destroy();
    await postBytes(args.outUrl, out);
    return { bytes: out.byteLength };
  },
  /** startPage a second time: the error message, or null when it did not throw. */
  startAgain() {
    try {
      startPage({ requestDevice: (adapter) => adapter.requestDevice() });
      return null;
    } catch (e) {
      return (e as Error).message;
    }
  },
  async loseDevice() {
    (await getDevice()).destroy();
    return true;
  },
});
