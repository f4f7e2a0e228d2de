import { chromiumVersion, findChromium, startBrowserRunner } from '@lorafuse/runner';
import { flag, parseCommandArgs } from '../args.js';
import type { Command } from '../command.js';
import { chromiumMergeWing, probeDawn } from '../devices/index.js';
import type { Io } from '../output.js';
import { terminalJson, terminalLines } from '../terminal-text.js';

const HELP = `Usage: lorafuse env [--json]

Shows the environment lorafuse would use: Node.js, the Chromium it finds (CHROME_PATH, /usr/bin/chromium,
usual install paths) and its version, the WebGPU adapter the runner page gets, with its limits, and the
adapter Dawn finds inside Node (--device dawn) with the Vulkan drivers it runs on (the system's, those
VK_DRIVER_FILES / VK_ICD_FILENAMES name, or the SwiftShader driver beside Chromium when the system's give
no usable adapter), or why it cannot start.
Exits 2 when no browser or no WebGPU adapter is available (then use \`lorafuse merge --device cpu\`).

Options:
  --json       print one JSON document on stdout
  -h, --help   show this help
`;

/** Limits worth showing people; `--json` has them all. */
const KEY_LIMITS = ['maxBufferSize', 'maxStorageBufferBindingSize', 'maxComputeWorkgroupsPerDimension', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupStorageSize', 'minStorageBufferOffsetAlignment'];

export const envCommand: Command = {
  help: HELP,
  async run(argv: readonly string[], io: Io): Promise<number> {
    const args = parseCommandArgs('env', argv, { json: { type: 'boolean' } });
    let doc: Record<string, unknown>;
    const { asMergeEnvironmentError, MERGE_PAGE_BUNDLE } = await chromiumMergeWing();
    try {
      const chromium = findChromium();
      const version = await chromiumVersion(chromium.path);
      const runner = await startBrowserRunner({ pageBundlePath: MERGE_PAGE_BUNDLE, chromiumPath: chromium.path, onLog: (line) => io.stderr.write(terminalLines([`[lorafuse page] ${line}`])) });
      try {
        doc = {
          node: process.version,
          platform: `${process.platform} ${process.arch}`,
          chromium: { path: chromium.path, foundVia: chromium.source, version },
          webgpu: runner.adapterInfo,
          dawn: await probeDawn(),
        };
      } finally {
        await runner.close();
      }
    } catch (e) {
      throw asMergeEnvironmentError(e);
    }
    if (flag(args, 'json')) {
      io.stdout.write(terminalJson(doc));
      return 0;
    }
    const gpu = doc['webgpu'] as { vendor: string; architecture: string; device: string; description: string; isFallbackAdapter: boolean; features: string[]; limits: Record<string, number> };
    const dawn = doc['dawn'] as Awaited<ReturnType<typeof probeDawn>>;
    const ch = doc['chromium'] as { path: string; foundVia: string; version: string };
    const lines = [
      `node      ${doc['node']} (${doc['platform']})`,
      `chromium  ${ch.path} (found via ${ch.foundVia})`,
      `          ${ch.version}`,
      `webgpu    ${[gpu.description, gpu.vendor, gpu.architecture, gpu.device].filter(Boolean).join(' / ') || 'adapter'}${gpu.isFallbackAdapter ? ' [software fallback]' : ''}`,
      `features  ${gpu.features.join(', ') || '(none)'}`,
      ...KEY_LIMITS.filter((k) => gpu.limits[k] !== undefined).map((k) => `  ${k.padEnd(36)} ${gpu.limits[k]}`),
      ...('adapter' in dawn
        ? [`dawn      ${dawn.adapter}`, `          on ${dawn.drivers}`, ...(dawn.nativeMessages.length > 0 ? [`          the drivers printed (kept off stderr): ${dawn.nativeMessages.join(' | ')}`] : [])]
        : [`dawn      unavailable: ${dawn.unavailable}`, ...(dawn.hint ? [`          ${dawn.hint}`] : [])]),
    ];
    io.stdout.write(terminalLines(lines));
    return 0;
  },
};
