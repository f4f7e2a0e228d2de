#!/usr/bin/env node
// `npm run demo`: the problem lorafuse exists for, on the bundled demo. A tied GPT-2 whose vocabulary
// grew by 3 tokens in training, with both embeddings trained (modules_to_save ["wte", "lm_head"]) and
// rsLoRA on attention. lorafuse merges it on WebGPU (WGSL kernels in headless Chromium), unties the
// embeddings because they now differ, and proves the written checkpoint loads as base + adapter.
// It ends with greedy text from base + adapter, lorafuse's output and a naive tied save, and
// `verify --behaviour` catching the naive one. Output: demo-out/ and demo-out-naive-tied/ (git-ignored). Extra arguments go to `lorafuse merge` (e.g. --device cpu).
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeToF32, parseSafetensorsBytes } from '@lorafuse/core';
import { safetensorsBytes } from '@lorafuse/core/testing';

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

// Behaviour, the way users met the problem: greedy text. A naive tied save (wte kept, the trained
// lm_head dropped, tie_word_embeddings true) next to lorafuse's output and base + adapter unmerged.
const naive = join(root, 'demo-out-naive-tied');
const written = new Uint8Array(readFileSync(join(out, 'model.safetensors')));
const header = parseSafetensorsBytes(written, 'model.safetensors');
const tensors = header.tensors.filter((t) => t.name !== 'lm_head.weight').map((t) => ({
  name: t.name,
  shape: t.shape,
  values: decodeToF32(t.dtype, written.subarray(t.fileOffset, t.fileOffset + t.byteLength)),
}));
rmSync(naive, { recursive: true, force: true });
mkdirSync(naive, { recursive: true });
writeFileSync(join(naive, 'model.safetensors'), await safetensorsBytes(tensors));
writeFileSync(join(naive, 'config.json'), JSON.stringify({ ...JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')), tie_word_embeddings: true }, null, 2));
copyFileSync(join(out, 'tokenizer.json'), join(naive, 'tokenizer.json'));

const prompt = 'Hello';
process.stdout.write(`\nGreedy decoding of ${JSON.stringify(prompt)}, 16 tokens (lorafuse generate, GPT-2's forward pass in TypeScript):\n`);
const runs = [
  ['base + adapter (unmerged)', [join(demo, 'base'), '--adapter', join(demo, 'adapter')]],
  ['lorafuse merge output', [out]],
  ['naive tied save', [naive]],
];
const texts = {};
for (const [label, dirs] of runs) {
  const g = JSON.parse(lorafuse(['generate', ...dirs, '--prompt', prompt, '--tokens', '16', '--ignore-eos', '--json'], { capture: true }));
  texts[label] = g.generated.join(',');
  process.stdout.write(`  ${label.padEnd(26)} ${JSON.stringify(g.text)}  ids ${g.generated.join(',')}\n`);
}
process.stdout.write(texts['lorafuse merge output'] === texts['base + adapter (unmerged)'] ? '  lorafuse\'s output continues exactly as base + adapter.\n' : '  lorafuse\'s output continues DIFFERENTLY from base + adapter (a bug: please report it).\n');
if (texts['naive tied save'] !== texts['base + adapter (unmerged)']) process.stdout.write('  The naive tied save does not: its lm_head is the trained wte.\n');
process.stdout.write(`\n$ npx lorafuse verify ${rel(naive)} --base ${rel(join(demo, 'base'))} --adapter ${rel(join(demo, 'adapter'))} --behaviour\n`);
const check = spawnSync(process.execPath, [cli, 'verify', naive, '--base', join(demo, 'base'), '--adapter', join(demo, 'adapter'), '--behaviour'], { cwd: root, encoding: 'utf8' });
process.stdout.write(check.stdout.split('\n').filter((l) => /behaviour|max \|logit|greedy|behaves|FAILED/.test(l)).join('\n') + '\n');
process.stdout.write(`(exit ${check.status}: the naive save is caught, by weights and by behaviour)\n`);
