/**
 * `adapter_config.json`: parsing, PEFT's defaults, and refusal of what cannot be merged.
 * A missing field takes PEFT's default, as PEFT does for older files. Unknown keys are kept out of the
 * result but never an error (newer PEFT).
 */
import { InputError } from '../errors.js';
import { checkConfigPattern } from './pattern.js';

/** The fields of a LoRA adapter config that matter for merging, with PEFT's defaults applied. */
export interface LoraAdapterConfig {
  /** Where it came from, for messages. */
  readonly label: string;
  readonly peftType: 'LORA';
  readonly taskType: string | null;
  readonly baseModelNameOrPath: string | null;
  readonly r: number;
  readonly loraAlpha: number;
  readonly useRslora: boolean;
  readonly useDora: boolean;
  /** As saved; unreliable for GPT-2 (PEFT saves whatever its last layer set): never used to pick an orientation. */
  readonly fanInFanOut: boolean;
  /** List, regex string (full match), or null (PEFT's per-architecture default: `c_attn` for GPT-2). */
  readonly targetModules: readonly string[] | string | null;
  readonly excludeModules: readonly string[] | string | null;
  readonly modulesToSave: readonly string[] | null;
  readonly bias: 'none' | 'all' | 'lora_only';
  readonly loraBias: boolean;
  /** Regex key → rank, in file order (PEFT writes them sorted; first match wins). */
  readonly rankPattern: ReadonlyArray<readonly [string, number]>;
  /** Regex key → alpha, in file order (first match wins). */
  readonly alphaPattern: ReadonlyArray<readonly [string, number]>;
  readonly layersToTransform: readonly number[] | null;
  readonly layersPattern: readonly string[] | null;
  readonly trainableTokenIndices: readonly number[] | Readonly<Record<string, readonly number[]>> | null;
  readonly ensureWeightTying: boolean;
  /** `init_lora_weights` as saved; `"mica"` and the other initialisations that leave the base alone merge as plain LoRA. */
  readonly initLoraWeights: boolean | string;
  /**
   * Parameter names (`attn.c_attn.weight`) PEFT wraps in a `ParamWrapper`: their LoRA delta is
   * `scale·B·A` in the parameter's own layout (A `[r, shape[1]]`, B `[shape[0], r]`), never transposed.
   */
  readonly targetParameters: readonly string[] | null;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function fieldError(label: string, field: string, message: string, hint?: string): InputError {
  return new InputError('ADAPTER_CONFIG_FIELD', `${label}: field "${field}" ${message}`, {
    subject: field,
    hint: hint ?? 'Fix the field or re-save the adapter with PEFT (`model.save_pretrained(dir)`).',
  });
}

function unsupported(label: string, feature: string, detail: string, hint: string): InputError {
  return new InputError('ADAPTER_UNSUPPORTED', `${label}: ${feature} is not supported: ${detail}`, { subject: feature, hint });
}

/** Parses and validates `adapter_config.json` text. Throws `InputError` naming the field at fault. */
export function parseAdapterConfig(text: string, label = 'adapter_config.json'): LoraAdapterConfig {
  let raw: Json;
  try {
    raw = JSON.parse(text) as Json;
  } catch (e) {
    throw new InputError('ADAPTER_CONFIG_JSON', `${label} is not valid JSON: ${(e as Error).message}`, {
      subject: label,
      hint: 'adapter_config.json must be the JSON file PEFT writes beside adapter_model.safetensors.',
    });
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new InputError('ADAPTER_CONFIG_JSON', `${label} must hold a JSON object`, { subject: label });
  }
  const obj = raw;
  const has = (k: string) => Object.prototype.hasOwnProperty.call(obj, k) && obj[k] !== null;

  const str = (k: string): string | null => {
    if (!has(k)) return null;
    const v = obj[k];
    if (typeof v !== 'string') throw fieldError(label, k, `must be a string, got ${JSON.stringify(v)}`);
    return v;
  };
  const bool = (k: string, dflt: boolean): boolean => {
    if (!has(k)) return dflt;
    const v = obj[k];
    if (typeof v !== 'boolean') throw fieldError(label, k, `must be true or false, got ${JSON.stringify(v)}`);
    return v;
  };
  const num = (k: string, dflt: number, opts: { integer?: boolean; positive?: boolean } = {}): number => {
    if (!has(k)) return dflt;
    const v = obj[k];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw fieldError(label, k, `must be a number, got ${JSON.stringify(v)}`);
    if (opts.integer && !Number.isInteger(v)) throw fieldError(label, k, `must be an integer, got ${v}`);
    if (opts.positive && v <= 0) throw fieldError(label, k, `must be positive, got ${v}`);
    return v;
  };
  const strList = (k: string): string[] | null => {
    if (!has(k)) return null;
    const v = obj[k];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw fieldError(label, k, `must be a list of strings, got ${JSON.stringify(v)}`);
    return v as string[];
  };
  const listOrRegex = (k: string): string[] | string | null => {
    if (!has(k)) return null;
    const v = obj[k];
    if (typeof v === 'string') {
      checkRegex(label, k, v);
      return v;
    }
    return strList(k);
  };
  const pattern = (k: string, integer: boolean): Array<[string, number]> => {
    if (!has(k)) return [];
    const v = obj[k];
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw fieldError(label, k, `must be an object mapping module patterns to numbers`);
    return Object.entries(v).map(([key, value]) => {
      if (typeof value !== 'number' || !Number.isFinite(value) || (integer && !Number.isInteger(value)) || value <= 0) {
        throw fieldError(label, `${k}.${key}`, `must be a positive ${integer ? 'integer' : 'number'}, got ${JSON.stringify(value)}`);
      }
      checkRegex(label, `${k}.${key}`, key);
      return [key, value];
    });
  };

  const peftType = str('peft_type') ?? 'LORA';
  if (peftType !== 'LORA') {
    throw new InputError('ADAPTER_UNSUPPORTED', `${label}: unsupported: ${peftType} (peft_type). lorafuse merges LoRA adapters only.`, {
      subject: 'peft_type',
      hint: `Merge a ${peftType} adapter with PEFT itself (merge_and_unload), or train a LoRA adapter.`,
    });
  }

  // Variants whose merge is not W + s·B·A: refusing beats writing a wrong checkpoint.
  if (has('layer_replication') && !(Array.isArray(obj['layer_replication']) && obj['layer_replication'].length === 0)) {
    throw unsupported(label, 'layer_replication', 'PEFT itself refuses to merge LoRA layers when base model layers are replicated', 'Merge without layer replication.');
  }
  // Before the variant checks: LoRA-GA is also a base-mutating initialisation, with its own fix.
  const initLoraWeights = has('init_lora_weights') ? obj['init_lora_weights'] : true;
  if (typeof initLoraWeights !== 'boolean' && typeof initLoraWeights !== 'string') {
    throw fieldError(label, 'init_lora_weights', `must be a boolean or a string, got ${JSON.stringify(initLoraWeights)}`);
  }
  if (typeof initLoraWeights === 'string') refuseBaseChangingInit(label, initLoraWeights);
  {
    const v = obj['alora_invocation_tokens'];
    if (has('alora_invocation_tokens') && !(Array.isArray(v) && v.length === 0)) {
      throw unsupported(label, 'alora_invocation_tokens', `"alora_invocation_tokens" is set (${JSON.stringify(v)}): an activated LoRA applies only after its invocation tokens, which no merged weight can express`, 'Use PEFT with this adapter unmerged.');
    }
  }
  for (const k of ['velora_config', 'kasa_config', 'arrow_config', 'monteclora_config', 'lora_ga_config']) {
    const v = obj[k];
    if (has(k) && !(typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0)) {
      throw unsupported(label, k, `the LoRA variant "${k}" is set`, 'Only plain LoRA (optionally rsLoRA) adapters can be merged.');
    }
  }
  for (const k of ['use_bdlora', 'use_qalora']) {
    if (bool(k, false)) throw unsupported(label, k, `"${k}" is true`, 'Only plain LoRA (optionally rsLoRA) adapters can be merged.');
  }
  const targetParameters = strList('target_parameters');

  const biasRaw = str('bias') ?? 'none';
  if (biasRaw !== 'none' && biasRaw !== 'all' && biasRaw !== 'lora_only') {
    throw fieldError(label, 'bias', `must be "none", "all" or "lora_only", got ${JSON.stringify(biasRaw)}`);
  }

  const layersToTransformRaw = has('layers_to_transform') ? obj['layers_to_transform'] : null;
  let layersToTransform: number[] | null = null;
  if (layersToTransformRaw !== null && layersToTransformRaw !== undefined) {
    const list = typeof layersToTransformRaw === 'number' ? [layersToTransformRaw] : layersToTransformRaw;
    if (!Array.isArray(list) || !list.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0)) {
      throw fieldError(label, 'layers_to_transform', `must be a layer index or a list of them, got ${JSON.stringify(layersToTransformRaw)}`);
    }
    layersToTransform = list as number[];
  }
  const layersPatternRaw = has('layers_pattern') ? obj['layers_pattern'] : null;
  let layersPattern: string[] | null = null;
  if (typeof layersPatternRaw === 'string') layersPattern = [layersPatternRaw];
  else if (layersPatternRaw !== null && layersPatternRaw !== undefined) layersPattern = strList('layers_pattern');
  for (const p of layersPattern ?? []) checkRegex(label, 'layers_pattern', p);

