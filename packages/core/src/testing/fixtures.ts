/**
 * Deterministic GPT-2 checkpoints and PEFT LoRA adapters in the exact on-disk layout transformers and
 * PEFT write (`transformer.`-prefixed or bare GPT2Model keys, no lm_head.weight when tied, adapter keys
 * with or without `base_model.model.`, `{"format":"pt"}` metadata): for tests, the bundled demo and
 * benchmarks. Pure: returns file bytes.
 */
import { encodeFromF32 } from '../safetensors/dtype.js';
import { layoutSafetensors, SafetensorsStreamWriter } from '../safetensors/writer.js';
import { MemorySink } from '../io.js';
import { BODY_PREFIX } from '../gpt2/architecture.js';
import { SeededRandom } from './random.js';

/** A tensor to write: f32 values, stored as `dtype`. */
export interface FixtureTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly values: Float32Array;
  readonly dtype?: 'F32' | 'F16' | 'BF16';
}

/** Serialises tensors into a safetensors file the way the reference writer lays it out. */
export async function safetensorsBytes(tensors: readonly FixtureTensor[], metadata: Record<string, string> = { format: 'pt' }): Promise<Uint8Array> {
  const layout = layoutSafetensors(tensors.map((t) => ({ name: t.name, dtype: t.dtype ?? 'F32', shape: [...t.shape] })), metadata);
  const sink = new MemorySink();
  const writer = new SafetensorsStreamWriter(sink, layout);
  await writer.start();
  const byName = new Map(tensors.map((t) => [t.name, t] as const));
  for (const e of layout.entries) {
    const t = byName.get(e.name)!;
    await writer.writeTensorChunk(e.name, encodeFromF32(t.dtype ?? 'F32', t.values));
  }
  await writer.finish();
  return sink.bytes();
}

/** Shape of a generated GPT-2. Defaults give a tiny model (a few hundred KB). */
export interface Gpt2FixtureOptions {
  seed?: number;
  nEmbd?: number;
  nLayer?: number;
  nHead?: number;
  vocabSize?: number;
  nPositions?: number;
  /** `lmhead`: GPT2LMHeadModel keys (`transformer.` prefix); `bare`: GPT2Model keys (Hub gpt2 style). */
  layout?: 'lmhead' | 'bare';
  dtype?: 'F32' | 'F16' | 'BF16';
  /** Old uploads store the causal-mask buffers `h.N.attn.bias` [1,1,P,P] and `h.N.attn.masked_bias` []. */
  withAttnBuffers?: boolean;
  /** Store `lm_head.weight` (different from wte) and set `tie_word_embeddings: false`. */
  untied?: boolean;
  /** MLP width (`n_inner`); null/absent: 4·n_embd, as GPT2Config. */
  nInner?: number;
  /**
   * A head checkpoint instead of GPT2LMHeadModel: `score` (GPT2ForSequenceClassification, `score.weight`),
   * `classifier` (GPT2ForTokenClassification, `classifier.weight`/`.bias`), `double-heads`
   * (GPT2DoubleHeadsModel, `multiple_choice_head.summary.weight`/`.bias`, lm_head tied).
   */
  head?: 'score' | 'classifier' | 'double-heads';
  /** Labels of a `score` / `classifier` head (default 3). */
  numLabels?: number;
}

/** A generated checkpoint: `config.json`, `model.safetensors`, and the tensors in f32. */
export interface Gpt2Fixture {
  readonly config: Record<string, unknown>;
  readonly tensors: readonly FixtureTensor[];
  readonly files: Record<string, Uint8Array>;
}

