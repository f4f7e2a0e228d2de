/**
 * Planning stage: each LoRA module of the adapter becomes a `merge` source — its starting weight plus
 * `weight · scale · B·A` laid on by the module's weight layout, and under DoRA the per-feature
 * rescaling by its magnitude vector — after checking the factors' dtypes and shapes against that weight.
 */
import { InputError } from '../errors.js';
import { canonicalName, moduleKind, PARAMETER_LAYOUT, weightLayoutOf, type WeightLayout } from '../gpt2/architecture.js';
import { moduleHyperparams } from '../peft/lora-math.js';
import { targetParameterOf } from '../peft/target-selection.js';
import { shapeText } from '../shape.js';
import { tensorRefOf } from '../safetensors/tensor-ref.js';
import { FLOAT_DTYPES, type AdapterTensors, type LoraPair } from './adapter-tensors.js';
import type { StartingWeight } from './starting-weight.js';
import type { DoraSpec, Finding, SingleAdapterInput, TensorSource } from './types.js';

/** The merges the adapter's LoRA factors call for. */
export interface LoraMerges {
  /** `merge` sources by the canonical name of the weight they change. */
  readonly sources: ReadonlyMap<string, Extract<TensorSource, { kind: 'merge' }>>;
  /** Module paths, in the adapter file's order. */
  readonly modules: readonly string[];
  readonly findings: readonly Finding[];
}

/**
 * The DoRA step of a module under `use_dora: true`: its magnitude vector, checked to hold one F32,
 * F16 or BF16 value per output feature. Without `use_dora` (magnitudes were refused earlier) none.
 */
function planDora(input: SingleAdapterInput, pair: LoraPair, outFeatures: number, layout: WeightLayout): DoraSpec | undefined {
  const { adapter } = input;
  if (!adapter.config.useDora) return undefined;
  if (layout === PARAMETER_LAYOUT) {
    throw new InputError('ADAPTER_FEATURE_UNSUPPORTED', `${adapter.label}: use_dora with target_parameters ("${pair.a?.name ?? 'a parameter'}"): PEFT's ParamWrapper does not work with use_dora=True, so no PEFT model computes this`, {
      subject: 'use_dora',
      hint: 'Re-train with use_dora: false, or target the module (target_modules) instead of its parameter.',
    });
  }
  const m = pair.magnitude;
  if (!m) {
    const expected = pair.a!.name.replace(/lora_(?:embedding_)?A(?:\.weight)?$/, 'lora_magnitude_vector');
    throw new InputError('DORA_MAGNITUDE_MISSING', `${adapter.label}: adapter_config.json sets use_dora: true, but the DoRA magnitude vector "${expected}" is missing`, {
      subject: expected,
      hint: 'PEFT saves one lora_magnitude_vector per DoRA module; re-save the adapter with PEFT, or set use_dora: false if it was trained without DoRA.',
    });
  }
  if (!FLOAT_DTYPES.includes(m.dtype) || m.shape.length !== 1 || m.shape[0] !== outFeatures) {
    throw new InputError('DORA_MAGNITUDE_SHAPE', `${adapter.label}: DoRA magnitude vector "${m.name}" is ${m.dtype} ${shapeText(m.shape)}; the ${layout.label} module needs an F32/F16/BF16 vector of its ${outFeatures} output features`, {
      subject: m.name,
      hint: 'Was the adapter trained on another model? Re-save it with PEFT.',
    });
  }
  return { adapter: adapter.label, magnitude: tensorRefOf(adapter.file, m), featureAxis: layout.featureAxis };
}

