/**
 * Dawn (the `webgpu` npm package) inside this Node process: one WebGPU device with lorafuse's
 * raised limits, for the Dawn merge and compare executors. Starts in milliseconds, needs no browser,
 * and the kernels read and write host memory through plain WebGPU buffers (no loopback transfers).
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { EnvironmentError } from '@lorafuse/core';
import { isSoftwareAdapter, requestLorafuseDevice, type AdapterIdentity } from '@lorafuse/kernels';
import { findChromium } from '@lorafuse/runner';

/** Where the Vulkan loader looks for drivers when `VK_ICD_FILENAMES` is not set. */
const SYSTEM_ICD_DIRS = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];

/**
 * The Vulkan driver list to give Dawn: the user's `VK_ICD_FILENAMES`, else none (the system's
 * drivers), else, on a machine without any, the SwiftShader driver that ships with Chromium.
 */
export function vulkanDriverOverride(env: Record<string, string | undefined>, icdDirs = SYSTEM_ICD_DIRS): string | undefined {
  if (env['VK_ICD_FILENAMES'] || env['VK_DRIVER_FILES']) return undefined;
  const systemHasDriver = icdDirs.some((d) => {
    try {
      return readdirSync(d).some((f) => f.endsWith('.json'));
    } catch {
      return false;
    }
  });
  if (systemHasDriver) return undefined;
  let chromium: string;
  try {
    chromium = findChromium(env).path;
  } catch {
    return undefined;
  }
  // Debian's /usr/bin/chromium is a wrapper script; the driver lies beside the real binary.
  for (const dir of [dirname(chromium), '/usr/lib/chromium', '/usr/lib/chromium-browser']) {
    const icd = join(dir, 'vk_swiftshader_icd.json');
    if (existsSync(icd)) return icd;
  }
  return undefined;
}

interface DawnModule {
  create(options: string[]): GPU;
  globals: Record<string, unknown>;
}

/** Why Dawn cannot run here, as a lorafuse error whose hint ends with `otherDevices`. */
function unavailable(message: string, otherDevices: string, cause?: unknown): EnvironmentError {
  return new EnvironmentError('DAWN_UNAVAILABLE', message, {
    hint: `Dawn needs the Vulkan loader (Debian/Ubuntu: \`apt-get install libvulkan1\`) and a Vulkan driver (a GPU's, or the SwiftShader one that Chromium ships). ${otherDevices}`,
    ...(cause === undefined ? {} : { cause }),
  });
}

/** A started Dawn device. */
export interface DawnDevice {
  readonly device: GPUDevice;
  readonly adapterInfo: AdapterIdentity;
  /** The adapter in words, e.g. `SwiftShader driver 5.0.0 (google) [software] via Dawn in Node`. */
  readonly description: string;
  /** Why the device was lost, once it has been (other than by {@link destroy}). */
  readonly lostReason: string | undefined;
  destroy(): void;
}

/**
 * Starts Dawn and requests a device; failures are `EnvironmentError`s (`DAWN_UNAVAILABLE`) whose
 * hint names the Vulkan loader and ends with `otherDevices`.
 */
export async function startDawnDevice(env: Record<string, string | undefined>, otherDevices: string): Promise<DawnDevice> {
  let dawn: DawnModule;
  try {
    dawn = (await import('webgpu')) as unknown as DawnModule;
  } catch (e) {
    throw unavailable(`the \`webgpu\` package (Dawn for Node) could not be loaded: ${(e as Error).message.split('\n')[0]}`, otherDevices, e);
  }
  const icd = vulkanDriverOverride(env);
  // Read by the Vulkan loader when Dawn creates its instance, which happens below.
  if (icd !== undefined) process.env['VK_ICD_FILENAMES'] = icd;
  // The kernels use the WebGPU constants (GPUBufferUsage, ...) as globals, as in a browser.
  for (const [name, value] of Object.entries(dawn.globals)) if (!(name in globalThis)) Object.assign(globalThis, { [name]: value });
  // Dawn's instance must stay referenced while the device is in use: `gpu` is kept by `destroy`.
  // Robustness (clamping every storage access) off, as in the runner's Chromium: lorafuse's own
  // kernels bounds-check every index themselves, and only they run on this device.
  const gpu = dawn.create(['enable-dawn-features=disable_robustness']);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (adapter === null) throw unavailable(`Dawn found no WebGPU adapter${icd ? ` (Vulkan driver ${icd})` : ''}`, otherDevices);
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const adapterInfo: AdapterIdentity = { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description, isFallbackAdapter: Boolean(info.isFallbackAdapter) };
  const device = await requestLorafuseDevice(adapter, 'lorafuse dawn device');
  let lostReason: string | undefined;
  void device.lost.then((l) => {
    if (l.reason !== 'destroyed') lostReason = l.message;
  });
  const name = adapterInfo.description || adapterInfo.device || adapterInfo.architecture || 'WebGPU adapter';
  return {
    device,
    adapterInfo,
    description: `${[name, adapterInfo.vendor ? `(${adapterInfo.vendor})` : '', isSoftwareAdapter(adapterInfo) ? '[software]' : ''].filter(Boolean).join(' ')} via Dawn in Node`,
    get lostReason() {
      return lostReason;
    },
    destroy() {
      device.destroy();
      void gpu;
    },
  };
}
