/** `--device auto`: the CPU executor wherever WebGPU could only be a software adapter, and why. */
import { afterEach, describe, expect, it } from 'vitest';
import { OpenFiles } from '../fs/inputs.js';
import { createExecutor, gpuDeviceNodes, type SelectDeviceOptions, type SelectedExecutor } from './select.js';

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
    expect(selected.reason).toMatch(/^auto: no GPU device on this machine .*SwiftShader.*, and on such machines the CPU executor \(the same merge, summed in f64 where the kernels sum in f32\) is faster end to end: a software adapter such as SwiftShader runs the kernels on this same CPU behind extra copies/);
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

describe('createExecutor: auto and Dawn', () => {
  const fakeDawn = (info: { vendor: string; architecture: string; description: string }, closed: string[]) =>
    (async () => ({
      device: 'dawn' as const,
      description: `${info.description} via Dawn in Node`,
      adapterInfo: { ...info, device: '', isFallbackAdapter: false },
      merge: async () => {
        throw new Error('not used');
      },
      close: async () => void closed.push(info.description),
    })) as unknown as NonNullable<SelectDeviceOptions['startDawn']>;

  it('takes Dawn when its adapter is hardware, without starting a browser', async () => {
    const closed: string[] = [];
    selected = await createExecutor('auto', new OpenFiles(), { gpuProbe: () => ['/dev/nvidia0'], env: { CHROME_PATH: '/nonexistent' }, startDawn: fakeDawn({ vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H200' }, closed) });
    expect(selected.executor.device).toBe('dawn');
    expect(selected.reason).toBe('auto: WebGPU adapter NVIDIA H200 via Dawn in Node is hardware (GPU device /dev/nvidia0)');
    expect(closed).toEqual([]);
  });

  it('closes a software Dawn adapter and says why it went on, down to the CPU executor', async () => {
    const closed: string[] = [];
    selected = await createExecutor('auto', new OpenFiles(), { gpuProbe: () => ['/dev/dri/renderD128'], env: { CHROME_PATH: '/nonexistent' }, startDawn: fakeDawn({ vendor: 'google', architecture: 'swiftshader', description: 'SwiftShader Device' }, closed) });
    expect(closed).toEqual(['SwiftShader Device']);
    expect(selected.executor.device).toBe('cpu');
    expect(selected.reason).toMatch(/^auto: Dawn's only adapter is SwiftShader Device via Dawn in Node, a software one, and no Chromium for WebGPU \(CHROME_PATH/);
  });

  it('says why Dawn did not start', async () => {
    const failing = (async () => {
      throw new Error('the `webgpu` package (Dawn for Node) could not be loaded: nope');
    }) as unknown as NonNullable<SelectDeviceOptions['startDawn']>;
    selected = await createExecutor('auto', new OpenFiles(), { gpuProbe: () => ['/dev/dri/renderD128'], env: { CHROME_PATH: '/nonexistent' }, startDawn: failing });
    expect(selected.executor.device).toBe('cpu');
    expect(selected.reason).toMatch(/^auto: Dawn did not start: the `webgpu` package \(Dawn for Node\) could not be loaded: nope, and no Chromium/);
  });
});
