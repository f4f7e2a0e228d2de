/**
 * Opening the two input directories: configs parsed, safetensors headers validated, nothing else read.
 * Recognises (and refuses) pickle `.bin` weights and Git LFS pointer files, which never get executed.
 */
import { readdir, readlink, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  InputError,
  parseAdapterConfig,
  parseShardIndex,
  type LoraAdapterConfig,
  type SafetensorsHeader,
} from '@lorafuse/core';
import { fromFsError } from './fs-error.js';
import { readInputHead, readInputText, refuseIrregularEntries, statInputFile } from './input-file.js';
import type { OpenFiles } from './open-files.js';
import { readInputHeader } from './read-header.js';

const LFS_POINTER_START = 'version https://git-lfs.github.com/spec/v1';

export { OpenFiles } from './open-files.js';

/** A base checkpoint directory. */
export interface BaseDir {
  readonly dir: string;
  readonly config: Record<string, unknown>;
  readonly headers: readonly SafetensorsHeader[];
  /** File names (relative to `dir`) that hold weights or their index: not copied to the output. */
  readonly weightFiles: readonly string[];
  /** Every other regular file of the directory, links followed (tokenizer, generation_config.json, ...). */
  readonly otherFiles: readonly string[];
}

/** An adapter directory. */
export interface AdapterDir {
  readonly dir: string;
  readonly config: LoraAdapterConfig;
  readonly header: SafetensorsHeader;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** Whether something is at `path`; an error other than "not there" is reported, not taken as absence. */
async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw fromFsError(e, path, 'read', 'input');
  }
}

/**
 * The names of the regular files in `dir`, symbolic links followed: every file of a Hugging Face
 * cache snapshot is a link into its blobs/ folder, and a directory listing reports links, not files.
 * A link to nothing is refused, since its file would otherwise be silently missing.
 */
export async function listRegularFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isFile()) {
      names.push(e.name);
    } else if (e.isSymbolicLink()) {
      const path = join(dir, e.name);
      const target = await stat(path).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT' && err.code !== 'ELOOP') throw err;
        return undefined;
      });
      if (!target) {
        throw new InputError('BROKEN_LINK', `${path} is a symbolic link to ${await readlink(path).catch(() => 'nothing')}, which does not exist`, {
          subject: path,
          hint: 'Download the file again (an interrupted Hugging Face download leaves such links), or remove the link.',
        });
      }
      if (target.isFile()) names.push(e.name);
    }
  }
  return names;
}

/** Refuses a Git LFS pointer posing as a weights file, with what to do. */
export async function assertNotLfsPointer(path: string, knownSize?: number): Promise<void> {
  const size = knownSize ?? (await statInputFile(path)).size;
  if (size > 1024) return;
  const head = (await readInputHead(path, LFS_POINTER_START.length)).toString('latin1');
  if (head === LFS_POINTER_START) {
    throw new InputError('LFS_POINTER', `${path} is a Git LFS pointer file, not the weights it points to`, {
      subject: path,
      hint: 'Fetch the real file with `git lfs pull` (or download it from the model page) and try again.',
    });
  }
}

async function readJsonObject(path: string, what: string): Promise<{ text: string; value: Record<string, unknown> }> {
  const text = await readInputText(path);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new InputError('CONFIG_JSON', `${path} is not valid JSON: ${(e as Error).message}`, { subject: path, hint: `${what} must be the JSON file transformers/PEFT writes.` });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InputError('CONFIG_JSON', `${path} must hold a JSON object`, { subject: path });
  }
  return { text, value: value as Record<string, unknown> };
}

