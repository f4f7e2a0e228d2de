/**
 * Assembles a {@link Gpt2Model} from named f32 parameters (canonical GPT2LMHeadModel names), checking
 * every shape against the config so that a wrong tensor is named instead of producing garbage.
 */
import { InputError } from '../errors.js';
import { shapeText } from '../shape.js';
import type { ForwardConfig } from './forward-config.js';
import type { EmbeddingUnit, Gpt2Block, Gpt2Model, LinearUnit, LoraTerm, NormUnit } from './gpt2-model.js';

/** One parameter's values, decoded to f32. */
export interface ParamValues {
  readonly shape: readonly number[];
  readonly values: Float32Array;
}

/** Parameters by canonical name (`transformer.h.0.attn.c_attn.weight`, `lm_head.weight`). */
export type ParamTable = ReadonlyMap<string, ParamValues>;

/** What {@link buildGpt2Model} needs. */
export interface BuildModelInput {
  readonly config: ForwardConfig;
  readonly params: ParamTable;
  /** LoRA terms by canonical module path (`transformer.h.0.attn.c_attn`, `transformer.wte`, `lm_head`). */
  readonly lora?: ReadonlyMap<string, readonly LoraTerm[]>;
  /** Where the parameters came from, for messages (a directory, "base + adapter"). */
  readonly label: string;
}

/** Builds the model; throws InputError FORWARD_WEIGHT_MISSING / FORWARD_WEIGHT_SHAPE naming the tensor. */
export function buildGpt2Model(input: BuildModelInput): Gpt2Model {
  const { config, params, label } = input;
  const lora = input.lora ?? new Map<string, readonly LoraTerm[]>();
  const get = (name: string, shape: readonly number[]): Float32Array => {
    const p = params.get(name);
    if (!p) {
      throw new InputError('FORWARD_WEIGHT_MISSING', `${label}: the model has no value for ${name} (transformers would initialise it at random)`, {
        subject: name,
        hint: 'A forward pass needs every parameter; check that the checkpoint is complete and is the model class config.json names.',
      });
    }
    const same = p.shape.length === shape.length && p.shape.every((d, i) => d === shape[i]);
    if (!same) {
      throw new InputError('FORWARD_WEIGHT_SHAPE', `${label}: ${name} is ${shapeText(p.shape)} but config.json implies ${shapeText(shape)}`, {
        subject: name,
        hint: 'config.json and the weights disagree; fix config.json or use the checkpoint it belongs to.',
      });
    }
    return p.values;
  };
  const E = config.nEmbd;
  const wteParam = params.get('transformer.wte.weight');
  // The vocabulary is what the embedding holds: a base resized in training has more rows than its config says.
  const vocab = wteParam && wteParam.shape.length === 2 ? wteParam.shape[0]! : config.vocabSize;
  const norm = (prefix: string): NormUnit => ({ weight: get(`${prefix}.weight`, [E]), bias: get(`${prefix}.bias`, [E]) });
  const conv1d = (module: string, inDim: number, outDim: number): LinearUnit => ({
    weight: get(`${module}.weight`, [inDim, outDim]),
    bias: get(`${module}.bias`, [outDim]),
    order: 'in-out',
    inDim,
    outDim,
    lora: checkedLora(label, module, lora.get(module) ?? [], inDim, outDim),
  });
  const blocks: Gpt2Block[] = [];
  for (let l = 0; l < config.nLayer; l++) {
    const p = `transformer.h.${l}`;
    blocks.push({
      ln1: norm(`${p}.ln_1`),
      attn: conv1d(`${p}.attn.c_attn`, E, 3 * E),
      attnProj: conv1d(`${p}.attn.c_proj`, E, E),
      ln2: norm(`${p}.ln_2`),
      fc: conv1d(`${p}.mlp.c_fc`, E, config.nInner),
      proj: conv1d(`${p}.mlp.c_proj`, config.nInner, E),
    });
  }
  const wte: EmbeddingUnit = {
    table: get('transformer.wte.weight', [vocab, E]),
    rows: vocab,
    dim: E,
    lora: checkedLora(label, 'transformer.wte', lora.get('transformer.wte') ?? [], vocab, E),
  };
  return {
    config: { ...config, vocabSize: vocab },
    wte,
    wpe: get('transformer.wpe.weight', [config.nPositions, E]),
    blocks,
    lnF: norm('transformer.ln_f'),
    head: headUnit(config, params, get, lora, label, vocab),
    description: label,
  };
}

function headUnit(config: ForwardConfig, params: ParamTable, get: (n: string, s: readonly number[]) => Float32Array, lora: ReadonlyMap<string, readonly LoraTerm[]>, label: string, vocab: number): LinearUnit {
  const E = config.nEmbd;
  const name = config.head;
  const stored = params.get(`${name}.weight`);
  const outDim = name === 'lm_head' ? vocab : stored && stored.shape.length === 2 ? stored.shape[0]! : 0;
  return {
    weight: get(`${name}.weight`, [outDim, E]),
    bias: name === 'classifier' ? get('classifier.bias', [outDim]) : null,
    order: 'out-in',
    inDim: E,
    outDim,
    lora: checkedLora(label, name, lora.get(name) ?? [], E, outDim),
  };
}

function checkedLora(label: string, module: string, terms: readonly LoraTerm[], inDim: number, outDim: number): readonly LoraTerm[] {
  for (const t of terms) {
    if (t.a.length !== t.rank * inDim || t.b.length !== outDim * t.rank || (t.magnitude !== undefined && t.magnitude.length !== outDim)) {
      throw new InputError('FORWARD_WEIGHT_SHAPE', `${label}: the LoRA factors${t.magnitude ? ' or DoRA magnitude vector' : ''} of ${t.module} do not fit ${module} (${inDim} in, ${outDim} out, rank ${t.rank})`, {
        subject: t.module,
        hint: 'The adapter was trained on a different model size; use the base it was trained on.',
      });
    }
  }
  return terms;
}
