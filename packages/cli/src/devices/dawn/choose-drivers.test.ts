import type { AdapterIdentity } from '@lorafuse/kernels';
import { describe, expect, it } from 'vitest';
import { chooseVulkanDrivers, describeDrivers, NO_SYSTEM_DRIVER, NO_USABLE_SYSTEM_ADAPTER, type DriverFacts } from './choose-drivers.js';
import type { ProbeAttempt } from './driver-probe.js';
import type { DriverOverlay } from './probe-protocol.js';

const GPU: AdapterIdentity = { vendor: 'nvidia', architecture: 'hopper', device: '', description: 'NVIDIA H200', isFallbackAdapter: false };
const SWIFTSHADER: AdapterIdentity = { vendor: 'google', architecture: 'swiftshader', device: '', description: 'SwiftShader driver 5.0.0', isFallbackAdapter: true };
const LAVAPIPE_REJECTED = 'Warning: Vulkan shaderUniform*ArrayDynamicIndexing required.\n - While initializing adapter (backend=BackendType::Vulkan)\n    at InitializeImpl (PhysicalDeviceVk.cpp:257)\n\n';
const WAYLAND = 'error: XDG_RUNTIME_DIR is invalid or not set in the environment.\n';
const SW = '/usr/lib/chromium/vk_swiftshader_icd.json';
const MESA = ['/usr/share/vulkan/icd.d/intel_icd.x86_64.json', '/usr/share/vulkan/icd.d/lvp_icd.x86_64.json'];

/**
 * A machine whose probe answers `answer(overlay)` (`swiftShader` null: none beside Chromium);
 * records the overlays tried and whether the probe was closed.
 */
function machine(answer: (o: DriverOverlay) => ProbeAttempt, manifests: string[] = MESA, swiftShader: string | null = SW) {
  const tried: DriverOverlay[] = [];
  const state = { started: 0, closed: 0 };
  const facts: DriverFacts = {
    manifests: () => manifests,
    swiftShader: () => swiftShader ?? undefined,
    startProbe: () => {
      state.started++;
      return {
        attempt: async (o) => {
          tried.push(o);
          return answer(o);
        },
        close: () => void state.closed++,
      };
    },
  };
  return { facts, tried, state };
}

const adapter = (a: AdapterIdentity, nativeOutput = ''): ProbeAttempt => ({ adapter: a, nativeOutput });
const none = (nativeOutput = ''): ProbeAttempt => ({ failure: 'Dawn found no WebGPU adapter', nativeOutput });
const isSw = (o: DriverOverlay) => o['VK_ICD_FILENAMES'] === SW;