/** GPT-2 module shapes for one layer, keyed by leaf path, as Conv1D stores them ([in, out]). */
export function gpt2LayerShapes(nEmbd: number, nInner = 4 * nEmbd): Record<string, number[]> {
  return {
    'ln_1.weight': [nEmbd],
    'ln_1.bias': [nEmbd],
    'attn.c_attn.weight': [nEmbd, 3 * nEmbd],
    'attn.c_attn.bias': [3 * nEmbd],
    'attn.c_proj.weight': [nEmbd, nEmbd],
    'attn.c_proj.bias': [nEmbd],
    'ln_2.weight': [nEmbd],
    'ln_2.bias': [nEmbd],
    'mlp.c_fc.weight': [nEmbd, nInner],
    'mlp.c_fc.bias': [nInner],
    'mlp.c_proj.weight': [nInner, nEmbd],
    'mlp.c_proj.bias': [nEmbd],
  };
}

/** Generates a GPT-2 checkpoint directory's files. */
export async function makeGpt2Checkpoint(options: Gpt2FixtureOptions = {}): Promise<Gpt2Fixture> {
  const o = { seed: 1, nEmbd: 16, nLayer: 2, nHead: 2, vocabSize: 50, nPositions: 32, layout: 'lmhead' as const, dtype: 'F32' as const, withAttnBuffers: false, untied: false, ...options };
  const rng = new SeededRandom(o.seed);
  const prefix = o.layout === 'lmhead' ? BODY_PREFIX : '';
  const tensors: FixtureTensor[] = [];
  const add = (name: string, shape: number[], values?: Float32Array) => {
    const n = shape.reduce((a, b) => a * b, 1);
    tensors.push({ name, shape, values: values ?? rng.normalArray(n, 0.02), dtype: o.dtype });
  };
  add(`${prefix}wte.weight`, [o.vocabSize, o.nEmbd]);
  add(`${prefix}wpe.weight`, [o.nPositions, o.nEmbd]);
  for (let i = 0; i < o.nLayer; i++) {
    for (const [leaf, shape] of Object.entries(gpt2LayerShapes(o.nEmbd, o.nInner ?? 4 * o.nEmbd))) {
      const isLnWeight = /ln_\d\.weight$/.test(leaf);
      const n = shape.reduce((a, b) => a * b, 1);
      add(`${prefix}h.${i}.${leaf}`, shape, isLnWeight ? new Float32Array(n).fill(1).map(() => 1 + rng.normal(0.01)) : undefined);
    }
    if (o.withAttnBuffers) {
      const p = o.nPositions;
      const mask = new Float32Array(p * p);
      for (let r = 0; r < p; r++) for (let c = 0; c <= r; c++) mask[r * p + c] = 1;
      tensors.push({ name: `${prefix}h.${i}.attn.bias`, shape: [1, 1, p, p], values: mask, dtype: 'F32' });
      tensors.push({ name: `${prefix}h.${i}.attn.masked_bias`, shape: [], values: Float32Array.of(-10000), dtype: 'F32' });
    }
  }
  add(`${prefix}ln_f.weight`, [o.nEmbd], new Float32Array(o.nEmbd).map(() => 1 + rng.normal(0.01)));
  add(`${prefix}ln_f.bias`, [o.nEmbd]);
  if (o.untied) add('lm_head.weight', [o.vocabSize, o.nEmbd]);
  const labels = o.numLabels ?? 3;
  if (o.head === 'score') add('score.weight', [labels, o.nEmbd]);
  if (o.head === 'classifier') {
    add('classifier.weight', [labels, o.nEmbd]);
    add('classifier.bias', [labels]);
  }
  if (o.head === 'double-heads') {
    // A module of the model itself, beside `transformer` and `lm_head`: never prefixed.
    add('multiple_choice_head.summary.weight', [1, o.nEmbd]);
    add('multiple_choice_head.summary.bias', [1]);
  }
  const headArch = { score: 'GPT2ForSequenceClassification', classifier: 'GPT2ForTokenClassification', 'double-heads': 'GPT2DoubleHeadsModel' } as const;

  const config: Record<string, unknown> = {
    activation_function: 'gelu_new',
    architectures: [o.head ? headArch[o.head] : o.layout === 'lmhead' ? 'GPT2LMHeadModel' : 'GPT2Model'],
    attn_pdrop: 0.1,
    bos_token_id: o.vocabSize - 1,
    embd_pdrop: 0.1,
    eos_token_id: o.vocabSize - 1,
    initializer_range: 0.02,
    layer_norm_epsilon: 1e-5,
    model_type: 'gpt2',
    n_embd: o.nEmbd,
    n_head: o.nHead,
    n_inner: o.nInner ?? null,
    n_layer: o.nLayer,
    n_positions: o.nPositions,
    reorder_and_upcast_attn: false,
    resid_pdrop: 0.1,
    scale_attn_by_inverse_layer_idx: false,
    scale_attn_weights: true,
    summary_activation: null,
    summary_first_dropout: 0.1,
    summary_proj_to_labels: true,
    summary_type: 'cls_index',
    summary_use_proj: true,
    ...(o.untied ? { tie_word_embeddings: false } : {}),
    ...(o.head === 'score' || o.head === 'classifier' ? { id2label: Object.fromEntries(Array.from({ length: labels }, (_, i) => [String(i), `LABEL_${i}`])), label2id: Object.fromEntries(Array.from({ length: labels }, (_, i) => [`LABEL_${i}`, i])) } : {}),
    torch_dtype: o.dtype === 'F32' ? 'float32' : o.dtype === 'F16' ? 'float16' : 'bfloat16',
    transformers_version: '4.57.6',
    use_cache: true,
    vocab_size: o.vocabSize,
  };
  return {
    config,
    tensors,
    files: {
      'config.json': new TextEncoder().encode(`${JSON.stringify(config, null, 2)}\n`),
      'model.safetensors': await safetensorsBytes(tensors),
      'generation_config.json': new TextEncoder().encode(`${JSON.stringify({ bos_token_id: o.vocabSize - 1, eos_token_id: o.vocabSize - 1, transformers_version: '4.57.6' }, null, 2)}\n`),
    },
  };
}

