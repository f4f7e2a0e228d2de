// Bundles the runner page (merge driver + kernels + runner page runtime) into one browser module
// beside the compiled CLI, with the same esbuild settings the tests and benchmarks use.
import { fileURLToPath } from 'node:url';
import { bundlePage } from '@lorafuse/runner';

const entry = fileURLToPath(new URL('./src/page/merge-page.ts', import.meta.url));
const out = fileURLToPath(new URL('./dist/page/merge-page.bundle.js', import.meta.url));
await bundlePage(entry, out, { sourcemap: false });
