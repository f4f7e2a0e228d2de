#!/usr/bin/env node
// `npm run demo`: the problem lorafuse exists for, on the bundled demo. A tied GPT-2 whose vocabulary
// grew by 3 tokens in training, with both embeddings trained (modules_to_save ["wte", "lm_head"]) and
// rsLoRA on attention. lorafuse merges it on WebGPU (WGSL kernels in headless Chromium), unties the
// embeddings because they now differ, and proves the written checkpoint loads as base + adapter.
// Output: demo-out/ (git-ignored). Extra arguments go to `lorafuse merge` (e.g. --device cpu).
import { spawnSync } from 'node:child_process';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'packages', 'cli', 'bin', 'lorafuse.js');
const demo = join(root, 'examples', 'demo');
const out = join(root, 'demo-out');
const rel = (p) => relative(root, p) || '.';

function lorafuse(args, { capture = false } = {}) {
  process.stdout.write(`\n$ npx lorafuse ${args.map((a) => (a.startsWith(root) ? rel(a) : a)).join(' ')}\n`);
  const r = spawnSync(process.execPath, [cli, ...args], { stdio: capture ? ['ignore', 'pipe', 'inherit'] : 'inherit', cwd: root, encoding: 'utf8' });
  if (r.status !== 0) {
    if (capture && r.stdout) process.stdout.write(r.stdout);
    process.exit(r.status ?? 2);
  }
  return r.stdout;
}

lorafuse(['doctor', join(demo, 'base'), join(demo, 'adapter')]);
const report = JSON.parse(lorafuse(['merge', join(demo, 'base'), join(demo, 'adapter'), '--out', out, '--overwrite', '--json', '--device', 'webgpu', ...process.argv.slice(2)], { capture: true }));

process.stdout.write(`merged on ${report.device} (${report.deviceDescription}) in ${report.seconds.toFixed(2)} s: `
  + `${report.tensors.merged} LoRA-merged, ${report.tensors.replaced} replaced by trained tensors, ${report.tensors.copied} copied unchanged\n`);
for (const c of report.configChanges) process.stdout.write(`  config.json: ${c}\n`);
const untied = report.findings.find((f) => f.code === 'UNTIED');
const m = / (\d+) row\(s\), max \|difference\| ([0-9.e+-]+)/.exec(report.tie.reason);
if (report.tie.decision === 'untie' && m) {
  process.stdout.write(`\nA naive tied save (keep tie_word_embeddings, store wte only — what transformers v4 does on reload)\n`
    + `would replace the trained lm_head with wte: ${m[1]} of its rows would change, by up to ${m[2]}.\n`
    + `lorafuse stored both and set tie_word_embeddings: false instead.\n`);
} else if (untied) {
  process.stdout.write(`  ${untied.message}\n`);
}
process.stdout.write(`verified after writing: what transformers ${report.verified.map((v) => v.transformers).join(' and ')} load equals what was meant, byte for byte (${report.verified[0].parameters} parameters)\n`);

lorafuse(['verify', out, '--base', join(demo, 'base'), '--adapter', join(demo, 'adapter')]);
