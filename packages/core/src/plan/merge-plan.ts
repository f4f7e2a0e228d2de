/**
 * The merge plan: pure data saying, for every output tensor, where its bytes come from. Built from
 * headers and configs only; no tensor bytes are read and nothing is written here (DESIGN "Data flow").
 *
 * Correctness rule (SPEC §0): the output, loaded by transformers, computes what the *unmerged* PEFT
 * model computes. Each module's effective weight is its base weight plus its LoRA delta, or the
 * adapter's full tensor. In a tied base the input embedding and the output head are two uses of one
 * matrix, so each gets its own effective weight, and the tie survives only if they stay bitwise equal
 * (see `tie-decision.ts`).
 */
import { InputError } from '../errors.js';
import type { Dtype } from '../safetensors/dtype.js';
import type { SafetensorsHeader, TensorInfo } from '../safetensors/header.js';
import type { LoraAdapterConfig } from '../peft/adapter-config.js';
import { parseAdapterKey } from '../peft/adapter-keys.js';
import { moduleHyperparams } from '../peft/lora-math.js';
import { BODY_PREFIX, canonicalName, moduleKind, TIED_INPUT_WEIGHT, TIED_OUTPUT_WEIGHT } from '../gpt2/architecture.js';
import { decideTie, type TieMode, type TiePlan } from './tie-decision.js';

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
 * `linear`: W is [out, in] and delta = B·A; `transposed`: W is [in, out] (Conv1D) or
 * [num_embeddings, dim] (Embedding, A = lora_embedding_A, B = lora_embedding_B) and delta = (B·A)ᵀ.
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

/** Why an adapter tensor replaces a base tensor. */
export type ReplaceReason = 'modules_to_save' | 'trained_bias' | 'tied_weight';

/** Where an output tensor's bytes come from. */
export type TensorSource =
  /** Unchanged bytes of an input tensor. */
  | { readonly kind: 'copy'; readonly from: TensorRef }
  /** The adapter's full tensor replaces the base's (modules_to_save, saved embeddings, trained bias). */
  | { readonly kind: 'replace'; readonly from: TensorRef; readonly reason: ReplaceReason; readonly replaces: TensorRef | null }
  /** A weight plus LoRA deltas, computed in f32 and rounded once to the output dtype. */
  | { readonly kind: 'merge'; readonly base: TensorRef; readonly deltas: readonly LoraDeltaSpec[] }
  /**
   * Trainable tokens (SPEC §2.5): the adapter's rows replace rows of the base, row k at `indices[k]`
   * (PEFT's `index_copy`); the rows are full values, not deltas.
   */
  | { readonly kind: 'rows'; readonly base: TensorRef; readonly rows: TensorRef; readonly indices: readonly number[] };

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
  /** Output tensors. While `tie.state` is `pending`, the head candidate is not among them yet. */
  readonly tensors: readonly PlannedTensor[];
  readonly tie: TiePlan;
  /** The config to write, or `null` to copy config.json unchanged. */
  readonly outputConfig: Record<string, unknown> | null;
  /** Human-readable list of config changes. */
  readonly configChanges: readonly string[];
  readonly findings: readonly Finding[];
  /** The base config (for resolving the tie later). */
  readonly baseConfig: Record<string, unknown>;
  /** Tensors the adapter stores twice under two names; the executor must find them byte-identical. */
  readonly duplicateCopies: ReadonlyArray<{ readonly kept: TensorRef; readonly duplicate: TensorRef }>;
  readonly summary: {
    readonly merged: number;
    readonly replaced: number;
    readonly added: number;
    readonly copied: number;
    readonly loraModules: readonly string[];
  };
}

/** Options of `planMerge`. */
export interface PlanMergeOptions {
  /** `auto` (default): untie exactly when the effective wte and lm_head differ. */
  readonly tie?: TieMode;
  /** With `tie: 'keep'`: keep the tie even when that discards trained lm_head values. */
  readonly force?: boolean;
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
  readonly options?: PlanMergeOptions;
}

const FLOAT_DTYPES: readonly Dtype[] = ['F32', 'F16', 'BF16'];

