/**
 * GPT-2-shaped checkpoints (random weights, real shapes and key layout, as
 * `GPT2LMHeadModel.save_pretrained` writes them: `transformer.` keys, tied `lm_head`, no attention-mask
 * buffers) and PEFT LoRA adapters for them, written to a directory for the end-to-end benchmarks: the
 * 124M shape, and the XL shape for the size benchmark. The checkpoint is streamed chunk by chunk (never
 * whole in memory) into a temporary directory; nothing is committed.
 */
import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeFromF32, layoutSafetensors, SafetensorsStreamWriter, type ByteSink } from '@lorafuse/core';
import { gpt2LayerShapes, gpt2LoraModules, makeGpt2Checkpoint, makeLoraAdapter, SeededRandom } from '@lorafuse/core/testing';

/** The dimensions of a GPT-2 checkpoint (as its config.json names them, camel-cased). */
export interface Gpt2Shape {
  readonly nEmbd: number;
  readonly nLayer: number;
  readonly nHead: number;
  readonly vocabSize: number;
  readonly nPositions: number;
}

/** GPT-2 small (124M parameters). */
export const GPT2_124M: Gpt2Shape = { nEmbd: 768, nLayer: 12, nHead: 12, vocabSize: 50257, nPositions: 1024 };

/** GPT-2 XL (1.56 B parameters, 6.2 GB in f32). */
export const GPT2_XL: Gpt2Shape = { nEmbd: 1600, nLayer: 48, nHead: 25, vocabSize: 50257, nPositions: 1024 };

/** The adapters the end-to-end benchmark merges. */
export interface BenchAdapterSpec {
  /** Directory name and label. */
  readonly id: string;
  readonly description: string;
  /** GPT-2 module leaves with LoRA (`attn.c_attn`, ...). */
  readonly leaves: readonly string[];
  readonly rank: number;
  readonly alpha: number;
}

export const BENCH_ADAPTERS: readonly BenchAdapterSpec[] = [
  { id: 'c_attn-r8', description: 'LoRA r=8, alpha=16 on the 12 attn.c_attn (PEFT default target for GPT-2)', leaves: ['attn.c_attn'], rank: 8, alpha: 16 },
  {
    id: 'conv1d-r16',
    description: 'LoRA r=16, alpha=32 on all 48 Conv1D (attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj)',
    leaves: ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'],
    rank: 16,
    alpha: 32,
  },
];

/** What {@link writeGpt2Base} wrote. */
export interface WrittenBase {
  /** Base checkpoint directory (config.json, generation_config.json, model.safetensors). */
  readonly baseDir: string;
  /** Size of model.safetensors in bytes. */
  readonly modelBytes: number;
  readonly parameters: number;
  readonly tensors: number;
}

/** What {@link writeGpt2Fixture} wrote. */
export interface WrittenFixture extends WrittenBase {
  /** Adapter directories by {@link BenchAdapterSpec.id}. */
  readonly adapterDirs: Record<string, string>;
}

class FileSink implements ByteSink {
  constructor(private readonly handle: Awaited<ReturnType<typeof open>>) {}
  async write(chunk: Uint8Array): Promise<void> {
    let done = 0;
    while (done < chunk.byteLength) done += (await this.handle.write(chunk, done, chunk.byteLength - done)).bytesWritten;
  }
}

/**
 * Writes a GPT-2 base of `shape` (f32) into `dir/name`, as `GPT2LMHeadModel.save_pretrained` lays it
 * out. Weights are drawn once into a pool of normal(0, 0.02) values and each tensor takes a window of
 * the pool at a seeded offset: realistic magnitudes, all finite, and seconds instead of minutes. The
 * file is written 16 MiB at a time, so a checkpoint of any size costs the same memory.
 */
