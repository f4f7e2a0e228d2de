/**
 * Dawn's Vulkan drivers, end to end: native output is kept off stderr on any machine, and with
 * Debian's Mesa drivers present (lavapipe, which Dawn rejects, and Intel/AMD drivers without their
 * hardware) `--device dawn` falls back to the SwiftShader driver and says so.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openMergeDevice } from '../src/devices/index.js';
import { OpenFiles } from '../src/fs/inputs.js';
import { removeDir, runLorafuse, tempDir } from './helpers.js';
import { MESA_VULKAN_DIR, MESA_VULKAN_REQUIRED, mesaVulkanEnv, mesaVulkanFolder } from './mesa-vulkan.js';

const DEMO = fileURLToPath(new URL('../../../examples/demo/', import.meta.url));
const BASE = join(DEMO, 'base');
const ADAPTER = join(DEMO, 'adapter');
const FALLBACK = "(fallback: the system's Vulkan drivers gave Dawn no usable adapter)";

/** Every line of `stderr` is lorafuse's own (its error and hint), none printed by native code. */
function onlyLorafuseLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l !== '' && !l.startsWith('lorafuse: ') && !l.startsWith('  what to do: '));
}

let dir: string;
beforeAll(async () => {
  dir = await tempDir('lorafuse-vk-e2e-');
});
afterAll(async () => {
  await removeDir(dir);
});

describe('Dawn on the Vulkan drivers of this machine', () => {
  it('keeps what the loader and Dawn print off stderr, and names the variable of drivers that give nothing', async () => {
    const r = await runLorafuse(['merge', BASE, ADAPTER, '--out', join(dir, 'none'), '--device', 'dawn'], { VK_ICD_FILENAMES: '/nonexistent/icd.json' });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^lorafuse: error: the Vulkan drivers that VK_ICD_FILENAMES names \(\/nonexistent\/icd\.json\) gave Dawn no usable adapter: Dawn found no WebGPU adapter \(the drivers said: .*Found no drivers/m);
    expect(r.stderr).toMatch(/what to do: lorafuse uses the drivers VK_ICD_FILENAMES names as they are, without a fallback: unset VK_ICD_FILENAMES/);
    expect(onlyLorafuseLines(r.stderr)).toEqual([]);
  });

  it('lorafuse env shows the adapter and the drivers it runs on, and nothing on stderr', async () => {
    const r = await runLorafuse(['env', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const { dawn } = JSON.parse(r.stdout);
    expect(dawn.adapter, JSON.stringify(dawn)).toMatch(/ via Dawn in Node/);
    expect(dawn.drivers).toMatch(/^(the system's Vulkan drivers|the SwiftShader driver \/.*vk_swiftshader_icd\.json|VK_(ICD_FILENAMES|DRIVER_FILES)=.*)$/);
    if (dawn.fallback) expect(dawn.adapter).toContain(`(fallback: ${dawn.fallback})`);
  });
});

const mesa = mesaVulkanFolder();
describe.runIf(mesa !== undefined || MESA_VULKAN_REQUIRED)(`Dawn with Debian's Mesa Vulkan drivers on the loader's path (${MESA_VULKAN_DIR}; skipped until \`node scripts/mesa-vulkan.mjs prepare\` has made it)`, () => {
  // In the test mode a missing folder fails here rather than skipping the block.
  const env = () => {
    if (mesa === undefined) throw new Error(`${MESA_VULKAN_DIR} is not prepared: run \`node scripts/mesa-vulkan.mjs prepare\``);
    return mesaVulkanEnv(mesa);
  };

  it('lorafuse env: Dawn on the SwiftShader driver, with what the system drivers printed kept off stderr', async () => {
    const r = await runLorafuse(['env'], env());
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(new RegExp(`^dawn {6}SwiftShader .* via Dawn in Node ${FALLBACK.replace(/[()]/g, '\\$&')}$`, 'm'));
    expect(r.stdout).toMatch(/^ {10}on the SwiftShader driver \/.*vk_swiftshader_icd\.json$/m);
    expect(r.stdout).toMatch(/^ {10}the drivers printed \(kept off stderr\): ./m);
  });

  it('merge, verify and diff --device dawn run on the SwiftShader driver and print nothing of the drivers', async () => {
    const out = join(dir, 'mesa-out');
    const m = await runLorafuse(['merge', BASE, ADAPTER, '--out', out, '--device', 'dawn', '--json'], env());
    expect(m.code, m.stderr).toBe(0);
    expect(m.stderr).toBe('');
    expect(JSON.parse(m.stdout).deviceDescription).toMatch(new RegExp(`^SwiftShader .* via Dawn in Node ${FALLBACK.replace(/[()]/g, '\\$&')}$`));
    const v = await runLorafuse(['verify', out, '--base', BASE, '--adapter', ADAPTER, '--device', 'dawn'], env());
    expect(v.code, v.stderr + v.stdout).toBe(0);
    expect(v.stderr).toBe('');
    const d = await runLorafuse(['diff', BASE, out, '--device', 'dawn', '--json'], env());
    expect(d.code, d.stderr).toBe(1);
    expect(d.stderr).toBe('');
    expect(JSON.parse(d.stdout).deviceDescription).toContain(FALLBACK);
  });

  it('drivers the user names are used as named: an error that names the variable, no fallback, no native lines', async () => {
    const lavapipe = mesa?.icds.find((i) => i.manifest.includes('lvp_icd'))?.manifest ?? 'lvp_icd.json';
    for (const variable of ['VK_ICD_FILENAMES', 'VK_DRIVER_FILES']) {
      const r = await runLorafuse(['merge', BASE, ADAPTER, '--out', join(dir, variable), '--device', 'dawn'], { ...env(), [variable]: lavapipe });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`lorafuse: error: the Vulkan drivers that ${variable} names (${lavapipe}) gave Dawn no usable adapter`);
      expect(r.stderr).toContain(`without a fallback: unset ${variable}`);
      expect(onlyLorafuseLines(r.stderr)).toEqual([]);
    }
  });

  it('--device auto: the CPU executor, whether a GPU device node is there (Dawn and Chromium only offer software) or not', async () => {
    const noGpu = await runLorafuse(['merge', BASE, ADAPTER, '--out', join(dir, 'auto'), '--json'], env());
    expect(noGpu.code, noGpu.stderr).toBe(0);
    expect(noGpu.stderr).toBe('');
    expect(JSON.parse(noGpu.stdout).device).toBe('cpu');
    // As on a machine with /dev/dri but no driver Dawn accepts: Dawn falls back to SwiftShader, a
    // software adapter, so auto moves on (Chromium's is software too) to the CPU executor.
    const selected = await openMergeDevice('auto', new OpenFiles(), { env: { ...process.env, ...env() }, gpuProbe: () => ['/dev/dri/renderD128'] });
    await selected.executor.close();
    expect(selected.executor.device).toBe('cpu');
    expect(selected.reason).toMatch(/^auto: (Chromium's only WebGPU adapter is .*, a software fallback|Dawn's only adapter is SwiftShader)/);
  });
});
