/** `--device auto`: the CPU executor wherever WebGPU could only be a software adapter, and why. */
import { afterEach, describe, expect, it } from 'vitest';
import { OpenFiles } from '../fs/inputs.js';
import { createExecutor, gpuDeviceNodes, type SelectedExecutor } from './select-device.js';

let selected: SelectedExecutor | undefined;
afterEach(async () => {
  await selected?.executor.close();
  selected = undefined;
});

describe('createExecutor', () => {
  it('cpu is taken as given', async () => {
    selected = await createExecutor('cpu', new OpenFiles());
    expect(selected.executor.device).toBe('cpu');
    expect(selected.reason).toBe('--device cpu');
  });

  it('auto without a GPU device node picks the CPU executor without starting a browser, and says why', async () => {
    const started = performance.now();
    selected = await createExecutor('auto', new OpenFiles(), { gpuProbe: () => [], env: {} });
    expect(selected.executor.device).toBe('cpu');
    expect(selected.reason).toMatch(/^auto: no GPU device on this machine .*SwiftShader.* s against .* s/);
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('auto with LORAFUSE_WEBGPU_ADAPTER=swiftshader picks the CPU executor', async () => {
    selected = await createExecutor('auto', new OpenFiles(), { gpuProbe: () => ['/dev/dri/renderD128'], env: { LORAFUSE_WEBGPU_ADAPTER: 'swiftshader' } });
    expect(selected.executor.device).toBe('cpu');
    expect(selected.reason).toMatch(/LORAFUSE_WEBGPU_ADAPTER=swiftshader/);
  });

  it('auto with a GPU device but only a software adapter in Chromium falls back to the CPU executor, naming the adapter', async () => {
    // Pretending there is a GPU device makes Chromium look for hardware; without a GPU it finds SwiftShader.
    selected = await createExecutor('auto', new OpenFiles(), { gpuProbe: () => ['/dev/fake-gpu'], env: process.env });
    if (gpuDeviceNodes().length > 0 && selected.executor.device === 'webgpu') {
      expect(selected.reason).toMatch(/^auto: WebGPU adapter .* is hardware/);
      return;
    }
    expect(selected.executor.device).toBe('cpu');
    expect(selected.reason).toMatch(/^auto: Chromium's only WebGPU adapter is .*, a software fallback, and on such machines the CPU executor/);
  });
});
