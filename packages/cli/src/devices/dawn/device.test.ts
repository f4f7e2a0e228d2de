import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vulkanDriverOverride } from './device.js';

describe('vulkanDriverOverride (which Vulkan driver Dawn gets)', () => {
  let dir: string;
  let chromium: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lorafuse-vk-'));
    await mkdir(join(dir, 'chromium'));
    chromium = join(dir, 'chromium', 'chrome');
    await writeFile(chromium, '#!/bin/sh\n', { mode: 0o755 });
    await writeFile(join(dir, 'chromium', 'vk_swiftshader_icd.json'), '{}');
    await mkdir(join(dir, 'icd-empty'));
    await mkdir(join(dir, 'icd-gpu'));
    await writeFile(join(dir, 'icd-gpu', 'nvidia_icd.json'), '{}');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("leaves the user's own choice alone", () => {
    expect(vulkanDriverOverride({ VK_ICD_FILENAMES: '/x.json', CHROME_PATH: chromium }, [join(dir, 'icd-empty')])).toBeUndefined();
    expect(vulkanDriverOverride({ VK_DRIVER_FILES: '/x.json', CHROME_PATH: chromium }, [join(dir, 'icd-empty')])).toBeUndefined();
  });

  it("uses the system's drivers when there are any (a GPU's)", () => {
    expect(vulkanDriverOverride({ CHROME_PATH: chromium }, [join(dir, 'icd-empty'), join(dir, 'icd-gpu')])).toBeUndefined();
  });

  it("falls back to the SwiftShader driver beside Chromium's binary, or to nothing", () => {
    expect(vulkanDriverOverride({ CHROME_PATH: chromium }, [join(dir, 'icd-empty'), join(dir, 'missing')])).toBe(join(dir, 'chromium', 'vk_swiftshader_icd.json'));
    expect(vulkanDriverOverride({ CHROME_PATH: join(dir, 'no-chromium') }, [join(dir, 'icd-empty')])).toBeUndefined();
  });
});
