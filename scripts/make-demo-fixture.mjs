#!/usr/bin/env node
// Regenerates the bundled demo (examples/demo/base + examples/demo/adapter) with the project's seeded
// fixture generator. The output is committed; rerunning gives byte-identical files.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter } from '@lorafuse/core/testing';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const demo = join(root, 'examples', 'demo');

const nEmbd = 32;
const base = await makeGpt2Checkpoint({ seed: 2026, nEmbd, nLayer: 2, nHead: 4, vocabSize: 96, nPositions: 64 });
const rank = (m) => (m.endsWith('mlp.c_fc') ? 4 : 8);
const adapter = await makeLoraAdapter({
  seed: 11,
  modules: gpt2LoraModules(nEmbd, [0, 1], ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'], rank),
  config: {
    base_model_name_or_path: 'lorafuse-demo-gpt2',
    r: 8,
    lora_alpha: 16,
    rank_pattern: { c_fc: 4 },
    alpha_pattern: { '^transformer.h.1.mlp.c_proj': 4 },
    target_modules: ['c_fc', 'c_attn', 'c_proj'],
    // What PEFT saves for GPT-2 more often than not (SPEC §3.1): lorafuse must not trust it.
    fan_in_fan_out: false,
  },
});

for (const [dir, files] of [['base', base.files], ['adapter', adapter.files]]) {
  await rm(join(demo, dir), { recursive: true, force: true });
  await mkdir(join(demo, dir), { recursive: true });
  for (const [name, bytes] of Object.entries(files)) await writeFile(join(demo, dir, name), bytes);
}
process.stderr.write(`wrote ${demo}/base and ${demo}/adapter\n`);
