/**
 * Base + adapter as PEFT's unmerged model computes them, for the behavioural check. Written apart from
 * the merge planner on purpose: it reads the adapter's tensors its own way (LoRA terms stay factors,
 * applied to activations), so a bug in the merge shows up as a difference instead of being repeated.
 *
 * What PEFT's wrapped modules do, per module:
 * - a LoRA layer adds `scale·(x Aᵀ)Bᵀ` to the module's output (on the embedding, a lookup in A then B);
 *   tensors of modules the config does not select are ignored, as PEFT ignores them on load;
 * - under `use_dora`, its magnitude vector rescales that output per feature (dora.ts); in a tied model
 *   the DoRA norm of one use is taken over the shared base matrix and the other use is untouched;
 * - a parameter named in `target_parameters` runs as `W + scale·B·A` in the parameter's stored layout
 *   (PEFT's ParamWrapper materialises that weight for the forward pass);
 * - with `lora_bias: true`, lora_B's bias adds `scale·lora_B.bias` to every output row, which is the
 *   same as adding it to the module's bias (a constant needs no activations); with `lora_bias: false`
 *   PEFT builds lora_B without a bias and saved `lora_B.bias` tensors are ignored;
 * - a full tensor (modules_to_save, saved embeddings, trained biases) replaces that parameter only: in a
 *   tied model a trained `wte` copy leaves lm_head on the base matrix, and the reverse;
 * - trainable-token rows replace rows of the embedding, and of lm_head too when the model is tied
 *   and lm_head has no token rows of its own (PEFT then ties the output head's token adapter to the
 *   input's; with its own indices each is wrapped apart).
 */
import { InputError } from '../errors.js';
import { canonicalName, TIED_INPUT_WEIGHT, TIED_OUTPUT_WEIGHT } from '../gpt2/architecture.js';
import type { LoraAdapterConfig } from '../peft/adapter-config.js';
import { parseAdapterKey } from '../peft/adapter-keys.js';
import { moduleHyperparams } from '../peft/lora-math.js';
import { targetParameterOf, whyNotLoraTarget } from '../peft/target-selection.js';
import { trainableTokenIndicesFor } from '../peft/token-indices.js';
import { shapeText } from '../shape.js';
import type { ParamTable, ParamValues } from './build-model.js';
import type { LoraTerm } from './gpt2-model.js';

/** One adapter tensor with its values decoded to f32. */
export interface AdapterTensorValues {
  readonly key: string;
  readonly shape: readonly number[];
  readonly values: Float32Array;
}

/** What {@link applyAdapterUnmerged} needs. */
export interface UnmergedAdapterInput {
  /** The base as transformers loads it (lm_head present, equal to wte when tied). */
  readonly base: ParamTable;
  readonly baseTied: boolean;
  readonly baseArchitecture: string;
  readonly config: LoraAdapterConfig;
  readonly tensors: readonly AdapterTensorValues[];
  readonly label: string;
  /**
   * The factor its LoRA terms' output is multiplied by (default 1), as when several adapters are
   * active together with weights; full tensors and token rows are values and are not weighted.
   */
  readonly weight?: number;
}

/** Parameters and LoRA terms of the unmerged model. */
export interface UnmergedModelParts {
  readonly params: ParamTable;
  readonly lora: ReadonlyMap<string, readonly LoraTerm[]>;
  /** The model class PEFT runs: a saved classification head makes it a classifier. */
  readonly architecture: string;
  /** What PEFT ignores, in words. */
  readonly notes: readonly string[];
}

function unsupported(label: string, key: string, feature: string): InputError {
  return new InputError('FORWARD_ADAPTER_UNSUPPORTED', `${label}: ${key} is ${feature}, which lorafuse's unmerged forward pass does not implement`, {
    subject: key,
    hint: 'Compare weights instead (`lorafuse verify` without --behaviour).',
  });
}

