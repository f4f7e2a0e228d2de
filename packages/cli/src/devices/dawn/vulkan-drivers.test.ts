import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { driverManifestDirs, onlyDriver, quietOverlay, swiftShaderDriver, systemDriverManifests, userDriverVariable } from './vulkan-drivers.js';

describe('the Vulkan drivers Dawn can be given', () => {
  let dir: string;
  let chromium: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lorafuse-vk-'));
    await mkdir(join(dir, 'chromium'));
    chromium = join(dir, 'chromium', 'chrome');
    await writeFile(chromium, '#!/bin/sh\n', { mode: 0o755 });
    await writeFile(join(dir, 'chromium', 'vk_swiftshader_icd.json'), '{}');
    await mkdir(join(dir, 'share', 'vulkan', 'icd.d'), { recursive: true });
    await writeFile(join(dir, 'share', 'vulkan', 'icd.d', 'radeon_icd.x86_64.json'), '{}');
    await writeFile(join(dir, 'share', 'vulkan', 'icd.d', 'lvp_icd.x86_64.json'), '{}');
    await writeFile(join(dir, 'share', 'vulkan', 'icd.d', 'README'), '');
    await mkdir(join(dir, 'extra'));
    await writeFile(join(dir, 'extra', 'nvidia_icd.json'), '{}');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('the user chooses with VK_DRIVER_FILES, which the loader takes over VK_ICD_FILENAMES', () => {
    expect(userDriverVariable({})).toBeUndefined();
    expect(userDriverVariable({ VK_ICD_FILENAMES: '' })).toBeUndefined();
    expect(userDriverVariable({ VK_ICD_FILENAMES: '/a.json' })).toBe('VK_ICD_FILENAMES');
    expect(userDriverVariable({ VK_ICD_FILENAMES: '/a.json', VK_DRIVER_FILES: '/b.json' })).toBe('VK_DRIVER_FILES');
  });

  it("searches the loader's folders in its order: XDG config, /etc, XDG data (defaults when unset)", () => {
    expect(driverManifestDirs({ HOME: '/home/u' })).toEqual([
      '/home/u/.config/vulkan/icd.d',
      '/etc/xdg/vulkan/icd.d',
      '/usr/local/etc/vulkan/icd.d',
      '/etc/vulkan/icd.d',
      '/home/u/.local/share/vulkan/icd.d',
      '/usr/local/share/vulkan/icd.d',
      '/usr/share/vulkan/icd.d',
    ]);
    expect(driverManifestDirs({ XDG_DATA_DIRS: '/opt/a:/opt/b', XDG_CONFIG_DIRS: '/cfg' })).toEqual(['/cfg/vulkan/icd.d', '/usr/local/etc/vulkan/icd.d', '/etc/vulkan/icd.d', '/opt/a/vulkan/icd.d', '/opt/b/vulkan/icd.d']);
  });

  it("finds the system's manifests through XDG_DATA_DIRS and VK_ADD_DRIVER_FILES (files and folders)", () => {
    const env = { XDG_DATA_DIRS: join(dir, 'share'), XDG_CONFIG_DIRS: join(dir, 'none') };
    const icdDir = join(dir, 'share', 'vulkan', 'icd.d');
    expect(systemDriverManifests(env).filter((m) => m.startsWith(dir))).toEqual([join(icdDir, 'lvp_icd.x86_64.json'), join(icdDir, 'radeon_icd.x86_64.json')]);
    expect(systemDriverManifests({ VK_ADD_DRIVER_FILES: `${join(dir, 'extra')}:/missing.json` }, [])).toEqual([join(dir, 'extra', 'nvidia_icd.json'), '/missing.json']);
    expect(systemDriverManifests({}, [join(dir, 'missing')])).toEqual([]);
  });

  it('finds the SwiftShader driver beside the Chromium lorafuse finds, or none', () => {
    expect(swiftShaderDriver({ CHROME_PATH: chromium })).toBe(join(dir, 'chromium', 'vk_swiftshader_icd.json'));
    expect(swiftShaderDriver({ CHROME_PATH: join(dir, 'no-chromium') })).toBeUndefined();
  });

  it("silences Mesa's device-select layer unless the user configures it", () => {
    expect(quietOverlay({})).toEqual({ NODEVICE_SELECT: '1' });
    expect(quietOverlay({ MESA_VK_DEVICE_SELECT: '1002:73bf' })).toEqual({});
    expect(quietOverlay({ NODEVICE_SELECT: '' })).toEqual({});
    expect(onlyDriver('/sw.json', {})).toEqual({ VK_DRIVER_FILES: null, VK_ICD_FILENAMES: '/sw.json', VK_ADD_DRIVER_FILES: null, NODEVICE_SELECT: '1' });
  });
});
