/**
 * The refusals of a base or adapter directory that lacks its config or weights file, worded once for
 * every way of opening one (the CLI's directories on disk, the app's picked files), and which file
 * holds an adapter's weights.
 */
import { TORCH_INDEX_FILE, TORCH_WEIGHTS_FILE } from './checkpoint-weights.js';
import { InputError } from './errors.js';
import { SHARD_INDEX_FILE } from './safetensors/shard-index.js';

/** PEFT's adapter weight files: safetensors, and the torch.save file of `safe_serialization=False`. */
export const ADAPTER_SAFETENSORS = 'adapter_model.safetensors';
export const ADAPTER_TORCH = 'adapter_model.bin';

/** The adapter's weights file among `names`: safetensors when both are there, as PEFT's loader takes it. */
export function adapterWeightsFile(names: ReadonlySet<string>): string | undefined {
  return [ADAPTER_SAFETENSORS, ADAPTER_TORCH].find((n) => names.has(n));
}

/** `dir` (as the user named it) has no config.json at `path`. */
export function baseConfigMissing(dir: string, path: string): InputError {
  return new InputError('BASE_CONFIG_MISSING', `${dir} has no config.json`, {
    subject: path,
    hint: 'The base directory must be what GPT2LMHeadModel.save_pretrained writes: config.json and model.safetensors.',
  });
}

/** `dir` has no adapter_config.json at `path`; `hint` replaces the usual one (the CLI names sub-directories that hold one). */
export function adapterConfigMissing(dir: string, path: string, hint = 'The adapter directory must be what PeftModel.save_pretrained writes: adapter_config.json and adapter_model.safetensors.'): InputError {
  return new InputError('ADAPTER_CONFIG_MISSING', `${dir} has no adapter_config.json`, { subject: path, hint });
}

/** `dir` holds no weights file of a transformers checkpoint. */
export function baseWeightsMissing(dir: string): InputError {
  return new InputError('BASE_WEIGHTS_MISSING', `${dir} has no model.safetensors, ${SHARD_INDEX_FILE}, ${TORCH_WEIGHTS_FILE} or ${TORCH_INDEX_FILE}`, {
    subject: dir,
    hint: 'The base directory must hold config.json and the weights as transformers writes them (model.safetensors, or pytorch_model.bin for older checkpoints).',
  });
}

/** `dir` has no adapter weights file (`path`: where adapter_model.safetensors would be). */
export function adapterWeightsMissing(dir: string, path: string): InputError {
  return new InputError('ADAPTER_WEIGHTS_MISSING', `${dir} has no ${ADAPTER_SAFETENSORS} (nor ${ADAPTER_TORCH})`, {
    subject: path,
    hint: `The adapter directory must hold ${ADAPTER_SAFETENSORS} (or the older ${ADAPTER_TORCH}) as written by PEFT.`,
  });
}
