/**
 * What transformers' `from_pretrained` will hold after loading a GPT-2 checkpoint directory: key
 * prefixes normalised, the tie applied per config and per version (v4 re-ties
 * unconditionally; v5 keeps a stored lm_head that differs from wte), missing parameters reported as
 * randomly initialised, buffers and unexpected keys ignored. The ground truth for verification.
 */
import { architectureOf, canonicalName, TIED_INPUT_WEIGHT, TIED_OUTPUT_WEIGHT } from '../gpt2/architecture.js';
import type { SafetensorsHeader } from '../safetensors/header.js';
import type { TensorRef } from '../safetensors/tensor-ref.js';

/** Which transformers loading rules to apply. */
export type TransformersVersion = 'v4' | 'v5';

/** One parameter of the loaded model. */
export interface LoadedParam {
  /** The model's state-dict name (GPT2LMHeadModel layout: `transformer.wte.weight`, `lm_head.weight`). */
  readonly name: string;
  /** Where its values come from; `null` when transformers initialises it randomly. */
  readonly ref: TensorRef | null;
  /** How it got its value when not by its own key. */
  readonly via?: 'tied-to-wte' | 'tied-to-lm_head';
}

/** The outcome of an emulated load. */
export interface LoadEmulation {
  readonly version: TransformersVersion;
  readonly architecture: string;
  /** Whether lm_head and wte are one parameter after loading. */
  readonly tied: boolean;
  readonly params: ReadonlyMap<string, LoadedParam>;
  /** Expected parameters with no value in the checkpoint (transformers draws them at random). */
  readonly randomlyInitialised: readonly string[];
  /** Stored tensors whose values the load throws away, and why. */
  readonly discarded: ReadonlyArray<{ readonly name: string; readonly reason: string }>;
  /** Stored keys the model does not use (old attention buffers, heads of other architectures). */
  readonly ignored: readonly string[];
  readonly notes: readonly string[];
}

/** Inputs of `emulateTransformersLoad`. */
export interface EmulateLoadInput {
  readonly config: Record<string, unknown>;
  readonly files: readonly SafetensorsHeader[];
  readonly version: TransformersVersion;
  /** Byte equality of two stored tensors (only asked for a tied config that stores both). */
  readonly equal: (a: TensorRef, b: TensorRef) => Promise<boolean>;
}

