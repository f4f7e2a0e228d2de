/**
 * Which Vulkan drivers Dawn gets on Linux. The rule:
 * - drivers the user names (`VK_DRIVER_FILES`, `VK_ICD_FILENAMES`) are used as named, never
 *   replaced: when they give no usable adapter that is an error naming the variable;
 * - otherwise the system's drivers, when they give Dawn a usable adapter;
 * - otherwise (no system driver at all, or only ones Dawn rejects: Debian's Mesa ICDs on a machine
 *   without their hardware, lavapipe where Dawn refuses it) the SwiftShader driver beside Chromium,
 *   and the device's description says so.
 * The system's drivers are tried in the driver probe's child process, whose stderr collects what
 * native code prints; the setting Dawn then gets in this process is one that printed nothing there
 * and gave the same adapter, when the probe finds one.
 */
import type { AdapterIdentity } from '@lorafuse/kernels';
import { nativeMessages, type DriverProber, type ProbeAttempt } from './driver-probe.js';
import { type DriverOverlay } from './probe-protocol.js';
import { dawnUnavailable } from './unavailable.js';
import { onlyDriver, quietOverlay, userDriverVariable, type Env } from './vulkan-drivers.js';

/** The drivers chosen for Dawn. */
export interface VulkanDriverChoice {
  /** Set while Dawn creates its instance in this process. */
  readonly overlay: DriverOverlay;
  /** Whose drivers: the system's, the ones the user's variable names, or SwiftShader as the fallback. */
  readonly drivers: 'system' | 'VK_DRIVER_FILES' | 'VK_ICD_FILENAMES' | 'swiftshader';
  /** The SwiftShader manifest, when `drivers` is `swiftshader`. */
  readonly swiftShader?: string;
  /** Why SwiftShader, when it is. */
  readonly fallbackReason?: string;
  /** What native code printed while the drivers were tried (one message each). */
  readonly nativeMessages: readonly string[];
}

/** What {@link chooseVulkanDrivers} reads from the machine (the real ones in device.ts; fakes in tests). */
export interface DriverFacts {
  /** The system's driver manifests (`systemDriverManifests`). */
  manifests(env: Env): string[];
  /** The SwiftShader manifest beside Chromium (`swiftShaderDriver`). */
  swiftShader(env: Env): string | undefined;
  /** Starts the driver probe (`startDriverProbe`). */
  startProbe(env: Env): DriverProber;
}

/** Why SwiftShader, in the two cases that lead to it. */
export const NO_SYSTEM_DRIVER = 'this machine has no Vulkan driver';
export const NO_USABLE_SYSTEM_ADAPTER = "the system's Vulkan drivers gave Dawn no usable adapter";

const sameAdapter = (a: AdapterIdentity, b: AdapterIdentity) => a.vendor === b.vendor && a.architecture === b.architecture && a.device === b.device && a.description === b.description;
const isQuiet = (a: ProbeAttempt) => a.nativeOutput.trim() === '';

/** An attempt's failure with what native code said about it. */
function failureOf(a: ProbeAttempt): string {
  const said = nativeMessages(a.nativeOutput);
  return `${'failure' in a ? a.failure : 'no adapter'}${said.length > 0 ? ` (the drivers said: ${said.join(' | ')})` : ''}`;
}

/**
 * The first of `candidates` that gives `adapter` without printing anything, tried in the probe;
 * undefined when none does.
 */
async function quietSetting(prober: DriverProber, adapter: AdapterIdentity, candidates: readonly DriverOverlay[]): Promise<DriverOverlay | undefined> {
  for (const overlay of candidates) {
    const a = await prober.attempt(overlay);
    if ('adapter' in a && sameAdapter(a.adapter, adapter) && isQuiet(a)) return overlay;
  }
  return undefined;
}

/**
 * Chooses Dawn's Vulkan drivers for `env` (see the rule above). Throws `DAWN_UNAVAILABLE` errors
 * whose hint ends with `otherDevices`.
 */
