// Bundles what runs outside the CLI's main thread, after tsc:
// - the runner pages (a driver + kernels + runner page runtime each) into browser modules beside the
//   compiled Chromium device (dist/devices/chromium/pages/), with the same esbuild settings the tests
//   and benchmarks use: merge-page (merge, verify), compare-page (diff) and forward-page (logits,
//   generate, verify --behaviour), the last beside dist/forward/;
// - the CPU executor's merge worker, in place of tsc's file: one small module (the merge loop it
//   uses, ~8 KB) instead of all of core, re2js and kernels, which each worker otherwise compiles
//   while the main thread plans and copies (~50 ms of both cores at every start, measured).
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { bundlePage } from '@lorafuse/runner';

for (const [folder, name] of [['devices/chromium/pages', 'merge-page'], ['devices/chromium/pages', 'compare-page'], ['forward/pages', 'forward-page']]) {
  const entry = fileURLToPath(new URL(`./src/${folder}/${name}.ts`, import.meta.url));
  const out = fileURLToPath(new URL(`./dist/${folder}/${name}.bundle.js`, import.meta.url));
  await bundlePage(entry, out, { sourcemap: false });
}

await build({
  entryPoints: [fileURLToPath(new URL('./src/devices/cpu/merge-worker.ts', import.meta.url))],
  outfile: fileURLToPath(new URL('./dist/devices/cpu/merge-worker.js', import.meta.url)),
  bundle: true,
  platform: 'node',
  format: 'esm',
  sourcemap: true,
  logLevel: 'warning',
});