  const ttiRaw = has('trainable_token_indices') ? obj['trainable_token_indices'] : null;
  let trainableTokenIndices: LoraAdapterConfig['trainableTokenIndices'] = null;
  if (ttiRaw !== null && ttiRaw !== undefined) {
    const isIndexList = (v: Json) => Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0);
    if (isIndexList(ttiRaw)) trainableTokenIndices = ttiRaw as number[];
    else if (typeof ttiRaw === 'object' && !Array.isArray(ttiRaw) && Object.values(ttiRaw).every(isIndexList)) {
      trainableTokenIndices = ttiRaw as Record<string, number[]>;
    } else throw fieldError(label, 'trainable_token_indices', 'must be a list of token indices or an object of module name → list of indices');
  }

  return {
    label,
    peftType: 'LORA',
    taskType: str('task_type'),
    baseModelNameOrPath: str('base_model_name_or_path'),
    r: num('r', 8, { integer: true, positive: true }),
    loraAlpha: num('lora_alpha', 8),
    useRslora: bool('use_rslora', false),
    useDora: bool('use_dora', false),
    fanInFanOut: bool('fan_in_fan_out', false),
    targetModules: listOrRegex('target_modules'),
    excludeModules: listOrRegex('exclude_modules'),
    modulesToSave: strList('modules_to_save'),
    bias: biasRaw,
    loraBias: bool('lora_bias', false),
    rankPattern: pattern('rank_pattern', true),
    alphaPattern: pattern('alpha_pattern', false),
    layersToTransform,
    layersPattern,
    trainableTokenIndices,
    ensureWeightTying: bool('ensure_weight_tying', false),
    initLoraWeights,
    targetParameters: targetParameters && targetParameters.length > 0 ? targetParameters : null,
  };
}