function refOf(header: SafetensorsHeader, t: TensorInfo): TensorRef {
  return { file: header.label, name: t.name, dtype: t.dtype, shape: t.shape, fileOffset: t.fileOffset, byteLength: t.byteLength };
}

/** `[a, b]` for messages. */
export const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;

/** Features a later version merges; refused by name now so nothing is ever silently skipped. */
function refuseFeature(adapterLabel: string, feature: string, key: string, hint: string): InputError {
  return new InputError('ADAPTER_FEATURE_UNSUPPORTED', `${adapterLabel}: ${feature} is not supported yet (tensor "${key}")`, {
    subject: key,
    hint,
  });
}

interface LoraPair {
  a?: TensorInfo;
  b?: TensorInfo;
  embedding: boolean;
}

interface Replacement {
  key: string;
  info: TensorInfo;
  fromBaseLayer: boolean;
  wrapperCopy?: boolean;
}

/**
 * Builds the merge plan for a GPT-2 base and a LoRA adapter. Throws `InputError` for anything that
 * cannot be merged faithfully; returns warnings and notes as `findings`.
 */
export function planMerge(input: PlanMergeInput): MergePlan {
  const { base, adapter } = input;
  const options = input.options ?? {};
  const findings: Finding[] = [];

  // 1. Base tensors by canonical name (either key layout, across shards).
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
  const baseWte = baseByCanonical.get(TIED_INPUT_WEIGHT);
  if (!baseWte || !baseByCanonical.has(`${BODY_PREFIX}h.0.attn.c_attn.weight`)) {
    throw new InputError('BASE_NOT_GPT2', `${base.label}: the weights are not a GPT-2 checkpoint (no "wte.weight" or "h.0.attn.c_attn.weight", with or without the "transformer." prefix)`, {
      subject: base.label,
      hint: 'Point <base-dir> at a directory written by GPT2LMHeadModel.save_pretrained or GPT2Model.save_pretrained.',
    });
  }
  // Tied: lm_head is wte at load time. A stored lm_head.weight with an untied config is its own matrix.
  const baseTied = base.config['tie_word_embeddings'] !== false && !baseByCanonical.has(TIED_OUTPUT_WEIGHT);
  if (base.config['tie_word_embeddings'] !== false && baseByCanonical.has(TIED_OUTPUT_WEIGHT)) {
    findings.push({
      severity: 'warning',
      code: 'TIED_HEAD_STORED',
      subject: TIED_OUTPUT_WEIGHT,
      message: 'the base config ties lm_head to wte but the checkpoint also stores lm_head.weight; lorafuse treats the stored lm_head as its own matrix (transformers v4 would discard it)',
      fix: 'Re-save the base with transformers so the config and the stored keys agree.',
    });
  }

  // 2. Interpret every adapter key; refuse unsupported features by name.
  const loraPairs = new Map<string, LoraPair>();
  const replacements = new Map<string, Replacement>();
  const ignoredOriginals: string[] = [];
  const tokenRows: Array<{ modulePath: string; info: TensorInfo }> = [];
  const duplicateCopies: Array<{ kept: TensorRef; duplicate: TensorRef }> = [];
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
      case 'lora_B':
      case 'lora_embedding_A':
      case 'lora_embedding_B': {
        const embedding = key.kind.startsWith('lora_embedding');
        const entry = loraPairs.get(key.modulePath) ?? { embedding };
        if (entry.embedding !== embedding) {
          throw new InputError('ADAPTER_KEY_UNKNOWN', `${adapter.label}: module "${key.modulePath}" has both lora_A/B and lora_embedding_A/B tensors`, { subject: key.key, hint: 'Re-save the adapter with PEFT.' });
        }
        if (key.kind.endsWith('A')) entry.a = info;
        else entry.b = info;
        loraPairs.set(key.modulePath, entry);
        break;
      }
      case 'lora_magnitude_vector':
        throw refuseFeature(adapter.label, 'DoRA', key.key, 'Merge DoRA adapters with PEFT (merge_and_unload) for now.');
      case 'lora_bias':
        throw refuseFeature(adapter.label, 'lora_bias (a trained lora_B bias)', key.key, 'Merge with PEFT (merge_and_unload) for now.');
      case 'trainable_tokens':
        tokenRows.push({ modulePath: key.modulePath, info });
        break;
      case 'unknown_lora':
        throw new InputError('ADAPTER_KEY_UNKNOWN', `${adapter.label}: tensor "${key.key}" looks like a LoRA tensor but its name is not one PEFT writes`, {
          subject: key.key,
          hint: 'Expected "<module>.lora_A.weight" / "<module>.lora_B.weight". If the adapter name is still in the key, re-save the adapter with PEFT.',
        });
      case 'original_module':
        ignoredOriginals.push(key.key);
        break;
      case 'replacement': {
        if (!FLOAT_DTYPES.includes(info.dtype)) {
          throw new InputError('ADAPTER_TENSOR_DTYPE', `${adapter.label}: tensor "${key.key}" is ${info.dtype}; expected F32, F16 or BF16`, { subject: key.key });
        }
        const canonical = canonicalName(key.tensorPath);
        const prior = replacements.get(canonical);
        // PEFT may save a trained copy twice (as "<m>.weight" and "<m>.modules_to_save.weight"): keep
        // one and have the executor confirm the two are byte-identical.
        if (prior && (key.wrapperCopy || prior.wrapperCopy) && prior.info.dtype === info.dtype && prior.info.shape.join() === info.shape.join()) {
          const [kept, dropped] = key.wrapperCopy ? [prior, info] : [{ key: key.key, info, fromBaseLayer: false, wrapperCopy: false }, prior.info];
          replacements.set(canonical, kept);
          duplicateCopies.push({ kept: refOf(adapterFile, kept.info), duplicate: refOf(adapterFile, dropped) });
          break;
        }
        if (prior) {
          throw new InputError('ADAPTER_CONFLICT', `${adapter.label}: "${canonical}" is given twice, as "${prior.key}" and "${key.key}"`, { subject: canonical, hint: 'Re-save the adapter with PEFT.' });
        }
        replacements.set(canonical, { key: key.key, info, fromBaseLayer: key.fromBaseLayer, wrapperCopy: key.wrapperCopy === true });
        break;
      }
    }
  }

  // 3. Each module's starting weight: a `base_layer` tensor saved in the adapter, else the base's
  //    own; a tied base's lm_head starts from the tied matrix, i.e. the base wte.
  const startOf = (canonical: string): TensorRef | undefined => {
    const r = replacements.get(canonical);
    if (r?.fromBaseLayer) return refOf(adapterFile, r.info);
    if (canonical === TIED_OUTPUT_WEIGHT && baseTied) return baseWte;
    return baseByCanonical.get(canonical);
  };

  // 4. Effective sources of every weight the adapter touches.
  const effective = new Map<string, TensorSource>();
  const loraModules: string[] = [];
  for (const [modulePath, pair] of loraPairs) {
    const { a, b } = pair;
    const names = pair.embedding ? ['lora_embedding_A', 'lora_embedding_B'] : ['lora_A', 'lora_B'];
    if (!a || !b) {
      throw new InputError('ADAPTER_LORA_INCOMPLETE', `${adapter.label}: module "${modulePath}" has ${a ? names[0] : names[1]} but no ${a ? names[1] : names[0]}`, {
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
    if (rank !== rankB || rank === 0) {
      throw new InputError('ADAPTER_LORA_SHAPE', `${adapter.label}: module "${modulePath}": ${names[0]} is ${shapeText(a.shape)} (r=${rank}) but ${names[1]} is ${shapeText(b.shape)} (r=${rankB}); A must be [r, in] and B [out, r] with r >= 1`, { subject: modulePath });
    }
    const kind = moduleKind(modulePath);
    const canonical = `${canonicalName(modulePath)}.weight`;
    if (pair.embedding !== (kind === 'embedding')) {
      throw new InputError('ADAPTER_MODULE_UNKNOWN', `${adapter.label}: "${modulePath}" has ${names[0]}/${names[1]} tensors, but it is ${kind === 'embedding' ? 'an Embedding' : `a ${kind} module`} in GPT-2`, { subject: a.name, hint: 'Was the adapter trained on another architecture?' });
    }
    if (kind === 'other') {
      throw new InputError('ADAPTER_MODULE_UNKNOWN', `${adapter.label}: LoRA tensors for "${modulePath}", which is not a Conv1D, Linear or Embedding module of GPT-2`, {
        subject: modulePath,
        hint: 'GPT-2 LoRA targets are c_attn, c_proj, c_fc (Conv1D), lm_head (Linear) and wte (Embedding). Was the adapter trained on another architecture?',
      });
    }
    const replacement = replacements.get(canonical);
    if (replacement && !replacement.fromBaseLayer) {
      throw new InputError('ADAPTER_CONFLICT', `${adapter.label}: "${canonical}" has both LoRA factors and a full replacement tensor "${replacement.key}"`, {
        subject: canonical,
        hint: 'A module cannot be both in target_modules and modules_to_save; re-train with it in only one.',
      });
    }
    const start = startOf(canonical);
    if (!start) {
      throw new InputError('ADAPTER_TARGET_MISSING', `${adapter.label}: LoRA tensors for "${modulePath}" map to "${canonical}", which ${base.label} does not have`, {
        subject: a.name,
        hint: 'Check that the adapter was trained on this base model (layer count, architecture).',
      });
    }
    if (!FLOAT_DTYPES.includes(start.dtype)) {
      throw new InputError('BASE_DTYPE_UNSUPPORTED', `${start.file}: tensor "${start.name}" is ${start.dtype}; lorafuse merges into F32, F16 and BF16 weights`, { subject: start.name });
    }
    const orientation = kind === 'linear' ? 'linear' : 'transposed';
    const expected = kind === 'linear' ? [outFeatures, inFeatures] : [inFeatures, outFeatures];
    if (start.shape.length !== 2 || start.shape[0] !== expected[0] || start.shape[1] !== expected[1]) {
      const layout = kind === 'linear' ? '[out, in]' : kind === 'embedding' ? '[num_embeddings, dim]' : '[in, out]';
      throw new InputError('ADAPTER_BASE_SHAPE_MISMATCH', `${adapter.label}: module "${modulePath}": ${names[0]} ${shapeText(a.shape)} and ${names[1]} ${shapeText(b.shape)} give a ${layout} delta of ${shapeText(expected)}, but "${start.name}" in ${start.file} is ${shapeText(start.shape)}`, {
        subject: start.name,
        hint: kind === 'embedding' || kind === 'linear'
          ? 'If the vocabulary was resized during training, the adapter must carry the resized embedding weights (save_embedding_layers=True); otherwise use the base it was trained on.'
          : 'The adapter was trained on a different model size; use the base it was trained on.',
      });
    }
    const hp = moduleHyperparams(adapter.config, modulePath, rank);
    if (hp.configuredRank !== rank) {
      findings.push({
        severity: 'warning',
        code: 'RANK_MISMATCH',
        subject: modulePath,
        message: `"${modulePath}": ${hp.rankPatternKey ? `rank_pattern "${hp.rankPatternKey}"` : 'r'} says rank ${hp.configuredRank}, but ${names[0]} has ${rank} rows; the tensor shape is used`,
      });
    }
    loraModules.push(modulePath);
    effective.set(canonical, {
      kind: 'merge',
      base: start,
      deltas: [{ modulePath, a: refOf(adapterFile, a), b: refOf(adapterFile, b), rank, alpha: hp.alpha, scale: hp.scale, orientation, rows: start.shape[0]!, cols: start.shape[1]! }],
    });
  }

  if (!adapter.config.fanInFanOut && [...effective.values()].some((s) => s.kind === 'merge' && s.deltas.some((d) => d.orientation === 'transposed' && moduleKind(d.modulePath) === 'conv1d'))) {
    findings.push({
      severity: 'info',
      code: 'FAN_IN_FAN_OUT_IGNORED',
      subject: 'fan_in_fan_out',
      message: 'adapter_config.json says fan_in_fan_out: false, but GPT-2 Conv1D layers always use fan_in_fan_out = true in PEFT; lorafuse orients each delta by module type',
    });
  }

  // Full replacement tensors (modules_to_save, saved embeddings, trained biases) and added heads.
  let newHead: { module: string; labels: number; ref: TensorRef } | null = null;
  for (const [canonical, r] of replacements) {
    if (r.fromBaseLayer && effective.has(canonical)) continue; // the start of a LoRA merge above
    const from = refOf(adapterFile, r.info);
    const isEmbeddingPair = canonical === TIED_INPUT_WEIGHT || canonical === TIED_OUTPUT_WEIGHT;
    const existing = canonical === TIED_OUTPUT_WEIGHT && baseTied ? baseWte : baseByCanonical.get(canonical);
    if (existing) {
      const sameShape = existing.shape.length === from.shape.length && existing.shape.every((d, i) => d === from.shape[i]);
      // A resized vocabulary changes the row count of wte / lm_head; nothing else may change shape.
      const resized = isEmbeddingPair && from.shape.length === 2 && existing.shape.length === 2 && from.shape[1] === existing.shape[1];
      if (!sameShape && !resized) {
        throw new InputError('ADAPTER_BASE_SHAPE_MISMATCH', `${adapter.label}: tensor "${r.key}" is ${shapeText(from.shape)} but "${existing.name}" in ${existing.file} is ${shapeText(existing.shape)}`, {
          subject: r.key,
          hint: 'The adapter was trained on a different model size; use the base it was trained on.',
        });
      }
      effective.set(canonical, { kind: 'replace', from, reason: isEmbeddingPair ? 'modules_to_save' : canonical.endsWith('.bias') ? 'trained_bias' : 'modules_to_save', replaces: existing });
      continue;
    }
    const headMatch = canonical.match(/^(score|classifier)\.weight$/);
    if (headMatch && from.shape.length === 2) {
      const hidden = baseWte.shape[1];
      if (from.shape[1] !== hidden) {
        throw new InputError('ADAPTER_BASE_SHAPE_MISMATCH', `${adapter.label}: head "${r.key}" is ${shapeText(from.shape)} but the base's hidden size is ${hidden}`, { subject: r.key });
      }
      newHead = { module: headMatch[1]!, labels: from.shape[0]!, ref: from };
      continue;
    }
    throw new InputError('ADAPTER_TARGET_MISSING', `${adapter.label}: tensor "${r.key}" replaces "${canonical}", which ${base.label} does not have`, {
      subject: r.key,
      hint: 'Check that the adapter was trained on this base model.',
    });
  }

  // Trainable tokens: rows of an embedding replaced (indices from adapter_config.json, not the file).
  for (const { modulePath, info } of tokenRows) {
    const canonical = `${canonicalName(modulePath)}.weight`;
    const indices = tokenIndicesFor(adapter.config, modulePath, canonical === TIED_INPUT_WEIGHT);
    if (!indices) {
      throw new InputError('ADAPTER_TOKEN_INDICES_MISSING', `${adapter.label}: trainable-token rows "${info.name}" have no indices for "${modulePath}" in adapter_config.json's trainable_token_indices`, {
        subject: 'trainable_token_indices',
        hint: 'PEFT stores the token indices only in adapter_config.json; use the config saved with these weights.',
      });
    }
    if (effective.has(canonical)) {
      throw new InputError('ADAPTER_CONFLICT', `${adapter.label}: "${canonical}" has trainable-token rows and also LoRA factors or a full replacement`, { subject: canonical, hint: 'Use one way of training a module per adapter.' });
    }
    const start = startOf(canonical);
    if (!start || start.shape.length !== 2) {
      throw new InputError('ADAPTER_TARGET_MISSING', `${adapter.label}: trainable-token rows "${info.name}" map to "${canonical}", which ${base.label} does not have as a matrix`, { subject: info.name });
    }
    const [rows, dim] = start.shape as [number, number];
    if (info.shape.length !== 2 || info.shape[0] !== indices.length || info.shape[1] !== dim) {
      throw new InputError('ADAPTER_BASE_SHAPE_MISMATCH', `${adapter.label}: trainable-token rows "${info.name}" are ${shapeText(info.shape)}, but ${indices.length} indices of a ${shapeText(start.shape)} "${start.name}" need [${indices.length}, ${dim}]`, { subject: info.name });
    }
    const bad = indices.find((i) => i >= rows);
    if (bad !== undefined || new Set(indices).size !== indices.length) {
      throw new InputError('ADAPTER_TOKEN_INDICES_INVALID', `${adapter.label}: trainable_token_indices for "${modulePath}" ${bad !== undefined ? `include ${bad}, outside the ${rows} rows of "${start.name}"` : 'repeat an index'}`, { subject: 'trainable_token_indices' });
    }
    const source: TensorSource = { kind: 'rows', base: start, rows: refOf(adapterFile, info), indices };
    effective.set(canonical, source);
    // PEFT ties the token adapter of a tied model's output head to the input embedding's (#2399):
    // lm_head gets the same rows.
    if (canonical === TIED_INPUT_WEIGHT && baseTied && !effective.has(TIED_OUTPUT_WEIGHT)) effective.set(TIED_OUTPUT_WEIGHT, source);
  }

  if (ignoredOriginals.length > 0) {
    findings.push({
      severity: 'info',
      code: 'ORIGINAL_MODULE_IGNORED',
      subject: ignoredOriginals.join(', '),
      message: `the adapter also stores ${ignoredOriginals.map((k) => `"${k}"`).join(', ')}: the untrained module PEFT keeps beside a modules_to_save copy, which the model never uses; ignored`,
    });
  }

  // 5. The tie decision (a named step: never assume the tie survives).
  const wteSource: TensorSource = effective.get(TIED_INPUT_WEIGHT) ?? { kind: 'copy', from: baseWte };
  const hasHead = newHead === null && architectureOf(base.config) !== 'GPT2Model';
  const tie = decideTie({
    baseTied,
    hasHead,
    wte: { name: baseWte.name, source: wteSource },
    lmHeadSource: baseTied ? (effective.get(TIED_OUTPUT_WEIGHT) ?? null) : null,
    mode: options.tie ?? 'auto',
    force: options.force === true,
    adapterLabel: adapter.label,
  });
  if (!baseTied && effective.has(TIED_OUTPUT_WEIGHT) && !baseByCanonical.has(TIED_OUTPUT_WEIGHT)) {
    throw new InputError('ADAPTER_TARGET_MISSING', `${adapter.label}: the adapter changes lm_head, but ${base.label} has no lm_head.weight and its config is untied`, { subject: TIED_OUTPUT_WEIGHT });
  }

  // 6. Output names: the base's own layout, unless a tensor outside the body (lm_head, score) is
  // added to a bare GPT2Model checkpoint: transformers restores the body prefix only when no key
  // has it, so mixed layouts would not load; every body key then gets the prefix.
  const baseIsBare = [...baseByCanonical.values()].every((r) => !r.name.startsWith(BODY_PREFIX));
  const addsOutsideBody = newHead !== null || (tie.state !== 'untouched' && tie.state !== 'base-untied' && !(tie.state === 'decided' && tie.decision === 'keep'));
  const renameBody = baseIsBare && addsOutsideBody;

  const tensors: PlannedTensor[] = [];
  let merged = 0;
  let replaced = 0;
  const count = (s: TensorSource) => {
    if (s.kind === 'merge') merged++;
    else if (s.kind === 'replace' || s.kind === 'rows') replaced++;
  };
  for (const [canonical, ref] of baseByCanonical) {
    const name = renameBody ? canonical : ref.name;
    const source = canonical === TIED_INPUT_WEIGHT ? wteSource : effective.get(canonical) ?? { kind: 'copy' as const, from: ref };
    count(source);
    tensors.push({ name, ...outputTypeOf(source), source });
  }
  let added = 0;
  if (newHead) {
    tensors.push({ name: `${newHead.module}.weight`, dtype: newHead.ref.dtype, shape: newHead.ref.shape, source: { kind: 'replace', from: newHead.ref, reason: 'modules_to_save', replaces: null } });
    added++;
  }
  if (tie.state === 'decided' && tie.decision === 'untie' && tie.lmHead) {
    tensors.push({ ...tie.lmHead, name: TIED_OUTPUT_WEIGHT });
    count(tie.lmHead.source);
    added++;
  }

  // 7. Config changes.
  const configChanges: string[] = [];
  const outputConfig: Record<string, unknown> = { ...base.config };
  const wteRows = outputTypeOf(wteSource).shape[0]!;
  const baseVocab = typeof base.config['vocab_size'] === 'number' ? (base.config['vocab_size'] as number) : baseWte.shape[0]!;
  if (wteRows !== baseVocab) {
    outputConfig['vocab_size'] = wteRows;
    configChanges.push(`vocab_size: ${baseVocab} → ${wteRows} (the adapter carries a resized embedding)`);
    findings.push({ severity: 'info', code: 'VOCAB_RESIZED', subject: 'vocab_size', message: `vocabulary resized from ${baseVocab} to ${wteRows} rows by the adapter's trained embedding` });
  }
  if (newHead) {
    const arch = newHead.module === 'score' ? 'GPT2ForSequenceClassification' : 'GPT2ForTokenClassification';
    outputConfig['architectures'] = [arch];
    configChanges.push(`architectures: ${JSON.stringify(base.config['architectures'] ?? null)} → ["${arch}"] (the adapter carries a trained "${newHead.module}" head)`);
    const oldLabels = base.config['id2label'];
    if (!(typeof oldLabels === 'object' && oldLabels !== null && Object.keys(oldLabels).length === newHead.labels)) {
      outputConfig['id2label'] = Object.fromEntries(Array.from({ length: newHead.labels }, (_, i) => [String(i), `LABEL_${i}`]));
      outputConfig['label2id'] = Object.fromEntries(Array.from({ length: newHead.labels }, (_, i) => [`LABEL_${i}`, i]));
      configChanges.push(`num_labels: ${newHead.labels} (id2label/label2id from the head's ${newHead.labels} rows)`);
    }
    findings.push({ severity: 'info', code: 'HEAD_ADDED', subject: `${newHead.module}.weight`, message: `the adapter's "${newHead.module}" head (${newHead.labels} labels) is added; the output loads as ${arch}` });
  }
  const tieChange = tieConfigChange(tie, base.config);
  if (tieChange) {
    outputConfig['tie_word_embeddings'] = tieChange.value;
    configChanges.push(tieChange.text);
  }

  const plan: MergePlan = {
    tensors,
    tie,
    outputConfig: configChanges.length > 0 ? outputConfig : null,
    configChanges,
    findings: [...findings, ...tie.findings],
    baseConfig: base.config,
    duplicateCopies,
    summary: { merged, replaced, added, copied: tensors.filter((t) => t.source.kind === 'copy').length, loraModules },
  };
  return plan;
}

/** dtype and shape of what a source produces. */
export function outputTypeOf(source: TensorSource): { dtype: Dtype; shape: readonly number[] } {
  const ref = source.kind === 'merge' || source.kind === 'rows' ? source.base : source.from;
  return { dtype: ref.dtype, shape: ref.shape };
}

/** The model class a config describes (`architectures[0]`, GPT2LMHeadModel when absent). */
export function architectureOf(config: Record<string, unknown>): string {
  const arch = config['architectures'];
  return Array.isArray(arch) && typeof arch[0] === 'string' ? arch[0] : 'GPT2LMHeadModel';
}

/** The `tie_word_embeddings` value a decided tie requires, if it differs from the base config's. */
export function tieConfigChange(tie: TiePlan, baseConfig: Record<string, unknown>): { value: boolean; text: string } | null {
  if (tie.state !== 'decided' || tie.decision !== 'untie') return null;
  if (baseConfig['tie_word_embeddings'] === false) return null;
  return { value: false, text: `tie_word_embeddings: ${JSON.stringify(baseConfig['tie_word_embeddings'] ?? true)} → false (${tie.reason})` };
}

export { TIED_INPUT_WEIGHT, TIED_OUTPUT_WEIGHT };

/** PEFT's `trainable_token_indices` for a module: a list targets the input embedding; a dict names modules. */
function tokenIndicesFor(config: LoraAdapterConfig, modulePath: string, isInputEmbedding: boolean): readonly number[] | undefined {
  const tti = config.trainableTokenIndices;
  if (tti === null) return undefined;
  if (Array.isArray(tti)) return isInputEmbedding ? (tti as readonly number[]) : undefined;
  const dict = tti as Readonly<Record<string, readonly number[]>>;
  const key = Object.keys(dict).find((k) => modulePath === k || modulePath.endsWith(`.${k}`) || canonicalName(modulePath) === canonicalName(k));
  return key === undefined ? undefined : dict[key];
}
