/**
 * The merge plan: pure data saying, for every output tensor, where its bytes come from. Built from
 * headers and configs only; no tensor bytes are read and nothing is written here (DESIGN "Data flow").
 */
import { InputError } from '../errors.js';
import type { Dtype } from '../safetensors/dtype.js';
import type { SafetensorsHeader, TensorInfo } from '../safetensors/header.js';
import type { LoraAdapterConfig } from '../peft/adapter-config.js';
import { parseAdapterKey, type AdapterKey } from '../peft/adapter-keys.js';
import { moduleHyperparams } from '../peft/lora-math.js';
import { BODY_PREFIX, canonicalName, moduleKind, TIED_INPUT_WEIGHT, TIED_OUTPUT_WEIGHT } from '../gpt2/architecture.js';

/** A tensor in an input file: enough to read its bytes by range. */
export interface TensorRef {
  /** The file's label (its path). */
  readonly file: string;
  /** The key as stored in that file. */
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  /** Absolute byte offset of the tensor's data in the file. */
  readonly fileOffset: number;
  readonly byteLength: number;
}

/**
 * One LoRA delta laid onto a 2-D weight W (row-major, `rows` x `cols`): W += scale · delta, where
 * `linear`: W is [out, in] and delta = B·A; `transposed`: W is [in, out] (Conv1D) and delta = (B·A)ᵀ.
 */
export interface LoraDeltaSpec {
  readonly modulePath: string;
  readonly a: TensorRef;
  readonly b: TensorRef;
  readonly rank: number;
  readonly alpha: number;
  readonly scale: number;
  readonly orientation: 'linear' | 'transposed';
  readonly rows: number;
  readonly cols: number;
}

/** Where an output tensor's bytes come from. */
export type TensorSource =
  /** Unchanged bytes of a base tensor. */
  | { readonly kind: 'copy'; readonly from: TensorRef }
  /** The adapter's full tensor replaces the base's (modules_to_save, trained bias). */
  | { readonly kind: 'replace'; readonly from: TensorRef; readonly reason: 'modules_to_save' | 'trained_bias'; readonly replaces: TensorRef | null }
  /** Base weight plus LoRA deltas, computed in f32 and rounded once to `dtype`. */
  | { readonly kind: 'merge'; readonly base: TensorRef; readonly deltas: readonly LoraDeltaSpec[] };

/** One tensor of the output checkpoint. */
export interface PlannedTensor {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly source: TensorSource;
}

/** Something the user should know, with a fix where there is one. */
export interface Finding {
  readonly severity: 'error' | 'warning' | 'info';
  readonly code: string;
  readonly message: string;
  readonly fix?: string;
  readonly subject?: string;
}

/** The whole plan. */
export interface MergePlan {
  readonly tensors: readonly PlannedTensor[];
  /** The config to write, or `null` to copy config.json unchanged. */
  readonly outputConfig: Record<string, unknown> | null;
  /** Human-readable list of config changes. */
  readonly configChanges: readonly string[];
  readonly findings: readonly Finding[];
  readonly summary: {
    readonly merged: number;
    readonly replaced: number;
    readonly added: number;
    readonly copied: number;
    readonly loraModules: readonly string[];
  };
}

/** Inputs to `planMerge`: headers and configs, no tensor bytes. */
export interface PlanMergeInput {
  readonly base: {
    /** The base directory, for messages. */
    readonly label: string;
    readonly config: Record<string, unknown>;
    /** Headers of every weight file of the base (one, or several shards). */
    readonly files: readonly SafetensorsHeader[];
  };
  readonly adapter: {
    readonly label: string;
    readonly config: LoraAdapterConfig;
    readonly file: SafetensorsHeader;
  };
}

const FLOAT_DTYPES: readonly Dtype[] = ['F32', 'F16', 'BF16'];

function refOf(header: SafetensorsHeader, t: TensorInfo): TensorRef {
  return { file: header.label, name: t.name, dtype: t.dtype, shape: t.shape, fileOffset: t.fileOffset, byteLength: t.byteLength };
}

const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;