const BODY_PARAM = /^transformer\.(?:wte|wpe)\.weight$|^transformer\.ln_f\.(?:weight|bias)$|^transformer\.h\.\d+\.(?:ln_1|ln_2|attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.(?:weight|bias)$|^transformer\.h\.\d+\.(?:crossattention\.(?:c_attn|c_proj|q_attn)|ln_cross_attn)\.(?:weight|bias)$/;
const BUFFER = /^transformer\.h\.\d+\.(?:attn|crossattention)\.(?:bias|masked_bias)$/;

/** The parameters a GPT-2 model class has, given the config (n_layer) and what its head needs. */
export function expectedParams(config: Record<string, unknown>, architecture: string): string[] {
  const nLayer = typeof config['n_layer'] === 'number' ? (config['n_layer'] as number) : 12;
  const names = ['transformer.wte.weight', 'transformer.wpe.weight'];
  for (let i = 0; i < nLayer; i++) {
    for (const leaf of ['ln_1', 'attn.c_attn', 'attn.c_proj', 'ln_2', 'mlp.c_fc', 'mlp.c_proj']) names.push(`transformer.h.${i}.${leaf}.weight`, `transformer.h.${i}.${leaf}.bias`);
    if (config['add_cross_attention'] === true) {
      for (const leaf of ['crossattention.c_attn', 'crossattention.q_attn', 'crossattention.c_proj', 'ln_cross_attn']) names.push(`transformer.h.${i}.${leaf}.weight`, `transformer.h.${i}.${leaf}.bias`);
    }
  }
  names.push('transformer.ln_f.weight', 'transformer.ln_f.bias');
  if (architecture === 'GPT2LMHeadModel' || architecture === 'GPT2DoubleHeadsModel') names.push(TIED_OUTPUT_WEIGHT);
  if (architecture === 'GPT2ForSequenceClassification') names.push('score.weight');
  if (architecture === 'GPT2ForTokenClassification') names.push('classifier.weight', 'classifier.bias');
  return names;
}

/** Stray stored tensors named one by one in the notes. */
const MAX_NAMED_NOTES = 20;

/** Emulates `AutoModel...from_pretrained(dir)` for GPT-2 under the given version's rules. */
export async function emulateTransformersLoad(input: EmulateLoadInput): Promise<LoadEmulation> {
  const architecture = architectureOf(input.config);
  const stored = new Map<string, TensorRef>();
  for (const h of input.files) {
    for (const t of h.tensors) {
      stored.set(canonicalName(t.name), { file: h.label, name: t.name, dtype: t.dtype, shape: t.shape, fileOffset: t.fileOffset, byteLength: t.byteLength });
    }
  }
  const expected = expectedParams(input.config, architecture);
  const expectedSet = new Set(expected);
  const tieConfig = input.config['tie_word_embeddings'] !== false;
  const hasHead = expectedSet.has(TIED_OUTPUT_WEIGHT);
  const params = new Map<string, LoadedParam>();
  const discarded: Array<{ name: string; reason: string }> = [];
  const notes: string[] = [];
  for (const name of expected) params.set(name, { name, ref: stored.get(name) ?? null });

  let tied = false;
  if (hasHead && tieConfig) {
    const wte = stored.get(TIED_INPUT_WEIGHT);
    const head = stored.get(TIED_OUTPUT_WEIGHT);
    if (wte && !head) {
      tied = true;
      params.set(TIED_OUTPUT_WEIGHT, { name: TIED_OUTPUT_WEIGHT, ref: wte, via: 'tied-to-wte' });
    } else if (wte && head) {
      if (await input.equal(wte, head)) {
        tied = true;
        params.set(TIED_OUTPUT_WEIGHT, { name: TIED_OUTPUT_WEIGHT, ref: wte, via: 'tied-to-wte' });
      } else if (input.version === 'v4') {
        // v4 loads both, then tie_weights() points lm_head at wte unconditionally.
        tied = true;
        params.set(TIED_OUTPUT_WEIGHT, { name: TIED_OUTPUT_WEIGHT, ref: wte, via: 'tied-to-wte' });
        discarded.push({ name: head.name, reason: 'config.json ties lm_head to wte, so transformers v4 replaces the stored lm_head.weight (which differs) with wte' });
      } else {
        notes.push('config.json ties lm_head to wte but both are stored with different values: transformers v5 does NOT tie them and warns');
      }
    } else if (!wte && head) {
      if (input.version === 'v5') {
        tied = true;
        params.set(TIED_INPUT_WEIGHT, { name: TIED_INPUT_WEIGHT, ref: head, via: 'tied-to-lm_head' });
        notes.push('only lm_head.weight is stored: transformers v5 ties wte to it');
      } else {
        notes.push('only lm_head.weight is stored: how transformers v4 ties this case is not verified; wte is reported as randomly initialised');
      }
    }
  }

  const randomlyInitialised = [...params.values()].filter((p) => p.ref === null).map((p) => p.name);
  const ignored = [...stored.keys()].filter((k) => !expectedSet.has(k)).map((k) => stored.get(k)!.name);
  // Named one by one up to a few; a file with thousands of stray tensors gets one line for the rest.
  const stray = ignored.filter((k) => {
    const c = canonicalName(k);
    return !BUFFER.test(c) && !BODY_PARAM.test(c) && c !== TIED_OUTPUT_WEIGHT;
  });
  for (const k of stray.slice(0, MAX_NAMED_NOTES)) notes.push(`stored tensor "${k}" is not a parameter of ${architecture} and is ignored`);
  if (stray.length > MAX_NAMED_NOTES) notes.push(`and ${stray.length - MAX_NAMED_NOTES} more stored tensors that are not parameters of ${architecture} are ignored`);
  return { version: input.version, architecture, tied, params, randomlyInitialised, discarded, ignored, notes };
}
