#!/usr/bin/env node
// Builds the merge app into dist/: the page (index.html) and one esbuild bundle of src/main.ts with
// core, kernels and errors inside it, so the app is served whole from 127.0.0.1 (no CDN).
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(pkg, 'dist');
await mkdir(dist, { recursive: true });
await build({
  entryPoints: [join(pkg, 'src/main.ts')],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  sourcemap: true,
  outfile: join(dist, 'app.js'),
  logLevel: 'warning',
});
await copyFile(join(pkg, 'src/index.html'), join(dist, 'index.html'));
