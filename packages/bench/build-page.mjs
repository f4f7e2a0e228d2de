// Bundles the benchmark page (kernels + runner page runtime + bench-page.ts) into one browser module
// beside the compiled benchmark, with the same esbuild settings the CLI and the kernel tests use.
import { fileURLToPath } from 'node:url';
import { bundlePage } from '@lorafuse/runner';

const entry = fileURLToPath(new URL('./src/page/bench-page.ts', import.meta.url));
const out = fileURLToPath(new URL('./dist/page/bench-page.bundle.js', import.meta.url));
await bundlePage(entry, out, { sourcemap: false });