/** Applies the adapter to the base the way PEFT's unmerged model does. */
export function applyAdapterUnmerged(input: UnmergedAdapterInput): UnmergedModelParts {
  const { config, label } = input;
  const params = new Map<string, ParamValues>(input.base);
  const notes: string[] = [];
  const factors = new Map<string, { a?: AdapterTensorValues; b?: AdapterTensorValues; m?: AdapterTensorValues; embedding: boolean }>();
  const magnitudes: Array<{ module: string; t: AdapterTensorValues }> = [];
  const rows: Array<{ modulePath: string; t: AdapterTensorValues }> = [];
  const replacements: Array<{ name: string; t: AdapterTensorValues }> = [];
  const loraBiases = new Map<string, AdapterTensorValues>();
  for (const t of input.tensors) {
    const k = parseAdapterKey(t.key);
    switch (k.kind) {
      case 'lora_A':
      case 'lora_B':
      case 'lora_embedding_A':
      case 'lora_embedding_B': {
        const module = canonicalName(k.modulePath);
        const entry = factors.get(module) ?? { embedding: k.kind.startsWith('lora_embedding') };
        if (k.kind.endsWith('A')) entry.a = t;
        else entry.b = t;
        factors.set(module, entry);
        break;
      }
      case 'lora_magnitude_vector':
        magnitudes.push({ module: canonicalName(k.modulePath), t });
        break;
      case 'lora_bias':
        loraBiases.set(canonicalName(k.modulePath), t);
        break;
      case 'unknown_lora':
        throw unsupported(label, t.key, 'a LoRA tensor of an unknown kind');
      case 'trainable_tokens':
        rows.push({ modulePath: k.modulePath, t });
        break;
      case 'original_module':
        break; // the untrained copy a modules_to_save wrapper keeps; PEFT's forward never reads it
      case 'replacement':
        replacements.push({ name: canonicalName(k.tensorPath), t });
        break;
    }
  }
  // The base lm_head of a tied model is wte's matrix; each side is replaced on its own from here on.
  for (const { name, t } of replacements) params.set(name, { shape: t.shape, values: t.values });
  let architecture = input.baseArchitecture;
  if (replacements.some((r) => r.name === 'score.weight')) architecture = 'GPT2ForSequenceClassification';
  else if (replacements.some((r) => r.name === 'classifier.weight')) architecture = 'GPT2ForTokenClassification';

  for (const { module, t } of magnitudes) {
    const f = factors.get(module);
    // PEFT builds DoRA layers only under use_dora, and reads nothing else from the vector.
    if (!config.useDora) notes.push(`${t.key}: a DoRA magnitude vector, ignored as PEFT ignores it (use_dora is not set)`);
    else if (f) f.m = t;
    else throw new InputError('FORWARD_ADAPTER_INCOMPLETE', `${label}: ${t.key} is a DoRA magnitude vector of a module without LoRA factors`, { subject: t.key, hint: 'Re-save the adapter with PEFT.' });
  }

  const lora = new Map<string, LoraTerm[]>();
  for (const [module, f] of factors) {
    if (!f.a || !f.b) throw new InputError('FORWARD_ADAPTER_INCOMPLETE', `${label}: ${module} has lora_${f.a ? 'A' : 'B'} but no lora_${f.a ? 'B' : 'A'}`, { subject: module, hint: 'Re-save the adapter with PEFT.' });
    const pathAsPeftNamesIt = (f.a.key.startsWith('base_model.model.') ? f.a.key.slice('base_model.model.'.length) : f.a.key).replace(/\.lora_(?:embedding_)?A(?:\.weight)?$/, '');
    const why = whyNotLoraTarget(config, pathAsPeftNamesIt);
    if (why !== null) {
      notes.push(`${pathAsPeftNamesIt}: LoRA tensors ignored, as PEFT ignores them (${why})`);
      continue;
    }
    // A [r, in] and B [out, r] for Linear/Conv1D; for the embedding PEFT stores A [r, rows] and B [dim, r].
    if (f.a.shape.length !== 2 || f.b.shape.length !== 2 || f.a.shape[0] !== f.b.shape[1]) {
      throw new InputError('FORWARD_WEIGHT_SHAPE', `${label}: ${f.a.key} is ${shapeText(f.a.shape)} and ${f.b.key} is ${shapeText(f.b.shape)}: their ranks differ`, { subject: f.a.key });
    }
    const rank = f.a.shape[0]!;
    const weight = input.weight ?? 1;
    const parameter = targetParameterOf(config, pathAsPeftNamesIt);
    if (parameter !== undefined) {
      // PEFT's ParamWrapper runs the module on `W + scale·B·A` (the parameter as stored), not on activations.
      const scale = moduleHyperparams(config, `${pathAsPeftNamesIt}.${parameter}`, rank).scale * weight;
      const name = `${module}.${parameter}`;
      params.set(name, withParameterDelta(label, name, params.get(name), f.a, f.b, scale));
      continue;
    }
    const scale = moduleHyperparams(config, pathAsPeftNamesIt, rank).scale * weight;
    if (config.useDora && !f.m) {
      const expected = f.a.key.replace(/lora_(?:embedding_)?A(?:\.weight)?$/, 'lora_magnitude_vector');
      throw new InputError('FORWARD_ADAPTER_INCOMPLETE', `${label}: use_dora is set but ${expected} (the DoRA magnitude vector) is missing`, { subject: expected, hint: 'Re-save the adapter with PEFT, or set use_dora: false if it was trained without DoRA.' });
    }
    if (f.m && f.m.shape.length !== 1) throw new InputError('FORWARD_WEIGHT_SHAPE', `${label}: ${f.m.key} is ${shapeText(f.m.shape)}; a DoRA magnitude vector is 1-D`, { subject: f.m.key });
    lora.set(module, [...(lora.get(module) ?? []), { a: f.a.values, b: f.b.values, rank, scale, module: pathAsPeftNamesIt, ...(f.m ? { magnitude: f.m.values } : {}) }]);
    const loraBias = loraBiases.get(module);
    if (loraBias && config.loraBias) params.set(`${module}.bias`, withLoraBias(label, module, params.get(`${module}.bias`), loraBias, scale));
  }
  if (loraBiases.size > 0 && !config.loraBias) notes.push(`${loraBiases.size} lora_B.bias tensor(s) ignored, as PEFT ignores them: adapter_config.json says lora_bias: false`);

  // A tied lm_head's token adapter is wte's; with a resized vocabulary PEFT saves its rows too (the
  // same values), under lm_head, with no indices of its own in the config.
  const tiedCopy = (modulePath: string) => input.baseTied && Array.isArray(config.trainableTokenIndices) && `${canonicalName(modulePath)}.weight` === TIED_OUTPUT_WEIGHT && trainableTokenIndicesFor(config, modulePath, false) === undefined;
  for (const { modulePath, t } of rows) {
    const name = `${canonicalName(modulePath)}.weight`;
    const isInput = name === TIED_INPUT_WEIGHT;
    const indices = trainableTokenIndicesFor(config, modulePath, isInput) ?? (tiedCopy(modulePath) ? (config.trainableTokenIndices as readonly number[]) : undefined);
    if (!indices) {
      throw new InputError('ADAPTER_TOKEN_INDICES_MISSING', `${label}: trainable-token rows ${t.key} have no indices in adapter_config.json's trainable_token_indices`, { subject: 'trainable_token_indices', hint: 'Use the config saved with these weights.' });
    }
    // PEFT ties lm_head's token adapter to wte's only when lm_head has none of its own.
    const headHasOwn = rows.some((r) => `${canonicalName(r.modulePath)}.weight` === TIED_OUTPUT_WEIGHT && !tiedCopy(r.modulePath));
    const targets = isInput && input.baseTied && !headHasOwn ? [name, TIED_OUTPUT_WEIGHT] : [name];
    for (const target of targets) {
      const p = params.get(target);
      const dim = p?.shape[1];
      if (!p || p.shape.length !== 2 || t.shape[0] !== indices.length || t.shape[1] !== dim) {
        throw new InputError('FORWARD_WEIGHT_SHAPE', `${label}: trainable-token rows ${t.key} (${shapeText(t.shape)}) do not fit ${target}${p ? ` (${shapeText(p.shape)})` : ''} with ${indices.length} indices`, { subject: t.key });
      }
      const values = p.values.slice();
      indices.forEach((row, i) => {
        if (row < 0 || row >= p.shape[0]!) throw new InputError('ADAPTER_TOKEN_INDICES_INVALID', `${label}: trainable_token_indices include ${row}, outside the ${p.shape[0]} rows of ${target}`, { subject: 'trainable_token_indices' });
        values.set(t.values.subarray(i * dim!, (i + 1) * dim!), row * dim!);
      });
      params.set(target, { shape: p.shape, values });
    }
  }
  return { params, lora, architecture, notes };
}