/** Opens a base checkpoint directory: config.json and model.safetensors (or a sharded index). */
export async function openBaseDir(dirArg: string, files: OpenFiles): Promise<BaseDir> {
  const dir = resolve(dirArg);
  if (!(await isDirectory(dir))) {
    throw new InputError('BASE_DIR_MISSING', `base directory ${dir} does not exist or is not a directory`, { subject: dir });
  }
  const configPath = join(dir, 'config.json');
  if (!(await exists(configPath))) {
    throw new InputError('BASE_CONFIG_MISSING', `${dir} has no config.json`, {
      subject: configPath,
      hint: 'The base directory must be what GPT2LMHeadModel.save_pretrained writes: config.json and model.safetensors.',
    });
  }
  const { value: config } = await readJsonObject(configPath, 'config.json');
  checkBaseConfigFields(config, configPath);
  if (config['model_type'] !== undefined && config['model_type'] !== 'gpt2') {
    throw new InputError('BASE_NOT_GPT2', `${configPath}: model_type is ${JSON.stringify(config['model_type'])}; lorafuse merges into GPT-2 checkpoints`, { subject: 'model_type' });
  }

  const entries = await readdir(dir, { withFileTypes: true });
  await refuseIrregularEntries(dir, entries, ['model.safetensors', 'model.safetensors.index.json']);
  const names = await listRegularFiles(dir);
  const weightFiles: string[] = [];
  const headers: SafetensorsHeader[] = [];
  const indexName = 'model.safetensors.index.json';
  if (names.includes('model.safetensors')) {
    weightFiles.push('model.safetensors');
  } else if (names.includes(indexName)) {
    const indexPath = join(dir, indexName);
    const index = parseShardIndex(await readInputText(indexPath), indexPath);
    await refuseIrregularEntries(dir, entries, index.shardFiles);
    weightFiles.push(indexName);
    for (const shard of index.shardFiles) {
      if (!names.includes(shard)) {
        throw new InputError('SHARD_MISSING', `${indexPath} lists ${shard}, which is not in ${dir}`, { subject: shard, hint: 'Download every shard listed in the index.' });
      }
      weightFiles.push(shard);
    }
  } else {
    const pickle = names.find((n) => n === 'pytorch_model.bin' || /^pytorch_model-\d+-of-\d+\.bin$/.test(n));
    throw new InputError(pickle ? 'PICKLE_WEIGHTS' : 'BASE_WEIGHTS_MISSING', pickle
      ? `${dir} has ${pickle}, a pickle file; lorafuse reads only safetensors and never runs pickle code`
      : `${dir} has no model.safetensors (nor model.safetensors.index.json)`, {
      subject: dir,
      hint: pickle
        ? 'Convert it in Python with `GPT2LMHeadModel.from_pretrained(dir).save_pretrained(out, safe_serialization=True)`.'
        : 'The base directory must hold config.json and model.safetensors as written by transformers.',
    });
  }
  for (const name of weightFiles) {
    if (name === indexName) continue;
    const path = join(dir, name);
    await assertNotLfsPointer(path);
    headers.push(await readInputHeader(files, path));
  }
  const skip = new Set([...weightFiles, 'config.json']);
  const otherFiles = names.filter((n) => !skip.has(n));
  return { dir, config, headers, weightFiles, otherFiles };
}

/** Opens a PEFT adapter directory: adapter_config.json and adapter_model.safetensors. */
export async function openAdapterDir(dirArg: string, files: OpenFiles): Promise<AdapterDir> {
  const dir = resolve(dirArg);
  if (!(await isDirectory(dir))) {
    throw new InputError('ADAPTER_DIR_MISSING', `adapter directory ${dir} does not exist or is not a directory`, { subject: dir });
  }
  const configPath = join(dir, 'adapter_config.json');
  const names = (await readdir(dir, { withFileTypes: true }));
  if (!(await exists(configPath))) {
    const sub = names.filter((e) => e.isDirectory()).map((e) => e.name);
    const named: string[] = [];
    for (const s of sub) if (await exists(join(dir, s, 'adapter_config.json'))) named.push(s);
    throw new InputError('ADAPTER_CONFIG_MISSING', `${dir} has no adapter_config.json`, {
      subject: configPath,
      hint: named.length > 0
        ? `PEFT saves non-default adapters in sub-directories: try ${named.map((n) => join(dirArg, n)).join(' or ')}.`
        : 'The adapter directory must be what PeftModel.save_pretrained writes: adapter_config.json and adapter_model.safetensors.',
    });
  }
  const { text } = await readJsonObject(configPath, 'adapter_config.json');
  const config = parseAdapterConfig(text, configPath);
  const weightsPath = join(dir, 'adapter_model.safetensors');
  if (!(await exists(weightsPath))) {
    const hasBin = await exists(join(dir, 'adapter_model.bin'));
    throw new InputError(hasBin ? 'PICKLE_WEIGHTS' : 'ADAPTER_WEIGHTS_MISSING', hasBin
      ? `${dir} has adapter_model.bin, a pickle file; lorafuse reads only safetensors and never runs pickle code`
      : `${dir} has no adapter_model.safetensors`, {
      subject: weightsPath,
      hint: hasBin
        ? 'Re-save the adapter with `model.save_pretrained(dir, safe_serialization=True)` (the default in PEFT >= 0.6).'
        : 'The adapter directory must hold adapter_model.safetensors as written by PEFT.',
    });
  }
  await assertNotLfsPointer(weightsPath);
  const header = await readInputHeader(files, weightsPath);
  return { dir, config, header };
}

/** The config.json fields lorafuse reads or writes must have the types transformers gives them. */
function checkBaseConfigFields(config: Record<string, unknown>, path: string): void {
  const bad = (field: string, want: string) =>
    new InputError('CONFIG_FIELD', `${path}: field "${field}" must be ${want}, got ${JSON.stringify(config[field])}`, {
      subject: field,
      hint: 'config.json must be the file transformers writes with save_pretrained; fix or regenerate it.',
    });
  for (const field of ['vocab_size', 'n_embd', 'n_layer', 'n_head', 'n_positions']) {
    const v = config[field];
    if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v > 0)) throw bad(field, 'a positive integer');
  }
  if (config['tie_word_embeddings'] !== undefined && typeof config['tie_word_embeddings'] !== 'boolean') throw bad('tie_word_embeddings', 'true or false');
  const arch = config['architectures'];
  if (arch !== undefined && arch !== null && !(Array.isArray(arch) && arch.every((a) => typeof a === 'string'))) throw bad('architectures', 'a list of class names');
}