export async function writeGpt2Base(dir: string, name: string, shape: Gpt2Shape, seed: number): Promise<WrittenBase> {
  const { nEmbd, nLayer, nHead, vocabSize, nPositions } = shape;
  // The tiny generator gives the exact config.json and generation_config.json transformers writes.
  const tiny = await makeGpt2Checkpoint({ nLayer: 1, vocabSize: 8, nPositions: 4, nEmbd: 4, nHead: 1 });
  const config = { ...tiny.config, n_embd: nEmbd, n_layer: nLayer, n_head: nHead, n_positions: nPositions, vocab_size: vocabSize, bos_token_id: vocabSize - 1, eos_token_id: vocabSize - 1 };
  const specs: Array<{ name: string; shape: number[]; kind: 'weight' | 'ln' | 'bias' }> = [];
  specs.push({ name: 'transformer.wte.weight', shape: [vocabSize, nEmbd], kind: 'weight' });
  specs.push({ name: 'transformer.wpe.weight', shape: [nPositions, nEmbd], kind: 'weight' });
  for (let i = 0; i < nLayer; i++) {
    for (const [leaf, leafShape] of Object.entries(gpt2LayerShapes(nEmbd))) {
      specs.push({ name: `transformer.h.${i}.${leaf}`, shape: leafShape, kind: /ln_\d\.weight$/.test(leaf) ? 'ln' : leaf.endsWith('.bias') ? 'bias' : 'weight' });
    }
  }
  specs.push({ name: 'transformer.ln_f.weight', shape: [nEmbd], kind: 'ln' });
  specs.push({ name: 'transformer.ln_f.bias', shape: [nEmbd], kind: 'bias' });

  const baseDir = join(dir, name);
  await mkdir(baseDir, { recursive: true });
  await writeFile(join(baseDir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  await writeFile(join(baseDir, 'generation_config.json'), `${JSON.stringify({ bos_token_id: vocabSize - 1, eos_token_id: vocabSize - 1, transformers_version: '4.57.6' }, null, 2)}\n`);

  const rng = new SeededRandom(seed);
  const POOL = 1 << 22;
  const pool = rng.normalArray(POOL, 0.02);
  const layout = layoutSafetensors(specs.map((s) => ({ name: s.name, dtype: 'F32' as const, shape: s.shape })));
  const byName = new Map(specs.map((s) => [s.name, s] as const));
  const handle = await open(join(baseDir, 'model.safetensors'), 'w');
  let parameters = 0;
  try {
    const writer = new SafetensorsStreamWriter(new FileSink(handle), layout);
    await writer.start();
    const CHUNK = 1 << 22; // values per write (16 MiB)
    const values = new Float32Array(CHUNK);
    for (const entry of layout.entries) {
      const spec = byName.get(entry.name)!;
      const n = spec.shape.reduce((a, b) => a * b, 1);
      parameters += n;
      let offset = rng.nextU32() % POOL;
      for (let done = 0; done < n; done += CHUNK) {
        const m = Math.min(CHUNK, n - done);
        const chunk = values.subarray(0, m);
        if (spec.kind === 'weight') {
          for (let filled = 0; filled < m; ) {
            const take = Math.min(m - filled, POOL - offset);
            chunk.set(pool.subarray(offset, offset + take), filled);
            filled += take;
            offset = (offset + take) % POOL;
          }
        } else if (spec.kind === 'ln') {
          for (let j = 0; j < m; j++) chunk[j] = 1 + pool[(offset + j) % POOL]! * 0.5;
        } else {
          for (let j = 0; j < m; j++) chunk[j] = pool[(offset + j) % POOL]! * 0.5;
        }
        await writer.writeTensorChunk(entry.name, encodeFromF32('F32', chunk));
      }
    }
    await writer.finish();
  } finally {
    await handle.close();
  }
  return { baseDir, modelBytes: layout.totalSize, parameters, tensors: specs.length };
}

/**
 * Writes the adapter `spec` for a GPT-2 of `shape` into `dir`, with the adapter_config.json PEFT
 * saves for GPT-2: PEFT turns `fan_in_fan_out` on for Conv1D targets and saves it so.
 */
export async function writeBenchAdapter(dir: string, shape: Gpt2Shape, spec: BenchAdapterSpec, seed: number, baseModelName: string): Promise<string> {
  const adapter = await makeLoraAdapter({
    seed: seed + spec.rank,
    modules: gpt2LoraModules(shape.nEmbd, Array.from({ length: shape.nLayer }, (_, i) => i), spec.leaves, spec.rank),
    config: { r: spec.rank, lora_alpha: spec.alpha, target_modules: [...new Set(spec.leaves.map((l) => l.split('.').pop()!))].sort(), base_model_name_or_path: baseModelName, fan_in_fan_out: true },
  });
  await mkdir(dir, { recursive: true });
  for (const [name, bytes] of Object.entries(adapter.files)) await writeFile(join(dir, name), bytes);
  return dir;
}

/** Writes the 124M-shaped base (f32) and the adapters of {@link BENCH_ADAPTERS} under `dir`. */
export async function writeGpt2Fixture(dir: string, seed = 124): Promise<WrittenFixture> {
  const base = await writeGpt2Base(dir, 'gpt2-124m', GPT2_124M, seed);
  const adapterDirs: Record<string, string> = {};
  for (const spec of BENCH_ADAPTERS) adapterDirs[spec.id] = await writeBenchAdapter(join(dir, `adapter-${spec.id}`), GPT2_124M, spec, seed, 'gpt2');
  return { ...base, adapterDirs };
}
