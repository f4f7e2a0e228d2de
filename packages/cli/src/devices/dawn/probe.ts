/** `lorafuse env`'s look at Dawn: the adapter `--device dawn` would use and its drivers, or why there is none. */
import { describeDrivers } from './choose-drivers.js';
import { startDawnDevice } from './device.js';

/** What {@link probeDawn} found. */
export type DawnProbe =
  | {
      readonly adapter: string;
      /** The Vulkan drivers in words. */
      readonly drivers: string;
      /** Why Dawn runs on the SwiftShader driver, when it does. */
      readonly fallback?: string;
      /** What native code printed while the drivers were tried, kept off stderr. */
      readonly nativeMessages: readonly string[];
    }
  | { readonly unavailable: string; readonly hint?: string };

/** Starts Dawn, notes its adapter and releases the device again; never throws. */
export async function probeDawn(env: Record<string, string | undefined> = process.env): Promise<DawnProbe> {
  try {
    const dawn = await startDawnDevice(env, '');
    dawn.destroy();
    const { fallbackReason, nativeMessages } = dawn.drivers;
    return { adapter: dawn.description, drivers: describeDrivers(dawn.drivers, env), ...(fallbackReason ? { fallback: fallbackReason } : {}), nativeMessages };
  } catch (e) {
    const hint = (e as { hint?: unknown }).hint;
    return { unavailable: (e as Error).message, ...(typeof hint === 'string' && hint ? { hint } : {}) };
  }
}
