/**
 * Debian's Mesa Vulkan drivers in a private folder (prepared by `node scripts/mesa-vulkan.mjs
 * prepare`), for the tests of Dawn on a machine that has such drivers: lavapipe, which Dawn
 * rejects, and Intel/AMD drivers that find no hardware.
 *
 * `LORAFUSE_TEST_MESA_VULKAN=DIR` is the test mode of CI's driver step: every CLI the tests run
 * gets the drivers (so the existing Dawn tests run with them present), and a missing DIR fails the
 * tests instead of skipping them. Without it, the tests of the drivers' case run when the default
 * folder (.cache/mesa-vulkan) is prepared, and are skipped, by a name that says how to prepare
 * it, when it is not.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));

/** Whether the test mode is on (the drivers are required). */
export const MESA_VULKAN_REQUIRED = Boolean(process.env['LORAFUSE_TEST_MESA_VULKAN']);

/** The prepared folder. */
export const MESA_VULKAN_DIR = resolve(REPO, process.env['LORAFUSE_TEST_MESA_VULKAN'] || join('.cache', 'mesa-vulkan'));

/** What scripts/mesa-vulkan.mjs wrote into the folder's env.json. */
interface MesaVulkanFolder {
  readonly prepend: Readonly<Record<string, string>>;
  readonly icds: ReadonlyArray<{ readonly manifest: string; readonly library: string }>;
}

/** The folder's description, or undefined when it is not prepared. */
export function mesaVulkanFolder(): MesaVulkanFolder | undefined {
  const file = join(MESA_VULKAN_DIR, 'env.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as MesaVulkanFolder) : undefined;
}

/**
 * The variables that put the drivers on the Vulkan loader's path as if they were installed
 * (XDG_DATA_DIRS is where the loader finds /usr/share's drivers, too), on top of `base`.
 */
export function mesaVulkanEnv(folder: MesaVulkanFolder, base: Readonly<Record<string, string | undefined>> = process.env): Record<string, string> {
  const defaults: Record<string, string> = { XDG_DATA_DIRS: '/usr/local/share:/usr/share' };
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(folder.prepend)) env[name] = [value, base[name] || defaults[name]].filter(Boolean).join(':');
  return env;
}

/** The test mode's variables for every CLI run (none outside the test mode); throws when DIR is not prepared. */
export function testModeEnv(): Record<string, string> {
  if (!MESA_VULKAN_REQUIRED) return {};
  const folder = mesaVulkanFolder();
  if (folder === undefined) throw new Error(`LORAFUSE_TEST_MESA_VULKAN: ${MESA_VULKAN_DIR} is not prepared; run \`node scripts/mesa-vulkan.mjs prepare --dir ${MESA_VULKAN_DIR}\``);
  return mesaVulkanEnv(folder);
}