/** A module's bias plus `scale·lora_B.bias`; a module without a bias cannot take one (PEFT refuses too). */
function withLoraBias(label: string, module: string, bias: ParamValues | undefined, loraBias: AdapterTensorValues, scale: number): ParamValues {
  if (!bias) {
    throw new InputError('LORA_BIAS_WITHOUT_BASE_BIAS', `${label}: ${loraBias.key} is a trained lora_B bias, but ${module} has no bias`, {
      subject: module,
      hint: 'lora_bias only works on layers with a bias (GPT-2\'s Conv1D layers, not lm_head).',
    });
  }
  if (loraBias.values.length !== bias.values.length) {
    throw new InputError('FORWARD_WEIGHT_SHAPE', `${label}: ${loraBias.key} (${shapeText(loraBias.shape)}) does not fit ${module}.bias (${shapeText(bias.shape)})`, { subject: loraBias.key });
  }
  const values = bias.values.slice();
  for (let i = 0; i < values.length; i++) values[i] = values[i]! + scale * loraBias.values[i]!;
  return { shape: bias.shape, values };
}

/** `W + scale·B·A` for a wrapped parameter `W` `[rows, cols]`, A `[r, cols]`, B `[rows, r]`, summed in f64. */
function withParameterDelta(label: string, name: string, w: ParamValues | undefined, a: AdapterTensorValues, b: AdapterTensorValues, scale: number): ParamValues {
  const [rows, cols] = w?.shape ?? [];
  const r = a.shape[0]!;
  if (!w || w.shape.length !== 2 || b.shape[0] !== rows || a.shape[1] !== cols) {
    throw new InputError('FORWARD_WEIGHT_SHAPE', `${label}: ${a.key} (${shapeText(a.shape)}) and ${b.key} (${shapeText(b.shape)}) do not fit ${name}${w ? ` (${shapeText(w.shape)})` : ''} as a target_parameters delta`, { subject: a.key });
  }
  const values = w.values.slice();
  for (let i = 0; i < rows!; i++) {
    for (let j = 0; j < cols!; j++) {
      let sum = 0;
      for (let k = 0; k < r; k++) sum += b.values[i * r + k]! * a.values[k * cols! + j]!;
      values[i * cols! + j] = values[i * cols! + j]! + scale * sum;
    }
  }
  return { shape: w.shape, values };
}