describe('chooseVulkanDrivers', () => {
  it("takes the system's drivers as they are when they give an adapter and print nothing", async () => {
    const m = machine(() => adapter(GPU));
    const c = await chooseVulkanDrivers({}, m.facts, '');
    expect(c).toEqual({ overlay: {}, drivers: 'system', nativeMessages: [] });
    expect(m.tried).toEqual([{}]);
    expect(m.state).toEqual({ started: 1, closed: 1 });
  });

  it('falls back to SwiftShader when the system drivers give no usable adapter, and keeps what they said', async () => {
    const m = machine((o) => (isSw(o) ? adapter(SWIFTSHADER) : none(WAYLAND + WAYLAND + LAVAPIPE_REJECTED)));
    const c = await chooseVulkanDrivers({}, m.facts, '');
    expect(c).toEqual({
      overlay: { VK_DRIVER_FILES: null, VK_ICD_FILENAMES: SW, VK_ADD_DRIVER_FILES: null, NODEVICE_SELECT: '1' },
      drivers: 'swiftshader',
      swiftShader: SW,
      fallbackReason: NO_USABLE_SYSTEM_ADAPTER,
      nativeMessages: ['XDG_RUNTIME_DIR is invalid or not set in the environment.', 'Vulkan shaderUniform*ArrayDynamicIndexing required.'],
    });
    expect(describeDrivers(c, {})).toBe(`the SwiftShader driver ${SW}`);
    expect(m.state.closed).toBe(1);
  });

  it('takes SwiftShader without a probe when the machine has no Vulkan driver at all', async () => {
    const m = machine(() => none(), []);
    const c = await chooseVulkanDrivers({}, m.facts, '');
    expect(c).toMatchObject({ drivers: 'swiftshader', swiftShader: SW, fallbackReason: NO_SYSTEM_DRIVER });
    expect(m.state.started).toBe(0);
  });

  it('keeps the same adapter without the noise: first without the layer, then with one driver only', async () => {
    // A GPU and a rejected lavapipe, and Mesa's device-select layer without a display.
    const answer = (o: DriverOverlay) => {
      const only = o['VK_ICD_FILENAMES'];
      const layer = o['NODEVICE_SELECT'] ? '' : WAYLAND;
      if (only === MESA[0]) return adapter(GPU, layer);
      if (only === MESA[1]) return none(layer + LAVAPIPE_REJECTED);
      return adapter(GPU, layer + LAVAPIPE_REJECTED);
    };
    const m = machine(answer);
    const c = await chooseVulkanDrivers({}, m.facts, '');
    expect(c.drivers).toBe('system');
    expect(c.overlay).toEqual({ VK_DRIVER_FILES: null, VK_ICD_FILENAMES: MESA[0], VK_ADD_DRIVER_FILES: null, NODEVICE_SELECT: '1' });
    expect(m.tried).toEqual([{}, { NODEVICE_SELECT: '1' }, c.overlay]);
    // Only the layer talks: silencing it is enough.
    const layerOnly = machine((o) => adapter(GPU, o['NODEVICE_SELECT'] ? '' : WAYLAND));
    expect((await chooseVulkanDrivers({}, layerOnly.facts, '')).overlay).toEqual({ NODEVICE_SELECT: '1' });
    // A setting that is quiet but gives another adapter is not taken; nothing quiet: as they are.
    const other = machine((o) => (o['VK_ICD_FILENAMES'] ? adapter(SWIFTSHADER) : adapter(GPU, LAVAPIPE_REJECTED)));
    expect(await chooseVulkanDrivers({ MESA_VK_DEVICE_SELECT: 'x' }, other.facts, '')).toEqual({ overlay: {}, drivers: 'system', nativeMessages: ['Vulkan shaderUniform*ArrayDynamicIndexing required.'] });
    expect(other.tried).toEqual([{}, ...MESA.map((m) => ({ VK_DRIVER_FILES: null, VK_ICD_FILENAMES: m, VK_ADD_DRIVER_FILES: null }))]);
  });

  it('uses the drivers the user names as they are, and says which variable when they give nothing', async () => {
    const ok = machine(() => adapter(GPU));
    expect(await chooseVulkanDrivers({ VK_ICD_FILENAMES: '/x.json' }, ok.facts, '')).toEqual({ overlay: {}, drivers: 'VK_ICD_FILENAMES', nativeMessages: [] });
    for (const variable of ['VK_ICD_FILENAMES', 'VK_DRIVER_FILES']) {
      const m = machine((o) => (isSw(o) ? adapter(SWIFTSHADER) : none(LAVAPIPE_REJECTED)));
      const err = await chooseVulkanDrivers({ [variable]: MESA[1] }, m.facts, 'Or use --device cpu.').catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'DAWN_UNAVAILABLE', kind: 'environment' });
      expect((err as Error).message).toBe(`the Vulkan drivers that ${variable} names (${MESA[1]}) gave Dawn no usable adapter: Dawn found no WebGPU adapter (the drivers said: Vulkan shaderUniform*ArrayDynamicIndexing required.)`);
      expect((err as { hint: string }).hint).toBe(
        `lorafuse uses the drivers ${variable} names as they are, without a fallback: unset ${variable} to let lorafuse choose (the system's drivers, else the SwiftShader driver beside Chromium), or name a driver Dawn accepts (e.g. ${variable}=${SW}). Or use --device cpu.`,
      );
      // No silent fallback: SwiftShader was never tried.
      expect(m.tried).toEqual([{}]);
    }
  });

  it('says what is missing when there is nothing to fall back to', async () => {
    await expect(chooseVulkanDrivers({}, machine(() => none(), [], null).facts, '')).rejects.toThrow(/^this machine has no Vulkan driver, and no SwiftShader driver was found beside Chromium/);
    await expect(chooseVulkanDrivers({}, machine(() => none(LAVAPIPE_REJECTED), MESA, null).facts, '')).rejects.toThrow(
      "the system's Vulkan drivers gave Dawn no usable adapter (Dawn found no WebGPU adapter (the drivers said: Vulkan shaderUniform*ArrayDynamicIndexing required.)), and no SwiftShader driver was found beside Chromium to fall back to",
    );
    const m = machine(() => ({ failure: 'the driver probe was killed by SIGSEGV while Dawn started these drivers', nativeOutput: '' }));
    await expect(chooseVulkanDrivers({}, m.facts, '')).rejects.toThrow(/^neither the system's Vulkan drivers \(the driver probe was killed by SIGSEGV .*\) nor the SwiftShader driver \/usr\/lib\/chromium\/vk_swiftshader_icd.json \(the driver probe was killed by SIGSEGV/);
    expect(m.state.closed).toBe(1);
  });
});
