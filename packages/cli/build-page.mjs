// Bundles the runner pages (a driver + kernels + runner page runtime each) into browser modules
// beside the compiled Chromium device (dist/devices/chromium/pages/), with the same esbuild
// settings the tests and benchmarks use: merge-page (merge, verify), compare-page (diff) and
// forward-page (logits, generate, verify --behaviour), the last beside dist/forward/.
import { fileURLToPath } from 'node:url';
import { bundlePage } from '@lorafuse/runner';

for (const [folder, name] of [['devices/chromium/pages', 'merge-page'], ['devices/chromium/pages', 'compare-page'], ['forward/pages', 'forward-page']]) {
  const entry = fileURLToPath(new URL(`./src/${folder}/${name}.ts`, import.meta.url));
  const out = fileURLToPath(new URL(`./dist/${folder}/${name}.bundle.js`, import.meta.url));
  await bundlePage(entry, out, { sourcemap: false });
}
