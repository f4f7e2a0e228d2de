/**
 * The GPT-2 config fields that change what a forward pass computes, with GPT2Config's defaults, and
 * a refusal by name of every value the forward pass does not implement: a wrong number is worse than
 * no number.
 */
import { isActivation, type Activation, ACTIVATIONS } from '@lorafuse/kernels/reference';
import { InputError } from '../errors.js';
import { architectureOf } from '../gpt2/architecture.js';

/** Which head turns hidden states into logits. */
export type HeadKind = 'lm_head' | 'score' | 'classifier';

/** What the forward pass needs to know from config.json. */
export interface ForwardConfig {
  readonly architecture: string;
  readonly head: HeadKind;
  readonly nLayer: number;
  readonly nEmbd: number;
  readonly nHead: number;
  readonly headDim: number;
  readonly nInner: number;
  readonly nPositions: number;
  readonly vocabSize: number;
  readonly eps: number;
  readonly activation: Activation;
  readonly scaleAttnWeights: boolean;
  readonly scaleAttnByInverseLayerIdx: boolean;
  /** Upcasts q·kᵀ to f32: the forward pass computes in f32 throughout, so this changes nothing here. */
  readonly reorderAndUpcastAttn: boolean;
  readonly padTokenId: number | null;
  readonly eosTokenId: number | null;
}

const HEAD_OF: Readonly<Record<string, HeadKind>> = {
  GPT2LMHeadModel: 'lm_head',
  GPT2DoubleHeadsModel: 'lm_head',
  GPT2ForSequenceClassification: 'score',
  GPT2ForTokenClassification: 'classifier',
};

function refuse(label: string, field: string, message: string, hint: string): InputError {
  return new InputError('FORWARD_CONFIG_UNSUPPORTED', `${label}: ${field} ${message}`, { subject: field, hint });
}

function intField(label: string, config: Record<string, unknown>, field: string, fallback: number): number {
  const v = config[field] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw refuse(label, field, `is ${JSON.stringify(v)}, not a positive integer`, `Fix "${field}" in config.json.`);
  return v;
}

function boolField(label: string, config: Record<string, unknown>, field: string, fallback: boolean): boolean {
  const v = config[field] ?? fallback;
  if (typeof v !== 'boolean') throw refuse(label, field, `is ${JSON.stringify(v)}, not true or false`, `Fix "${field}" in config.json.`);
  return v;
}

function optionalId(config: Record<string, unknown>, field: string): number | null {
  const v = config[field];
  if (Array.isArray(v)) return typeof v[0] === 'number' ? v[0] : null;
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : null;
}

/**
 * Reads the fields of `config` that decide the function. `label` names the file in errors.
 * `architecture` overrides the config's model class (an adapter that adds a classification head).
 */
export function forwardConfigOf(config: Record<string, unknown>, label: string, architecture = architectureOf(config)): ForwardConfig {
  const head = HEAD_OF[architecture];
  if (!head) {
    throw refuse(label, 'architectures', `is ${JSON.stringify(architecture)}, whose head lorafuse's forward pass does not implement`, `lorafuse computes logits for ${Object.keys(HEAD_OF).join(', ')} (and GPT2Model's hidden states through the tied lm_head); compare weights with \`lorafuse verify\` instead.`);
  }
  if (config['add_cross_attention'] === true) {
    throw refuse(label, 'add_cross_attention', 'is true: cross-attention needs encoder states, which a text prompt does not give', 'Only decoder-only GPT-2 checkpoints can be run.');
  }
  const nEmbd = intField(label, config, 'n_embd', 768);
  const nHead = intField(label, config, 'n_head', 12);
  if (nEmbd % nHead !== 0) throw refuse(label, 'n_head', `(${nHead}) does not divide n_embd (${nEmbd})`, 'GPT-2 splits n_embd evenly over its heads; fix config.json.');
  const innerRaw = config['n_inner'];
  const nInner = innerRaw === undefined || innerRaw === null ? 4 * nEmbd : intField(label, config, 'n_inner', 4 * nEmbd);
  const activation = config['activation_function'] ?? 'gelu_new';
  if (typeof activation !== 'string' || !isActivation(activation)) {
    throw refuse(label, 'activation_function', `is ${JSON.stringify(activation)}, which lorafuse's forward pass does not implement`, `Implemented: ${ACTIVATIONS.join(', ')}.`);
  }
  const eps = config['layer_norm_epsilon'] ?? 1e-5;
  if (typeof eps !== 'number' || !(eps > 0) || !Number.isFinite(eps)) throw refuse(label, 'layer_norm_epsilon', `is ${JSON.stringify(eps)}, not a positive number`, 'Fix it in config.json.');
  return {
    architecture,
    head,
    nLayer: intField(label, config, 'n_layer', 12),
    nEmbd,
    nHead,
    headDim: nEmbd / nHead,
    nInner,
    nPositions: intField(label, config, 'n_positions', 1024),
    vocabSize: intField(label, config, 'vocab_size', 50257),
    eps,
    activation,
    scaleAttnWeights: boolField(label, config, 'scale_attn_weights', true),
    scaleAttnByInverseLayerIdx: boolField(label, config, 'scale_attn_by_inverse_layer_idx', false),
    reorderAndUpcastAttn: boolField(label, config, 'reorder_and_upcast_attn', false),
    padTokenId: optionalId(config, 'pad_token_id'),
    eosTokenId: optionalId(config, 'eos_token_id'),
  };
}

/** The factor q·kᵀ is multiplied by in layer `layer` (0-based). */
export function attentionScale(config: ForwardConfig, layer: number): number {
  let s = config.scaleAttnWeights ? config.headDim ** -0.5 : 1;
  if (config.scaleAttnByInverseLayerIdx) s /= layer + 1;
  return s;
}
