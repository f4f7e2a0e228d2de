/**
 * Planning stage: trained `lora_B` biases (`lora_bias: true`). PEFT's LoRA layer then computes
 * `base(x) + scale·lora_B(lora_A(x))`, and `lora_B` carries a bias, so the output gains
 * `scale·lora_B.bias` on every row: the merge adds that to the module's own bias (PEFT's `Linear.merge`).
 * With `lora_bias: false` PEFT builds `lora_B` without a bias and ignores saved `lora_B.bias` tensors.
 */
import { InputError } from '../errors.js';
import { canonicalName } from '../gpt2/architecture.js';
import { whyNotLoraTarget } from '../peft/target-selection.js';
import { shapeText } from '../shape.js';
import { tensorRefOf } from '../safetensors/tensor-ref.js';
import { FLOAT_DTYPES, type AdapterTensors } from './adapter-tensors.js';
import type { LoraMerges } from './lora-deltas.js';
import type { StartingWeight } from './starting-weight.js';
import type { Finding, FollowRule, SingleAdapterInput, TensorSource } from './types.js';

/** The bias merges the adapter's `lora_B.bias` tensors call for. */
export interface LoraBiasMerges {
  /** `bias` sources by the canonical name of the bias they change (`transformer.h.0.attn.c_attn.bias`). */
  readonly sources: ReadonlyMap<string, Extract<TensorSource, { kind: 'bias' }>>;
  readonly findings: readonly Finding[];
}

/**
 * Plans one `bias` source per saved `lora_B.bias`, at the scale of the module's LoRA merge; throws for
 * a module without a bias (PEFT: "Impossible to merge LoRA with lora_bias=True because the base layer
 * has no bias") and for a bias that does not fit.
 */
export function planLoraBiases(input: SingleAdapterInput, tensors: AdapterTensors, startOf: StartingWeight, lora: LoraMerges, follow?: FollowRule): LoraBiasMerges {
  const { adapter } = input;
  const sources = new Map<string, Extract<TensorSource, { kind: 'bias' }>>();
  const findings: Finding[] = [];
  if (tensors.loraBiases.size === 0) return { sources, findings };
  const keys = [...tensors.loraBiases.values()].map((t) => t.name);
  if (!adapter.config.loraBias && follow !== 'tensors') {
    findings.push({
      severity: 'warning',
      code: 'LORA_BIAS_IGNORED',
      subject: 'lora_bias',
      message: `the adapter stores ${keys.length} lora_B.bias tensor(s) (${keys.slice(0, 3).map((k) => `"${k}"`).join(', ')}${keys.length > 3 ? ', …' : ''}) but adapter_config.json says lora_bias: false, so PEFT builds lora_B without a bias and ignores them; left out, as PEFT does`,
      fix: 'If they were trained, set "lora_bias": true in adapter_config.json (or pass --follow tensors) to merge them.',
    });
    return { sources, findings };
  }
  const ignored: string[] = [];
  for (const [modulePath, info] of tensors.loraBiases) {
    const weight = lora.sources.get(`${canonicalName(modulePath)}.weight`);
    const delta = weight?.deltas.find((d) => d.modulePath === modulePath);
    if (!delta) {
      const why = whyNotLoraTarget(adapter.config, modulePath);
      if (why !== null) {
        ignored.push(`"${info.name}" (${why})`);
        continue;
      }
      throw new InputError('ADAPTER_LORA_INCOMPLETE', `${adapter.label}: "${info.name}" is a lora_B bias, but module "${modulePath}" has no lora_A/lora_B weights`, {
        subject: info.name,
        hint: 'The adapter file is incomplete; re-save it with PEFT.',
      });
    }
    const canonical = `${canonicalName(modulePath)}.bias`;
    // A trained bias saved beside it (bias "all" / "lora_only") is the value PEFT's base layer holds.
    const saved = tensors.replacements.get(canonical);
    const start = saved ? tensorRefOf(adapter.file, saved.info) : startOf(canonical);
    if (!start) {
      throw new InputError('LORA_BIAS_WITHOUT_BASE_BIAS', `${adapter.label}: "${info.name}" is a trained lora_B bias, but "${modulePath}" has no bias in ${input.base.label}; PEFT refuses this merge too ("the base layer has no bias")`, {
        subject: modulePath,
        hint: 'lora_bias only works on layers with a bias (GPT-2\'s Conv1D layers, not lm_head); re-train without lora_bias on that module, or keep the adapter unmerged.',
      });
    }
    if (!FLOAT_DTYPES.includes(info.dtype) || info.shape.length !== 1) {
      throw new InputError('ADAPTER_LORA_SHAPE', `${adapter.label}: tensor "${info.name}" must be a 1-D F32/F16/BF16 vector, got ${info.dtype} ${shapeText(info.shape)}`, { subject: info.name });
    }
    if (!FLOAT_DTYPES.includes(start.dtype)) {
      throw new InputError('BASE_DTYPE_UNSUPPORTED', `${start.file}: tensor "${start.name}" is ${start.dtype}; lorafuse merges into F32, F16 and BF16 tensors`, { subject: start.name });
    }
    if (start.shape.length !== 1 || start.shape[0] !== info.shape[0]) {
      throw new InputError('ADAPTER_BASE_SHAPE_MISMATCH', `${adapter.label}: lora_B bias "${info.name}" is ${shapeText(info.shape)} but "${start.name}" in ${start.file} is ${shapeText(start.shape)}`, {
        subject: info.name,
        hint: 'The adapter was trained on a different model size; use the base it was trained on.',
      });
    }
    sources.set(canonical, { kind: 'bias', base: start, terms: [{ modulePath, bias: tensorRefOf(adapter.file, info), scale: delta.scale }] });
  }
  if (ignored.length > 0) {
    findings.push({ severity: 'info', code: 'LORA_BIAS_IGNORED', subject: 'lora_bias', message: `lora_B biases of modules PEFT builds no LoRA layer for are left out, as PEFT ignores them: ${ignored.join('; ')}` });
  }
  if (sources.size > 0) {
    findings.push({ severity: 'info', code: 'LORA_BIAS_MERGED', subject: 'lora_bias', message: `lora_bias: ${sources.size} module bias(es) get scale·lora_B.bias added (${[...sources.values()].map((s) => s.terms[0]!.modulePath).join(', ')})` });
  }
  return { sources, findings };
}
