#!/usr/bin/env node
// Regenerates the bundled demo (examples/demo/base + examples/demo/adapter) with the project's seeded
// fixture generator: the problem lorafuse exists for. A tied GPT-2 whose vocabulary was resized by 3
// tokens during training, with modules_to_save ["wte", "lm_head"] (both embeddings fully trained,
// now different) and rsLoRA on the attention layers. Committed; reruns give identical bytes.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixtureTokenizerJson, gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter, SeededRandom } from '@lorafuse/core/testing';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const demo = join(root, 'examples', 'demo');

const nEmbd = 32;
const vocab = 96;
const added = 3;
const base = await makeGpt2Checkpoint({ seed: 2026, nEmbd, nLayer: 2, nHead: 4, vocabSize: vocab, nPositions: 64 });

// Training started from the resized, tied matrix (old rows + new rows), then wte and lm_head (two
// trained copies under modules_to_save) drifted apart.
const rng = new SeededRandom(77);
const oldWte = base.tensors.find((t) => t.name === 'transformer.wte.weight').values;
const resized = new Float32Array((vocab + added) * nEmbd);
resized.set(oldWte);
for (let i = oldWte.length; i < resized.length; i++) resized[i] = rng.normal(0.02);
const trainedWte = resized.map((v) => v + rng.normal(0.002));
const trainedHead = resized.map((v) => v + rng.normal(0.002));

const adapter = await makeLoraAdapter({
  seed: 11,
  modules: gpt2LoraModules(nEmbd, [0, 1], ['attn.c_attn', 'attn.c_proj'], 8),
  config: {
    base_model_name_or_path: 'lorafuse-demo-gpt2',
    r: 8,
    lora_alpha: 16,
    use_rslora: true,
    target_modules: ['c_attn', 'attn.c_proj'],
    modules_to_save: ['wte', 'lm_head'],
    // What PEFT saves for GPT-2 more often than not (it saves the last layer's value): lorafuse must not trust it.
    fan_in_fan_out: false,
  },
  extraTensors: [
    { name: 'transformer.wte.weight', shape: [vocab + added, nEmbd], values: trainedWte },
    { name: 'lm_head.weight', shape: [vocab + added, nEmbd], values: trainedHead },
  ],
});

// Tokenizers sized to each vocabulary: printable ASCII and <|endoftext|> (96 tokens), and for the
// adapter the 3 tokens training added, so that `lorafuse generate --prompt` works on the demo.
const baseFiles = { ...base.files, 'tokenizer.json': fixtureTokenizerJson() };
const adapterFiles = { ...adapter.files, 'tokenizer.json': fixtureTokenizerJson({ added: ['<|user|>', '<|bot|>', '<|end|>'] }) };
for (const [dir, files] of [['base', baseFiles], ['adapter', adapterFiles]]) {
  await rm(join(demo, dir), { recursive: true, force: true });
  await mkdir(join(demo, dir), { recursive: true });
  for (const [name, bytes] of Object.entries(files)) await writeFile(join(demo, dir, name), bytes);
}
process.stderr.write(`wrote ${demo}/base and ${demo}/adapter\n`);
