/**
 * The two models the behavioural commands run, read from disk: (a) a checkpoint directory as
 * transformers loads it (the load emulation's rules, ties applied, discarded tensors discarded), and
 * (b) a base directory plus PEFT adapters (one or several, weighted) applied unmerged. Both decode every weight to f32.
 */
import {
  applyAdapterUnmerged,
  architectureOf,
  buildGpt2Model,
  decodeToF32,
  emulateTransformersLoad,
  forwardConfigOf,
  InputError,
  type FloatCodecDtype,
  type Gpt2Model,
  type LoraTerm,
  type ParamTable,
  type ParamValues,
  tensorRefOf,
  type SafetensorsHeader,
  type TensorRef,
  type TransformersVersion,
} from '@lorafuse/core';
import { byteRangesEqual } from '../fs/byte-ranges.js';
import { openAdapterDir, openBaseDir, type AdapterDir, type BaseDir, type OpenFiles } from '../fs/inputs.js';

/** A model ready to run, with what the report needs to say about it. */
export interface LoadedModel {
  readonly model: Gpt2Model;
  /** The widest-rounding float dtype among its weights: it decides the behavioural tolerance. */
  readonly dtype: FloatCodecDtype;
  readonly parameterCount: number;
  /** The directory whose tokenizer files belong to it, most specific first. */
  readonly tokenizerDirs: readonly string[];
  /** Rows of wte the base config had (below the rows a resized vocabulary added). */
  readonly baseVocabSize: number;
  readonly notes: readonly string[];
}

const ROUNDING: Record<FloatCodecDtype, number> = { F32: 0, F16: 1, BF16: 2 };

/** The dtype whose rounding is coarser (BF16 over F16 over F32): it decides the behavioural tolerance. */
export function coarsest(a: FloatCodecDtype, b: FloatCodecDtype): FloatCodecDtype {
  return ROUNDING[b] > ROUNDING[a] ? b : a;
}

async function readF32(files: OpenFiles, ref: TensorRef, label: string): Promise<{ values: Float32Array; dtype: FloatCodecDtype }> {
  if (ref.dtype !== 'F32' && ref.dtype !== 'F16' && ref.dtype !== 'BF16') {
    throw new InputError('FORWARD_DTYPE', `${label}: tensor ${ref.name} in ${ref.file} is ${ref.dtype}; the forward pass reads F32, F16 and BF16 weights`, {
      subject: ref.name,
      hint: 'Convert the checkpoint to a float dtype transformers uses for GPT-2.',
    });
  }
  const bytes = await files.get(ref.file).read(ref.fileOffset, ref.byteLength);
  return { values: decodeToF32(ref.dtype, bytes), dtype: ref.dtype };
}

interface LoadedParams {
  readonly params: Map<string, ParamValues>;
  readonly tied: boolean;
  readonly dtype: FloatCodecDtype;
  readonly notes: string[];
  /** The config the model is run with (GPT2Model read as GPT2LMHeadModel). */
  readonly config: Record<string, unknown>;
}

/** Every parameter transformers' model holds after `from_pretrained(dir)`, decoded. */
async function loadParams(dir: BaseDir, files: OpenFiles, version: TransformersVersion): Promise<LoadedParams> {
  const notes: string[] = [];
  let config = dir.config;
  if (architectureOf(config) === 'GPT2Model') {
    // A body without a head is run the way AutoModelForCausalLM loads it: lm_head tied to wte.
    config = { ...config, architectures: ['GPT2LMHeadModel'] };
    notes.push('config.json says GPT2Model (no head): run as GPT2LMHeadModel, lm_head tied to wte as AutoModelForCausalLM loads it');
  }
  const equal = async (a: TensorRef, b: TensorRef) =>
    a.dtype === b.dtype && a.byteLength === b.byteLength && (await byteRangesEqual(files.get(a.file), a.fileOffset, files.get(b.file), b.fileOffset, a.byteLength));
  const load = await emulateTransformersLoad({ config, files: dir.headers as SafetensorsHeader[], version, equal });
  const params = new Map<string, ParamValues>();
  let dtype: FloatCodecDtype = 'F32';
  const cache = new Map<string, Float32Array>();
  for (const p of load.params.values()) {
    if (!p.ref) continue;
    const key = `${p.ref.file}@${p.ref.fileOffset}`;
    let values = cache.get(key);
    if (!values) {
      const read = await readF32(files, p.ref, dir.dir);
      values = read.values;
      dtype = coarsest(dtype, read.dtype);
      cache.set(key, values);
    }
    params.set(p.name, { shape: p.ref.shape, values });
  }
  notes.push(...load.discarded.map((d) => `discarded on load: ${d.name}: ${d.reason}`));
  return { params, tied: load.tied, dtype, notes, config };
}