function checkRegex(label: string, field: string, pattern: string): void {
  checkConfigPattern(pattern, { field, label });
}

/**
 * PiSSA, OLoRA, CorDA and LoRA-GA rewrite the base weight at initialisation (`W_res = W - s·B₀A₀`)
 * and LoftQ replaces it by a quantised copy: an adapter saved without conversion only means
 * something on that rewritten base, so merging it into the original base would be wrong.
 */
function refuseBaseChangingInit(label: string, init: string): void {
  const lower = init.toLowerCase();
  const method = lower.startsWith('pissa') ? 'PiSSA' : lower === 'olora' ? 'OLoRA' : lower.startsWith('corda') ? 'CorDA' : lower === 'lora_ga' ? 'LoRA-GA' : null;
  if (method !== null) {
    throw new InputError('ADAPTER_NEEDS_CONVERSION', `${label}: init_lora_weights is "${init}": a ${method} adapter saved without conversion belongs to the base ${method} rewrote at initialisation (W minus the initial scale·B₀·A₀), not to the original base, so it cannot be merged into the original base`, {
      subject: 'init_lora_weights',
      hint: `Convert it to a plain LoRA with PEFT: right after get_peft_model and before training, set model.peft_config["default"].init_lora_weights = True and call model.save_pretrained("<init-dir>"); after training call model.save_pretrained("<out-dir>", path_initial_model_for_weight_conversion="<init-dir>"). <out-dir> then holds a plain LoRA (rank 2r, init_lora_weights: true) that merges into the original base.`,
    });
  }
  if (lower === 'loftq') {
    throw new InputError('ADAPTER_UNSUPPORTED', `${label}: init_lora_weights is "loftq": a LoftQ adapter was trained on the quantised base LoftQ made from the original (W replaced by Q(W)), which is not the base given here, and PEFT has no conversion for it`, {
      subject: 'init_lora_weights',
      hint: 'Merge it with PEFT into the quantised base it was trained on, or keep it unmerged.',
    });
  }
}
