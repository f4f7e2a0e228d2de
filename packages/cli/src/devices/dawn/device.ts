/**
 * Dawn (the `webgpu` npm package) inside this Node process: one WebGPU device with lorafuse's
 * raised limits, for the Dawn merge and compare executors. Starts in milliseconds, needs no browser,
 * and the kernels read and write host memory through plain WebGPU buffers (no loopback transfers).
 * Which Vulkan drivers it gets is choose-drivers.ts's rule.
 */
import { isSoftwareAdapter, requestLorafuseDevice, type AdapterIdentity } from '@lorafuse/kernels';
import { chooseVulkanDrivers, type DriverFacts, type VulkanDriverChoice } from './choose-drivers.js';
import { startDriverProbe } from './driver-probe.js';
import { paceDawnPolling } from './event-polling.js';
import { adapterIdentity, adapterName, applyOverlay } from './probe-protocol.js';
import { dawnUnavailable } from './unavailable.js';
import { swiftShaderDriver, systemDriverManifests, type Env } from './vulkan-drivers.js';

interface DawnModule {
  create(options: string[]): GPU;
  globals: Record<string, unknown>;
}

/**
 * Dawn's options. Robustness (clamping every storage access) off, as in the runner's Chromium:
 * lorafuse's own kernels bounds-check every index themselves, and only they run on this device.
 */
const DAWN_OPTIONS = ['enable-dawn-features=disable_robustness'];

/** The machine's drivers, SwiftShader and the probe, as {@link chooseVulkanDrivers} reads them. */
const MACHINE: DriverFacts = {
  manifests: (env) => systemDriverManifests(env),
  swiftShader: swiftShaderDriver,
  startProbe: (env) => startDriverProbe(env, { dawnOptions: DAWN_OPTIONS }),
};

/** The variables the choice depends on: one choice per process for each combination of them. */
const CHOICE_INPUTS = /^(VK_|XDG_|HOME$|CHROME_PATH$|NODEVICE_SELECT$|MESA_VK_DEVICE_SELECT|LD_LIBRARY_PATH$)/;
const choices = new Map<string, Promise<VulkanDriverChoice>>();

/**
 * The Vulkan drivers for Dawn, chosen once per process and environment (merge and its proof both
 * start Dawn; the probe need not run twice). Other platforms than Linux keep Dawn's own backend
 * choice (Metal, D3D12).
 */
function vulkanDrivers(env: Env, otherDevices: string): Promise<VulkanDriverChoice> {
  if (process.platform !== 'linux') return Promise.resolve({ overlay: {}, drivers: 'system', nativeMessages: [] });
  const key = JSON.stringify(Object.entries(env).filter(([k]) => CHOICE_INPUTS.test(k)).sort());
  let choice = choices.get(key);
  if (choice === undefined) {
    choice = chooseVulkanDrivers(env, MACHINE, otherDevices);
    choices.set(key, choice);
    // A failure is not kept: the next start tries again (and gets its own hint).
    choice.catch(() => choices.delete(key));
  }
  return choice;
}

/** A started Dawn device. */
export interface DawnDevice {
  readonly device: GPUDevice;
  readonly adapterInfo: AdapterIdentity;
  /**
   * The adapter in words, e.g. `NVIDIA H200 (nvidia) via Dawn in Node`, or with the SwiftShader
   * fallback `SwiftShader driver 5.0.0 (google) [software] via Dawn in Node (fallback: ...)`.
   */
  readonly description: string;
  /** The Vulkan drivers it runs on, and why (Linux). */
  readonly drivers: VulkanDriverChoice;
  /** Why the device was lost, once it has been (other than by {@link destroy}). */
  readonly lostReason: string | undefined;
  destroy(): void;
}

/**
 * Starts Dawn and requests a device; failures are `EnvironmentError`s (`DAWN_UNAVAILABLE`) whose
 * hint ends with `otherDevices`. `env` is the environment the drivers are chosen for (the probe
 * runs with it); Dawn in this process reads this process's environment plus the chosen overlay.
 */
export async function startDawnDevice(env: Env, otherDevices: string): Promise<DawnDevice> {
  let dawn: DawnModule;
  try {
    dawn = (await import('webgpu')) as unknown as DawnModule;
  } catch (e) {
    throw dawnUnavailable(`the \`webgpu\` package (Dawn for Node) could not be loaded: ${(e as Error).message.split('\n')[0]}`, otherDevices, { cause: e });
  }
  const drivers = await vulkanDrivers(env, otherDevices);
  // The kernels use the WebGPU constants (GPUBufferUsage, ...) as globals, as in a browser.
  for (const [name, value] of Object.entries(dawn.globals)) if (!(name in globalThis)) Object.assign(globalThis, { [name]: value });
  // The loader reads the overlay when Dawn creates its Vulkan instance, by the time the adapter
  // is there; Chromium and other children started later see the environment as it was.
  const restore = applyOverlay(drivers.overlay);
  let gpu: GPU;
  let adapter: GPUAdapter | null;
  try {
    gpu = dawn.create(DAWN_OPTIONS);
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } finally {
    restore();
  }
  if (adapter === null) throw dawnUnavailable(`Dawn found no WebGPU adapter${drivers.swiftShader ? ` (Vulkan driver ${drivers.swiftShader})` : ''}`, otherDevices);
  const adapterInfo = adapterIdentity(adapter.info);
  const device = await requestLorafuseDevice(adapter, 'lorafuse dawn device');
  let lostReason: string | undefined;
  void device.lost.then((l) => {
    if (l.reason !== 'destroyed') lostReason = l.message;
  });
  const software = isSoftwareAdapter(adapterInfo) ? ' [software]' : '';
  // A software adapter's kernels run on this process's CPUs: Dawn's busy polling must not take one.
  const unpace = software ? paceDawnPolling() : () => undefined;
  const fallback = drivers.fallbackReason ? ` (fallback: ${drivers.fallbackReason})` : '';
  return {
    device,
    adapterInfo,
    description: `${adapterName(adapterInfo)}${software} via Dawn in Node${fallback}`,
    drivers,
    get lostReason() {
      return lostReason;
    },
    destroy() {
      device.destroy();
      unpace();
      // Dawn's instance must stay referenced while the device is in use.
      void gpu;
    },
  };
}