function parameterCount(model: Gpt2Model): number {
  let n = model.wte.table.length + model.wpe.length + model.lnF.weight.length * 2 + model.head.weight.length;
  for (const b of model.blocks) for (const u of [b.attn, b.attnProj, b.fc, b.proj]) n += u.weight.length + (u.bias?.length ?? 0);
  return n;
}

function configVocab(config: Record<string, unknown>, fallback: number): number {
  const v = config['vocab_size'];
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : fallback;
}

/** (a) A checkpoint directory as transformers `version` loads it. */
export async function loadCheckpointModel(dirArg: string, files: OpenFiles, version: TransformersVersion): Promise<LoadedModel> {
  const dir = await openBaseDir(dirArg, files);
  const loaded = await loadParams(dir, files, version);
  const model = buildGpt2Model({ config: forwardConfigOf(loaded.config, `${dir.dir}/config.json`), params: loaded.params, label: dir.dir });
  return {
    model,
    dtype: loaded.dtype,
    parameterCount: parameterCount(model),
    tokenizerDirs: [dir.dir],
    baseVocabSize: model.config.vocabSize,
    notes: loaded.notes,
  };
}

/**
 * (b) Base + adapters as PEFT's unmerged model runs them with all of them active (the base loaded by
 * `version`'s rules): each adapter is applied in turn onto what the ones before it left, its LoRA
 * terms (times its weight, `weights[i]`, default 1) joining those already on a module.
 */
export async function loadUnmergedModel(baseArg: string, adapterArgs: string | readonly string[], files: OpenFiles, version: TransformersVersion, weights?: readonly number[]): Promise<LoadedModel> {
  const base = await openBaseDir(baseArg, files);
  const adapterDirs: AdapterDir[] = [];
  for (const arg of typeof adapterArgs === 'string' ? [adapterArgs] : adapterArgs) adapterDirs.push(await openAdapterDir(arg, files));
  const loaded = await loadParams(base, files, version);
  let dtype = loaded.dtype;
  let params: ParamTable = loaded.params;
  let architecture = architectureOf(loaded.config);
  const lora = new Map<string, LoraTerm[]>();
  const notes = [...loaded.notes];
  for (const [i, adapter] of adapterDirs.entries()) {
    const tensors = [];
    for (const t of adapter.header.tensors) {
      const read = await readF32(files, tensorRefOf(adapter.header, t), adapter.dir);
      dtype = coarsest(dtype, read.dtype);
      tensors.push({ key: t.name, shape: t.shape, values: read.values });
    }
    const parts = applyAdapterUnmerged({
      base: params,
      baseTied: loaded.tied,
      baseArchitecture: architecture,
      config: adapter.config,
      tensors,
      label: adapter.dir,
      ...(weights ? { weight: weights[i]! } : {}),
    });
    params = parts.params;
    architecture = parts.architecture;
    for (const [module, terms] of parts.lora) lora.set(module, [...(lora.get(module) ?? []), ...terms]);
    notes.push(...(adapterDirs.length > 1 ? parts.notes.map((n) => `${adapter.dir}: ${n}`) : parts.notes));
  }
  const label = [base.dir, ...adapterDirs.map((a) => a.dir)].join(' + ');
  const model = buildGpt2Model({ config: forwardConfigOf(loaded.config, `${base.dir}/config.json`, architecture), params, lora, label });
  return {
    model,
    dtype,
    parameterCount: parameterCount(model),
    tokenizerDirs: [...adapterDirs.map((a) => a.dir), base.dir],
    baseVocabSize: configVocab(base.config, model.config.vocabSize),
    notes,
  };
}