/** One LoRA module of a generated adapter. */
export interface LoraModuleFixture {
  /** Module path as PEFT names it (`transformer.h.0.attn.c_attn`, `lm_head`). */
  readonly module: string;
  /** Features: `in` = A's columns, `out` = B's rows. */
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly rank: number;
}

export interface AdapterFixtureOptions {
  seed?: number;
  modules: readonly LoraModuleFixture[];
  /** Extra/overriding adapter_config.json fields (target_modules, lora_alpha, rank_pattern, ...). */
  config?: Record<string, unknown>;
  /** Write keys without `base_model.model.` (as transformers' PEFT integration does). */
  withoutPrefix?: boolean;
  dtype?: 'F32' | 'F16' | 'BF16';
  /** Full replacement tensors (modules_to_save), keyed by module path + `.weight`. */
  extraTensors?: readonly FixtureTensor[];
  /**
   * DoRA: a trained-looking `lora_magnitude_vector` (one positive value per output feature) for
   * every module, and `use_dora: true` (unless `config` says otherwise).
   */
  dora?: boolean;
}

export interface AdapterFixture {
  readonly config: Record<string, unknown>;
  readonly tensors: readonly FixtureTensor[];
  readonly files: Record<string, Uint8Array>;
}

/** The config fields PEFT 0.21 writes for a LoRA adapter, with its defaults. */
export function defaultLoraConfig(): Record<string, unknown> {
  return {
    alora_invocation_tokens: null,
    alpha_pattern: {},
    arrow_config: null,
    auto_mapping: null,
    base_model_name_or_path: null,
    bias: 'none',
    corda_config: null,
    ensure_weight_tying: false,
    eva_config: null,
    exclude_modules: null,
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: 8,
    lora_bias: false,
    lora_dropout: 0.0,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    peft_type: 'LORA',
    peft_version: '0.21.0',
    qalora_group_size: 16,
    r: 8,
    rank_pattern: {},
    revision: null,
    target_modules: ['c_attn'],
    target_parameters: null,
    task_type: 'CAUSAL_LM',
    trainable_token_indices: null,
    use_dora: false,
    use_qalora: false,
    use_rslora: false,
  };
}

