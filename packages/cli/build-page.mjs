// Bundles the runner pages (a driver + kernels + runner page runtime each) into browser modules
// beside the compiled Chromium device (dist/devices/chromium/pages/), with the same esbuild
// settings the tests and benchmarks use: merge-page (merge, verify) and compare-page (diff).
import { fileURLToPath } from 'node:url';
import { bundlePage } from '@lorafuse/runner';

for (const name of ['merge-page', 'compare-page']) {
  const entry = fileURLToPath(new URL(`./src/devices/chromium/pages/${name}.ts`, import.meta.url));
  const out = fileURLToPath(new URL(`./dist/devices/chromium/pages/${name}.bundle.js`, import.meta.url));
  await bundlePage(entry, out, { sourcemap: false });
}