export async function chooseVulkanDrivers(env: Env, facts: DriverFacts, otherDevices: string): Promise<VulkanDriverChoice> {
  const userVariable = userDriverVariable(env);
  const manifests = userVariable ? [] : facts.manifests(env);
  if (userVariable === undefined && manifests.length === 0) {
    // Nothing of the system's to try: no probe (a child process costs ~0.1 s on every start).
    const swiftShader = facts.swiftShader(env);
    if (swiftShader === undefined) throw dawnUnavailable(`${NO_SYSTEM_DRIVER}, and no SwiftShader driver was found beside Chromium (CHROME_PATH, /usr/lib/chromium)`, otherDevices);
    return { overlay: onlyDriver(swiftShader, env), drivers: 'swiftshader', swiftShader, fallbackReason: NO_SYSTEM_DRIVER, nativeMessages: [] };
  }
  const prober = facts.startProbe(env);
  try {
    const first = await prober.attempt({});
    if ('adapter' in first) {
      let overlay: DriverOverlay = {};
      if (!isQuiet(first)) {
        // The same adapter without the noise: first without the layers' chatter, then (when several
        // drivers are installed and one of them is what Dawn complains about) with only one driver.
        const quiet = quietOverlay(env);
        const candidates = [...(Object.keys(quiet).length > 0 ? [quiet] : []), ...(manifests.length > 1 ? manifests.map((m) => onlyDriver(m, env)) : [])];
        overlay = (await quietSetting(prober, first.adapter, candidates)) ?? {};
      }
      return { overlay, drivers: userVariable ?? 'system', nativeMessages: nativeMessages(first.nativeOutput) };
    }
    const swiftShader = facts.swiftShader(env);
    if (userVariable !== undefined) {
      throw dawnUnavailable(`the Vulkan drivers that ${userVariable} names (${env[userVariable]}) gave Dawn no usable adapter: ${failureOf(first)}`, otherDevices, {
        hint: `lorafuse uses the drivers ${userVariable} names as they are, without a fallback: unset ${userVariable} to let lorafuse choose (the system's drivers, else the SwiftShader driver beside Chromium), or name a driver Dawn accepts${swiftShader ? ` (e.g. ${userVariable}=${swiftShader})` : ''}.`,
      });
    }
    if (swiftShader === undefined) {
      throw dawnUnavailable(`${NO_USABLE_SYSTEM_ADAPTER} (${failureOf(first)}), and no SwiftShader driver was found beside Chromium to fall back to`, otherDevices);
    }
    const overlay = onlyDriver(swiftShader, env);
    const fallback = await prober.attempt(overlay);
    if (!('adapter' in fallback)) {
      throw dawnUnavailable(`neither the system's Vulkan drivers (${failureOf(first)}) nor the SwiftShader driver ${swiftShader} (${failureOf(fallback)}) gave Dawn a usable adapter`, otherDevices);
    }
    return { overlay, drivers: 'swiftshader', swiftShader, fallbackReason: NO_USABLE_SYSTEM_ADAPTER, nativeMessages: nativeMessages(first.nativeOutput + fallback.nativeOutput) };
  } finally {
    prober.close();
  }
}

/**
 * The drivers in words, for `lorafuse env`: `the system's Vulkan drivers`, `VK_ICD_FILENAMES=...`
 * or `the SwiftShader driver /usr/lib/chromium/vk_swiftshader_icd.json` (the reason of the fallback
 * is in the device's description).
 */
export function describeDrivers(choice: VulkanDriverChoice, env: Env): string {
  switch (choice.drivers) {
    case 'system':
      return "the system's Vulkan drivers";
    case 'swiftshader':
      return `the SwiftShader driver ${choice.swiftShader}`;
    default:
      return `${choice.drivers}=${env[choice.drivers]}`;
  }
}
