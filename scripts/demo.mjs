#!/usr/bin/env node
// `npm run demo`: merges the bundled demo adapter into the bundled demo GPT-2 with the WebGPU kernels
// in headless Chromium, then shows what was written. Output: demo-out/ (git-ignored).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'packages', 'cli', 'bin', 'lorafuse.js');
const demo = join(root, 'examples', 'demo');
const out = join(root, 'demo-out');

function lorafuse(...args) {
  process.stdout.write(`\n$ lorafuse ${args.map((a) => a.replace(`${root}/`, '')).join(' ')}\n`);
  const r = spawnSync(process.execPath, [cli, ...args], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) process.exit(r.status ?? 2);
}

lorafuse('merge', join(demo, 'base'), join(demo, 'adapter'), '--out', out, '--overwrite', ...process.argv.slice(2));
lorafuse('inspect', out);
