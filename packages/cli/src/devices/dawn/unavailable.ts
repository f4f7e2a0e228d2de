/** The error of a Dawn that cannot run here. */
import { EnvironmentError } from '@lorafuse/core';

/** The setup Dawn needs, for hints. */
export const DAWN_NEEDS = 'Dawn needs the Vulkan loader (Debian/Ubuntu: `apt-get install libvulkan1`) and a Vulkan driver (a GPU\'s, or the SwiftShader one that Chromium ships).';

/**
 * Why Dawn cannot run here (`DAWN_UNAVAILABLE`); the hint is `hint` (default {@link DAWN_NEEDS})
 * followed by `otherDevices`, the devices the user can run instead.
 */
export function dawnUnavailable(message: string, otherDevices: string, options: { hint?: string; cause?: unknown } = {}): EnvironmentError {
  return new EnvironmentError('DAWN_UNAVAILABLE', message, {
    hint: [options.hint ?? DAWN_NEEDS, otherDevices].filter(Boolean).join(' '),
    ...(options.cause === undefined ? {} : { cause: options.cause }),
  });
}