/** Features a later version merges; refused by name now so nothing is ever silently skipped. */
function refuseFeature(adapterLabel: string, feature: string, key: string, hint: string): InputError {
  return new InputError('ADAPTER_FEATURE_UNSUPPORTED', `${adapterLabel}: ${feature} is not supported yet (tensor "${key}")`, {
    subject: key,
    hint,
  });
}

/**
 * Builds the merge plan for a GPT-2 base and a LoRA adapter. Throws `InputError` for anything that
 * cannot be merged faithfully; returns warnings and notes as `findings`.
 */
export function planMerge(input: PlanMergeInput): MergePlan {
  const { base, adapter } = input;
  const findings: Finding[] = [];

  // Base tensors by canonical name (either key layout, across shards).
  const baseByCanonical = new Map<string, TensorRef>();
  for (const header of base.files) {
    for (const t of header.tensors) {
      const canonical = canonicalName(t.name);
      const prior = baseByCanonical.get(canonical);
      if (prior) {
        throw new InputError('BASE_DUPLICATE_TENSOR', `${base.label}: tensor "${canonical}" is stored twice (as "${prior.name}" in ${prior.file} and "${t.name}" in ${header.label})`, {
          subject: canonical,
          hint: 'A checkpoint must store each weight once; re-save it with transformers.',
        });
      }
      baseByCanonical.set(canonical, refOf(header, t));
    }
  }
  if (!baseByCanonical.has(TIED_INPUT_WEIGHT) || !baseByCanonical.has(`${BODY_PREFIX}h.0.attn.c_attn.weight`)) {
    throw new InputError('BASE_NOT_GPT2', `${base.label}: the weights are not a GPT-2 checkpoint (no "wte.weight" or "h.0.attn.c_attn.weight", with or without the "transformer." prefix)`, {
      subject: base.label,
      hint: 'Point <base-dir> at a directory written by GPT2LMHeadModel.save_pretrained or GPT2Model.save_pretrained.',
    });
  }
  const tied = base.config['tie_word_embeddings'] !== false;

  // Interpret every adapter key; refuse unsupported features by name.
  const loraParts = new Map<string, { a?: TensorInfo; b?: TensorInfo }>();
  const replacements: Array<{ key: Extract<AdapterKey, { kind: 'replacement' }>; info: TensorInfo }> = [];
  const adapterFile = adapter.file;
  if (adapter.config.useDora) {
    throw new InputError('ADAPTER_FEATURE_UNSUPPORTED', `${adapter.label}: DoRA (use_dora: true) is not supported yet`, {
      subject: 'use_dora',
      hint: 'Merge DoRA adapters with PEFT (merge_and_unload) for now.',
    });
  }
  for (const info of adapterFile.tensors) {
    const key = parseAdapterKey(info.name);
    switch (key.kind) {
      case 'lora_A':
      case 'lora_B': {
        const entry = loraParts.get(key.modulePath) ?? {};
        if (key.kind === 'lora_A') entry.a = info;
        else entry.b = info;
        loraParts.set(key.modulePath, entry);
        break;
      }
      case 'lora_embedding_A':
      case 'lora_embedding_B':
        throw refuseFeature(adapter.label, `LoRA on an embedding (${key.modulePath})`, key.key, 'Embedding LoRA (on wte) changes one use of the tied matrix; lorafuse will merge it once tie handling lands. Use PEFT unmerged for now.');
      case 'lora_magnitude_vector':
        throw refuseFeature(adapter.label, 'DoRA', key.key, 'Merge DoRA adapters with PEFT (merge_and_unload) for now.');
      case 'lora_bias':
        throw refuseFeature(adapter.label, 'lora_bias (a trained lora_B bias)', key.key, 'Merge with PEFT (merge_and_unload) for now.');
      case 'trainable_tokens':
        throw refuseFeature(adapter.label, 'trainable_token_indices', key.key, 'Merge with PEFT (merge_and_unload) for now.');
      case 'unknown_lora':
        throw new InputError('ADAPTER_KEY_UNKNOWN', `${adapter.label}: tensor "${key.key}" looks like a LoRA tensor but its name is not one PEFT writes`, {
          subject: key.key,
          hint: 'Expected "<module>.lora_A.weight" / "<module>.lora_B.weight". If the adapter name is still in the key, re-save the adapter with PEFT.',
        });
      case 'replacement':
        replacements.push({ key, info });
        break;
    }
  }

  const deltasByCanonical = new Map<string, LoraDeltaSpec>();
  for (const [modulePath, { a, b }] of loraParts) {
    if (!a || !b) {
      const have = a ? 'lora_A' : 'lora_B';
      const missing = a ? 'lora_B' : 'lora_A';
      throw new InputError('ADAPTER_LORA_INCOMPLETE', `${adapter.label}: module "${modulePath}" has ${have} but no ${missing}`, {
        subject: modulePath,
        hint: 'The adapter file is incomplete; re-save it with PEFT.',
      });
    }
    for (const t of [a, b]) {
      if (!FLOAT_DTYPES.includes(t.dtype) || t.shape.length !== 2) {
        throw new InputError('ADAPTER_LORA_SHAPE', `${adapter.label}: tensor "${t.name}" must be a 2-D F32/F16/BF16 matrix, got ${t.dtype} ${shapeText(t.shape)}`, { subject: t.name });
      }
    }
    const [rank, inFeatures] = a.shape as [number, number];
    const [outFeatures, rankB] = b.shape as [number, number];
    if (rank !== rankB) {
      throw new InputError('ADAPTER_LORA_SHAPE', `${adapter.label}: module "${modulePath}": lora_A is ${shapeText(a.shape)} (r=${rank}) but lora_B is ${shapeText(b.shape)} (r=${rankB}); A must be [r, in] and B [out, r]`, { subject: modulePath });
    }
    if (rank === 0) {
      throw new InputError('ADAPTER_LORA_SHAPE', `${adapter.label}: module "${modulePath}" has rank 0 (lora_A ${shapeText(a.shape)})`, { subject: modulePath });
    }
    const kind = moduleKind(modulePath);
    const canonical = `${canonicalName(modulePath)}.weight`;
    if (kind === 'embedding') {
      throw refuseFeature(adapter.label, `LoRA on an embedding (${modulePath})`, a.name, 'Embedding LoRA will be merged once tie handling lands.');
    }
    if (kind === 'other') {
      throw new InputError('ADAPTER_MODULE_UNKNOWN', `${adapter.label}: LoRA tensors for "${modulePath}", which is not a Conv1D or Linear module of GPT-2`, {
        subject: modulePath,
        hint: 'GPT-2 LoRA targets are c_attn, c_proj, c_fc (Conv1D) and lm_head (Linear). Was the adapter trained on another architecture?',
      });
    }
    if (canonical === TIED_OUTPUT_WEIGHT && !baseByCanonical.has(TIED_OUTPUT_WEIGHT)) {
      throw refuseFeature(adapter.label, 'LoRA on the tied lm_head', a.name, 'The base stores lm_head as wte (tied); merging needs untying, which lands with tie handling. Use PEFT unmerged for now.');
    }
    const weight = baseByCanonical.get(canonical);
    if (!weight) {
      throw new InputError('ADAPTER_TARGET_MISSING', `${adapter.label}: LoRA tensors for "${modulePath}" map to "${canonical}", which ${base.label} does not have`, {
        subject: a.name,
        hint: 'Check that the adapter was trained on this base model (layer count, architecture).',
      });
    }
    if (!FLOAT_DTYPES.includes(weight.dtype)) {
      throw new InputError('BASE_DTYPE_UNSUPPORTED', `${weight.file}: tensor "${weight.name}" is ${weight.dtype}; lorafuse merges into F32, F16 and BF16 weights`, { subject: weight.name });
    }
    const orientation = kind === 'linear' ? 'linear' : 'transposed';
    const expected = kind === 'linear' ? [outFeatures, inFeatures] : [inFeatures, outFeatures];
    if (weight.shape.length !== 2 || weight.shape[0] !== expected[0] || weight.shape[1] !== expected[1]) {
      throw new InputError('ADAPTER_BASE_SHAPE_MISMATCH', `${adapter.label}: module "${modulePath}": lora_A ${shapeText(a.shape)} and lora_B ${shapeText(b.shape)} give a ${kind === 'linear' ? '[out, in]' : '[in, out]'} delta of ${shapeText(expected)}, but "${weight.name}" in ${weight.file} is ${shapeText(weight.shape)}`, {
        subject: weight.name,
        hint: 'The adapter was trained on a different model size; use the base it was trained on.',
      });
    }
    const hp = moduleHyperparams(adapter.config, modulePath, rank);
    if (hp.configuredRank !== rank) {
      findings.push({
        severity: 'warning',
        code: 'RANK_MISMATCH',
        subject: modulePath,
        message: `"${modulePath}": ${hp.rankPatternKey ? `rank_pattern "${hp.rankPatternKey}"` : 'r'} says rank ${hp.configuredRank}, but lora_A has ${rank} rows; the tensor shape is used`,
      });
    }
    deltasByCanonical.set(canonical, {
      modulePath,
      a: refOf(adapterFile, a),
      b: refOf(adapterFile, b),
      rank,
      alpha: hp.alpha,
      scale: hp.scale,
      orientation,
      rows: weight.shape[0]!,
      cols: weight.shape[1]!,
    });
  }

  if (!adapter.config.fanInFanOut && [...deltasByCanonical.values()].some((d) => d.orientation === 'transposed')) {
    findings.push({
      severity: 'info',
      code: 'FAN_IN_FAN_OUT_IGNORED',
      subject: 'fan_in_fan_out',
      message: 'adapter_config.json says fan_in_fan_out: false, but GPT-2 Conv1D layers always use fan_in_fan_out = true in PEFT; lorafuse orients each delta by module type',
    });
  }

  // Full replacement tensors (modules_to_save, trained biases). The tied pair waits for tie handling.
  const replaceByCanonical = new Map<string, { from: TensorRef; reason: 'modules_to_save' | 'trained_bias' }>();
  const added: Array<{ canonical: string; from: TensorRef }> = [];
  let newHead: { module: string; labels: number } | null = null;
  for (const { key, info } of replacements) {
    const canonical = canonicalName(key.tensorPath);
    if (canonical === TIED_INPUT_WEIGHT || canonical === TIED_OUTPUT_WEIGHT) {
      throw refuseFeature(adapter.label, `a full "${canonical}" in the adapter (modules_to_save or a resized vocabulary)`, key.key, 'Trained embeddings need the tie decision, which lands with tie handling. Use PEFT unmerged for now.');
    }
    if (!FLOAT_DTYPES.includes(info.dtype)) {
      throw new InputError('ADAPTER_TENSOR_DTYPE', `${adapter.label}: tensor "${key.key}" is ${info.dtype}; expected F32, F16 or BF16`, { subject: key.key });
    }
    const reason = canonical.endsWith('.bias') ? 'trained_bias' : 'modules_to_save';
    const existing = baseByCanonical.get(canonical);
    if (existing) {
      if (existing.shape.length !== info.shape.length || existing.shape.some((d, i) => d !== info.shape[i])) {
        throw new InputError('ADAPTER_BASE_SHAPE_MISMATCH', `${adapter.label}: tensor "${key.key}" is ${shapeText(info.shape)} but "${existing.name}" in ${existing.file} is ${shapeText(existing.shape)}`, {
          subject: key.key,
          hint: 'The adapter was trained on a different model size; use the base it was trained on.',
        });
      }
      if (deltasByCanonical.has(canonical)) {
        throw new InputError('ADAPTER_CONFLICT', `${adapter.label}: "${canonical}" has both LoRA factors and a full replacement tensor "${key.key}"`, {
          subject: canonical,
          hint: 'A module cannot be both in target_modules and modules_to_save; re-train with it in only one.',
        });
      }
      replaceByCanonical.set(canonical, { from: refOf(adapterFile, info), reason });
      continue;
    }
    const headMatch = canonical.match(/^(score|classifier)\.weight$/);
    if (headMatch && info.shape.length === 2) {
      const hidden = baseByCanonical.get(TIED_INPUT_WEIGHT)!.shape[1];
      if (info.shape[1] !== hidden) {
        throw new InputError('ADAPTER_BASE_SHAPE_MISMATCH', `${adapter.label}: head "${key.key}" is ${shapeText(info.shape)} but the base's hidden size is ${hidden}`, { subject: key.key });
      }
      newHead = { module: headMatch[1]!, labels: info.shape[0]! };
      added.push({ canonical, from: refOf(adapterFile, info) });
      continue;
    }
    throw new InputError('ADAPTER_TARGET_MISSING', `${adapter.label}: tensor "${key.key}" replaces "${canonical}", which ${base.label} does not have`, {
      subject: key.key,
      hint: 'Check that the adapter was trained on this base model.',
    });
  }

  // Output names: the base's own layout, unless a head is added to a bare GPT2Model checkpoint, where
  // transformers only adds the body prefix back when no key has it, so every body key gets it.
  const baseIsBare = [...baseByCanonical.values()].every((r) => !r.name.startsWith(BODY_PREFIX));
  const renameBody = newHead !== null && baseIsBare;

  const tensors: PlannedTensor[] = [];
  let merged = 0;
  let replaced = 0;
  for (const [canonical, ref] of baseByCanonical) {
    const name = renameBody ? canonical : ref.name;
    const delta = deltasByCanonical.get(canonical);
    const replacement = replaceByCanonical.get(canonical);
    if (delta) {
      merged++;
      tensors.push({ name, dtype: ref.dtype, shape: ref.shape, source: { kind: 'merge', base: ref, deltas: [delta] } });
    } else if (replacement) {
      replaced++;
      tensors.push({ name, dtype: replacement.from.dtype, shape: replacement.from.shape, source: { kind: 'replace', from: replacement.from, reason: replacement.reason, replaces: ref } });
    } else {
      tensors.push({ name, dtype: ref.dtype, shape: ref.shape, source: { kind: 'copy', from: ref } });
    }
  }
  for (const { canonical, from } of added) {
    tensors.push({ name: canonical, dtype: from.dtype, shape: from.shape, source: { kind: 'replace', from, reason: 'modules_to_save', replaces: null } });
  }

  // Config: unchanged unless a classification head was added.
  const configChanges: string[] = [];
  let outputConfig: Record<string, unknown> | null = null;
  if (newHead) {
    const arch = newHead.module === 'score' ? 'GPT2ForSequenceClassification' : 'GPT2ForTokenClassification';
    const id2label: Record<string, string> = {};
    const label2id: Record<string, number> = {};
    for (let i = 0; i < newHead.labels; i++) {
      id2label[String(i)] = `LABEL_${i}`;
      label2id[`LABEL_${i}`] = i;
    }
    const oldLabels = base.config['id2label'];
    const keepLabels = typeof oldLabels === 'object' && oldLabels !== null && Object.keys(oldLabels).length === newHead.labels;
    outputConfig = { ...base.config, architectures: [arch], ...(keepLabels ? {} : { id2label, label2id }) };
    configChanges.push(`architectures: ${JSON.stringify(base.config['architectures'] ?? null)} → ["${arch}"] (the adapter carries a trained "${newHead.module}" head)`);
    if (!keepLabels) configChanges.push(`num_labels: ${newHead.labels} (id2label/label2id from the head's ${newHead.labels} rows)`);
    findings.push({
      severity: 'info',
      code: 'HEAD_ADDED',
      subject: `${newHead.module}.weight`,
      message: `the adapter's "${newHead.module}" head (${newHead.labels} labels) is added; the output loads as ${arch}`,
    });
  }
  if (tied && baseByCanonical.has(TIED_OUTPUT_WEIGHT)) {
    findings.push({
      severity: 'info',
      code: 'TIED_HEAD_STORED',
      subject: TIED_OUTPUT_WEIGHT,
      message: 'the base config ties lm_head to wte but the checkpoint also stores lm_head.weight; it is copied unchanged',
    });
  }

  return {
    tensors,
    outputConfig,
    configChanges,
    findings,
    summary: {
      merged,
      replaced,
      added: added.length,
      copied: tensors.length - merged - replaced - added.length,
      loraModules: [...deltasByCanonical.values()].map((d) => d.modulePath),
    },
  };
}
