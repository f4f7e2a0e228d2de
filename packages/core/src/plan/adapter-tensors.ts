/**
 * Planning stage: every tensor of the adapter file sorted by what it does — a LoRA factor, a full
 * replacement, trainable-token rows, a trained lora_B bias, or PEFT's untrained original kept beside a trained copy — with
 * features this version cannot merge refused by name, so nothing is ever silently skipped.
 */
import { InputError } from '../errors.js';
import { canonicalName } from '../gpt2/architecture.js';
import { parseAdapterKey } from '../peft/adapter-keys.js';
import type { Dtype } from '../safetensors/dtype.js';
import type { TensorInfo } from '../safetensors/header.js';
import { tensorRefOf } from '../safetensors/tensor-ref.js';
import type { AdapterInput, DuplicateCopy } from './types.js';

/** The float dtypes lorafuse computes in (f32 arithmetic, one rounding back). */
export const FLOAT_DTYPES: readonly Dtype[] = ['F32', 'F16', 'BF16'];

/** The A and B factors of one module (either may be missing in a broken file). */
export interface LoraPair {
  a?: TensorInfo;
  b?: TensorInfo;
  /** `lora_embedding_A/B` (an Embedding) rather than `lora_A/B`. */
  embedding: boolean;
  /** DoRA's `lora_magnitude_vector` of the module, when the adapter has one. */
  magnitude?: TensorInfo;
}

/** A full tensor of the adapter that takes the place of a base tensor. */
export interface Replacement {
  readonly key: string;
  readonly info: TensorInfo;
  /** A `base_layer` weight saved in the adapter: the starting weight of a LoRA merge, not a trained value. */
  readonly fromBaseLayer: boolean;
  /** PEFT's `<m>.modules_to_save.weight` copy of a `<m>.weight`. */
  readonly wrapperCopy: boolean;
}

/** The adapter's tensors by role. */
export interface AdapterTensors {
  readonly loraPairs: ReadonlyMap<string, LoraPair>;
  /** Full tensors by the canonical name of the tensor they replace. */
  readonly replacements: ReadonlyMap<string, Replacement>;
  readonly tokenRows: ReadonlyArray<{ readonly modulePath: string; readonly info: TensorInfo }>;
  /** Trained `lora_B.bias` tensors (`lora_bias: true`) by module path. */
  readonly loraBiases: ReadonlyMap<string, TensorInfo>;
  /** `original_module` tensors, which the model never uses. */
  readonly ignoredOriginals: readonly string[];
  /** Tensors stored twice under two names; the executor must find them byte-identical. */
  readonly duplicateCopies: readonly DuplicateCopy[];
}

/** A feature a later version merges; refused by name now. */
function refuseFeature(adapterLabel: string, feature: string, key: string, hint: string): InputError {
  return new InputError('ADAPTER_FEATURE_UNSUPPORTED', `${adapterLabel}: ${feature} is not supported yet (tensor "${key}")`, {
    subject: key,
    hint,
  });
}

/** Sorts the adapter's tensors by role; throws for keys and features it cannot merge faithfully. */
export function classifyAdapterTensors(adapter: AdapterInput): AdapterTensors {
  const loraPairs = new Map<string, LoraPair>();
  const replacements = new Map<string, Replacement>();
  const ignoredOriginals: string[] = [];
  const tokenRows: Array<{ modulePath: string; info: TensorInfo }> = [];
  const loraBiases = new Map<string, TensorInfo>();
  const duplicateCopies: DuplicateCopy[] = [];
  const file = adapter.file;
  const magnitudes: Array<{ modulePath: string; info: TensorInfo }> = [];
  for (const info of file.tensors) {
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
        magnitudes.push({ modulePath: key.modulePath, info });
        break;
      case 'lora_bias':
        loraBiases.set(key.modulePath, info);
        break;
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
          duplicateCopies.push({ tensor: canonical, kept: tensorRefOf(file, kept.info), duplicate: tensorRefOf(file, dropped), keptBy: adapter.label, duplicateBy: adapter.label });
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
  attachMagnitudes(adapter, loraPairs, magnitudes);
  return { loraPairs, replacements, tokenRows, loraBiases, ignoredOriginals, duplicateCopies };
}

/**
 * Gives each DoRA magnitude vector to its module's LoRA pair. PEFT reads them only with
 * `use_dora: true`, and a module without its LoRA factors has nothing for a magnitude to scale.
 */
function attachMagnitudes(adapter: AdapterInput, loraPairs: Map<string, LoraPair>, magnitudes: ReadonlyArray<{ modulePath: string; info: TensorInfo }>): void {
  for (const { modulePath, info } of magnitudes) {
    if (!adapter.config.useDora) {
      throw new InputError('DORA_WITHOUT_USE_DORA', `${adapter.label}: tensor "${info.name}" is a DoRA magnitude vector, but adapter_config.json does not set use_dora: true (PEFT would ignore it and build a plain LoRA)`, {
        subject: info.name,
        hint: 'If the adapter was trained with DoRA, set "use_dora": true in adapter_config.json; otherwise remove the lora_magnitude_vector tensors.',
      });
    }
    const pair = loraPairs.get(modulePath);
    if (!pair) {
      throw new InputError('ADAPTER_LORA_INCOMPLETE', `${adapter.label}: module "${modulePath}" has a DoRA magnitude vector "${info.name}" but no LoRA factors`, {
        subject: info.name,
        hint: 'The adapter file is incomplete; re-save it with PEFT.',
      });
    }
    pair.magnitude = info;
  }
}
