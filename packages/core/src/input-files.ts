/**
 * The refusals of a base or adapter directory that lacks its config file, worded once for every way
 * of opening one (the CLI's directories on disk, the app's picked files).
 */
import { InputError } from './errors.js';

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