/** Plans one `merge` per LoRA module; throws for factors that do not fit their module or weight. */
export function planLoraMerges(input: SingleAdapterInput, tensors: AdapterTensors, startOf: StartingWeight): LoraMerges {
  const { adapter } = input;
  const sources = new Map<string, Extract<TensorSource, { kind: 'merge' }>>();
  const modules: string[] = [];
  const findings: Finding[] = [];
  for (const [modulePath, pair] of tensors.loraPairs) {
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
    const parameter = targetParameterOf(adapter.config, modulePath);
    if (parameter !== undefined && kind !== 'conv1d') {
      throw new InputError('ADAPTER_UNSUPPORTED', `${adapter.label}: target_parameters wraps "${modulePath}.${parameter}", ${kind === 'other' ? 'which is not a GPT-2 Conv1D weight' : `the ${kind === 'embedding' ? 'input embedding' : 'output head'}; PEFT then parametrizes that module's use of the matrix, and in a tied GPT-2 the other use keeps the base matrix, which lorafuse does not reproduce`}`, {
        subject: 'target_parameters',
        hint: 'lorafuse merges target_parameters on the Conv1D weights (c_attn, c_proj, c_fc); train the embedding or head with target_modules instead.',
      });
    }
    if (pair.embedding !== (kind === 'embedding')) {
      throw new InputError('ADAPTER_MODULE_UNKNOWN', `${adapter.label}: "${modulePath}" has ${names[0]}/${names[1]} tensors, but it is ${kind === 'embedding' ? 'an Embedding' : `a ${kind} module`} in GPT-2`, { subject: a.name, hint: 'Was the adapter trained on another architecture?' });
    }
    if (kind === 'other') {
      throw new InputError('ADAPTER_MODULE_UNKNOWN', `${adapter.label}: LoRA tensors for "${modulePath}", which is not a Conv1D, Linear or Embedding module of GPT-2`, {
        subject: modulePath,
        hint: 'GPT-2 LoRA targets are c_attn, c_proj, c_fc (Conv1D), lm_head (Linear) and wte (Embedding). Was the adapter trained on another architecture?',
      });
    }
    const replacement = tensors.replacements.get(canonical);
    if (replacement && !replacement.fromBaseLayer) {
      throw new InputError('ADAPTER_CONFLICT', `${adapter.label}: "${canonical}" has both LoRA factors and a full replacement tensor "${replacement.key}"`, {
        subject: canonical,
        hint: 'A module cannot be both in target_modules and modules_to_save; re-train with it in only one.',
      });
    }
    const start = startOf(canonical);
    if (!start) {
      throw new InputError('ADAPTER_TARGET_MISSING', `${adapter.label}: LoRA tensors for "${modulePath}" map to "${canonical}", which ${input.base.label} does not have`, {
        subject: a.name,
        hint: 'Check that the adapter was trained on this base model (layer count, architecture).',
      });
    }
    if (!FLOAT_DTYPES.includes(start.dtype)) {
      throw new InputError('BASE_DTYPE_UNSUPPORTED', `${start.file}: tensor "${start.name}" is ${start.dtype}; lorafuse merges into F32, F16 and BF16 weights`, { subject: start.name });
    }
    const layout = parameter !== undefined ? PARAMETER_LAYOUT : weightLayoutOf(kind);
    const expected = layout.weightShape(inFeatures, outFeatures);
    if (start.shape.length !== 2 || start.shape[0] !== expected[0] || start.shape[1] !== expected[1]) {
      throw new InputError('ADAPTER_BASE_SHAPE_MISMATCH', `${adapter.label}: module "${modulePath}": ${names[0]} ${shapeText(a.shape)} and ${names[1]} ${shapeText(b.shape)} give a ${layout.layout} delta of ${shapeText(expected)}, but "${start.name}" in ${start.file} is ${shapeText(start.shape)}`, {
        subject: start.name,
        hint: kind === 'embedding' || kind === 'linear'
          ? 'If the vocabulary was resized during training, the adapter must carry the resized embedding weights (save_embedding_layers=True); otherwise use the base it was trained on.'
          : 'The adapter was trained on a different model size; use the base it was trained on.',
      });
    }
    // PEFT resolves rank_pattern / alpha_pattern of a wrapped parameter against its full name.
    const hp = moduleHyperparams(adapter.config, parameter !== undefined ? `${modulePath}.${parameter}` : modulePath, rank);
    if (hp.configuredRank !== rank) {
      findings.push({
        severity: 'warning',
        code: 'RANK_MISMATCH',
        subject: modulePath,
        message: `"${modulePath}": ${hp.rankPatternKey ? `rank_pattern "${hp.rankPatternKey}"` : 'r'} says rank ${hp.configuredRank}, but ${names[0]} has ${rank} rows; the tensor shape is used`,
      });
    }
    const dora = planDora(input, pair, outFeatures, layout);
    modules.push(modulePath);
    const weight = adapter.weight ?? 1;
    sources.set(canonical, {
      kind: 'merge',
      base: start,
      deltas: [{ modulePath, a: tensorRefOf(adapter.file, a), b: tensorRefOf(adapter.file, b), rank, alpha: hp.alpha, scale: hp.scale * weight, adapter: adapter.label, weight, orientation: layout.orientation, rows: start.shape[0]!, cols: start.shape[1]! }],
      ...(dora ? { dora: [dora] } : {}),
    });
  }
  if (!adapter.config.fanInFanOut && [...sources.values()].some((s) => s.deltas.some((d) => moduleKind(d.modulePath) === 'conv1d' && d.orientation === 'transposed'))) {
    findings.push({
      severity: 'info',
      code: 'FAN_IN_FAN_OUT_IGNORED',
      subject: 'fan_in_fan_out',
      message: 'adapter_config.json says fan_in_fan_out: false, but GPT-2 Conv1D layers always use fan_in_fan_out = true in PEFT; lorafuse orients each delta by module type',
    });
  }
  return { sources, modules, findings };
}