function sortKeys(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.keys(value).sort().map((k) => [k, value[k]]));
}

/** Generates a PEFT LoRA adapter directory's files (`adapter_config.json`, `adapter_model.safetensors`). */
export async function makeLoraAdapter(options: AdapterFixtureOptions): Promise<AdapterFixture> {
  const rng = new SeededRandom(options.seed ?? 7);
  const prefix = options.withoutPrefix ? '' : 'base_model.model.';
  const tensors: FixtureTensor[] = [];
  for (const m of options.modules) {
    // Trained-looking factors: both non-zero, so every element of B·A matters.
    tensors.push({ name: `${prefix}${m.module}.lora_A.weight`, shape: [m.rank, m.inFeatures], values: rng.normalArray(m.rank * m.inFeatures, 0.3), dtype: options.dtype ?? 'F32' });
    tensors.push({ name: `${prefix}${m.module}.lora_B.weight`, shape: [m.outFeatures, m.rank], values: rng.normalArray(m.outFeatures * m.rank, 0.3), dtype: options.dtype ?? 'F32' });
    if (options.dora) {
      const magnitude = Float32Array.from(rng.normalArray(m.outFeatures, 0.3), (v) => 1 + Math.abs(v));
      tensors.push({ name: `${prefix}${m.module}.lora_magnitude_vector`, shape: [m.outFeatures], values: magnitude, dtype: options.dtype ?? 'F32' });
    }
  }
  for (const t of options.extraTensors ?? []) tensors.push({ ...t, name: `${prefix}${t.name}` });
  // PEFT writes json.dumps(indent=2, sort_keys=True): keys sorted, nested pattern keys too.
  // PEFT saves the names it matched: by default, the leaf names of the modules given LoRA factors.
  const leaves = [...new Set(options.modules.map((m) => m.module.split('.').pop()!))].sort();
  const merged: Record<string, unknown> = { ...defaultLoraConfig(), ...(leaves.length > 0 ? { target_modules: leaves } : {}), ...(options.dora ? { use_dora: true } : {}), ...(options.config ?? {}) };
  for (const k of ['rank_pattern', 'alpha_pattern']) {
    const v = merged[k];
    if (v && typeof v === 'object' && !Array.isArray(v)) merged[k] = sortKeys(v as Record<string, unknown>);
  }
  const config = sortKeys(merged);
  return {
    config,
    tensors,
    files: {
      'adapter_config.json': new TextEncoder().encode(JSON.stringify(config, null, 2)),
      'adapter_model.safetensors': await safetensorsBytes(tensors),
    },
  };
}

/** The LoRA modules of GPT-2 layer `i` for the given leaf names (`attn.c_attn`, `mlp.c_fc`, ...). */
export function gpt2LoraModules(nEmbd: number, layers: readonly number[], leaves: readonly string[], rank: number | ((module: string) => number), layout: 'lmhead' | 'bare' = 'lmhead'): LoraModuleFixture[] {
  const shapes = gpt2LayerShapes(nEmbd);
  const prefix = layout === 'lmhead' ? BODY_PREFIX : '';
  const out: LoraModuleFixture[] = [];
  for (const i of layers) {
    for (const leaf of leaves) {
      const shape = shapes[`${leaf}.weight`];
      if (!shape) throw new Error(`unknown GPT-2 module ${leaf}`);
      const module = `${prefix}h.${i}.${leaf}`;
      out.push({ module, inFeatures: shape[0]!, outFeatures: shape[1]!, rank: typeof rank === 'function' ? rank(module) : rank });
    }
  }
  return out;
}
