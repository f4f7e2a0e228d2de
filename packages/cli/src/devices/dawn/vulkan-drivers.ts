/**
 * The Vulkan drivers Dawn can be given on Linux, found the way the Vulkan loader finds them: the
 * user's own choice (`VK_DRIVER_FILES` / `VK_ICD_FILENAMES`), the system's driver manifests, and
 * the SwiftShader driver that ships beside Chromium.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { findChromium } from '@lorafuse/runner';
import type { DriverOverlay } from './probe-protocol.js';

/** A process environment as lorafuse reads it. */
export type Env = Readonly<Record<string, string | undefined>>;

/**
 * The variable by which the user chose the Vulkan drivers themselves, if any. The loader takes
 * `VK_DRIVER_FILES` over the older `VK_ICD_FILENAMES` when both are set.
 */
export function userDriverVariable(env: Env): 'VK_DRIVER_FILES' | 'VK_ICD_FILENAMES' | undefined {
  if (env['VK_DRIVER_FILES']) return 'VK_DRIVER_FILES';
  if (env['VK_ICD_FILENAMES']) return 'VK_ICD_FILENAMES';
  return undefined;
}

/**
 * The folders the Vulkan loader searches for driver manifests on Linux, in its order: the XDG
 * config folders, the system config folders, then the XDG data folders (`/usr/share` among them).
 */
export function driverManifestDirs(env: Env): string[] {
  const home = env['HOME'];
  const configHome = env['XDG_CONFIG_HOME'] || (home ? join(home, '.config') : undefined);
  const dataHome = env['XDG_DATA_HOME'] || (home ? join(home, '.local', 'share') : undefined);
  const configDirs = (env['XDG_CONFIG_DIRS'] || '/etc/xdg').split(':');
  const dataDirs = (env['XDG_DATA_DIRS'] || '/usr/local/share:/usr/share').split(':');
  const roots = [configHome, ...configDirs, '/usr/local/etc', '/etc', dataHome, ...dataDirs].filter((d): d is string => Boolean(d));
  return [...new Set(roots.map((d) => join(d, 'vulkan', 'icd.d')))];
}

/** The `.json` files directly in `dir`, sorted; none when it cannot be read. */
function manifestsIn(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map((f) => join(dir, f));
  } catch {
    return [];
  }
}

/**
 * The system's Vulkan driver manifests as the loader would load them when the user names none:
 * those in {@link driverManifestDirs}, then the files and folders of `VK_ADD_DRIVER_FILES`.
 * `dirs` is for tests.
 */
export function systemDriverManifests(env: Env, dirs: readonly string[] = driverManifestDirs(env)): string[] {
  const found = dirs.flatMap(manifestsIn);
  for (const entry of (env['VK_ADD_DRIVER_FILES'] ?? '').split(':').filter(Boolean)) {
    let isDir = false;
    try {
      isDir = statSync(entry).isDirectory();
    } catch {
      // a missing file is the loader's to ignore; listing it costs one failed probe
    }
    found.push(...(isDir ? manifestsIn(entry) : [entry]));
  }
  return [...new Set(found)];
}

/**
 * The SwiftShader Vulkan driver that ships beside the Chromium lorafuse finds (`CHROME_PATH`, the
 * usual install paths), or undefined.
 */
export function swiftShaderDriver(env: Env): string | undefined {
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

/**
 * Settings that keep Vulkan layers from printing to stderr without changing which adapter Dawn
 * gets: Mesa's device-select layer (installed with Mesa's drivers) connects to a Wayland display
 * at every instance creation and prints an error when there is none, and it only orders devices,
 * which Dawn does itself by power preference. Left alone when the user configures that layer.
 */
export function quietOverlay(env: Env): DriverOverlay {
  if (env['NODEVICE_SELECT'] !== undefined || env['MESA_VK_DEVICE_SELECT'] !== undefined || env['MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE'] !== undefined) return {};
  return { NODEVICE_SELECT: '1' };
}

/** The overlay that gives Dawn exactly the driver manifest `manifest` (and the quiet settings). */
export function onlyDriver(manifest: string, env: Env): DriverOverlay {
  return { VK_DRIVER_FILES: null, VK_ICD_FILENAMES: manifest, VK_ADD_DRIVER_FILES: null, ...quietOverlay(env) };
}
