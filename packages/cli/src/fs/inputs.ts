/**
 * Opening the input directories (a base, adapters): configs parsed, weight files' tensor tables read (safetensors
 * headers, or the state dicts of PyTorch `.bin` files, whose pickles are interpreted under an
 * allow-list and never run), nothing else read. Git LFS pointer files are recognised and refused.
 */
import type { Dirent } from 'node:fs';
import { readdir, readlink, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  ADAPTER_SAFETENSORS,
  ADAPTER_TORCH,
  adapterConfigMissing,
  adapterWeightsFile,
  adapterWeightsMissing,
  baseConfigMissing,
  baseWeightsMissing,
  checkBaseConfig,
  findCheckpointWeightFiles,
  InputError,
  parseAdapterConfig,
  parseJsonObject,
  SHARD_INDEX_FILE,
  TORCH_INDEX_FILE,
  TORCH_WEIGHTS_FILE,
  type LoraAdapterConfig,
  type PlanMergeInput,
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
  /** Every other regular file of the directory, links followed (tokenizer, generation_config.json, other weights, ...). */
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
  return { text, value: parseJsonObject(text, path, what) };
}

/** The weight files of a checkpoint directory: what to leave out of copies, and the files holding tensors. */
export interface CheckpointWeights {
  /** Every regular file of the directory, links followed. */
  readonly names: readonly string[];
  /** The files that make up the weights, index included. */
  readonly weightFiles: readonly string[];
  /** The files that hold tensors (the one file, or every shard). */
  readonly dataFiles: readonly string[];
}

/**
 * Finds a checkpoint's weights in the order transformers looks for them: model.safetensors, its
 * shard index, pytorch_model.bin, its shard index. Undefined when there are none. Each candidate
 * that is not a regular file (a directory, a FIFO) is refused by name; so is a shard the index lists
 * but the directory lacks.
 */
export async function findCheckpointWeights(dir: string, entries: readonly Dirent[]): Promise<CheckpointWeights | undefined> {
  await refuseIrregularEntries(dir, entries, ['model.safetensors', SHARD_INDEX_FILE, TORCH_WEIGHTS_FILE, TORCH_INDEX_FILE]);
  const names = await listRegularFiles(dir);
  const found = await findCheckpointWeightFiles(new Set(names), {
    readIndex: async (name) => {
      const path = join(dir, name);
      return { text: await readInputText(path), label: path };
    },
    checkShards: async (indexPath, shards) => {
      await refuseIrregularEntries(dir, entries, shards);
      for (const shard of shards) {
        if (!names.includes(shard)) {
          throw new InputError('SHARD_MISSING', `${indexPath} lists ${shard}, which is not in ${dir}`, { subject: shard, hint: 'Download every shard listed in the index.' });
        }
      }
    },
  });
  return found && { names, ...found };
}

/** Opens a base checkpoint directory: config.json and its weights (see {@link findCheckpointWeights}). */
export async function openBaseDir(dirArg: string, files: OpenFiles): Promise<BaseDir> {
  const dir = resolve(dirArg);
  if (!(await isDirectory(dir))) {
    throw new InputError('BASE_DIR_MISSING', `base directory ${dir} does not exist or is not a directory`, { subject: dir });
  }
  const configPath = join(dir, 'config.json');
  if (!(await exists(configPath))) {
    throw baseConfigMissing(dir, configPath);
  }
  const { value: config } = await readJsonObject(configPath, 'config.json');
  checkBaseConfig(config, configPath);

  const entries = await readdir(dir, { withFileTypes: true });
  const found = await findCheckpointWeights(dir, entries);
  if (!found) throw baseWeightsMissing(dir);
  const { names, weightFiles, dataFiles } = found;
  const headers: SafetensorsHeader[] = [];
  for (const name of dataFiles) {
    const path = join(dir, name);
    await assertNotLfsPointer(path);
    headers.push(await readInputHeader(files, path));
  }
  // The index's shards may have any names; every other checkpoint file (the other format's weights
  // too) is left out by core's baseFilesCarried when the output's files are chosen.
  const skip = new Set([...weightFiles, 'config.json']);
  const otherFiles = names.filter((n) => !skip.has(n));
  return { dir, config, headers, weightFiles, otherFiles };
}

/** Opens a PEFT adapter directory: adapter_config.json and adapter_model.safetensors (or adapter_model.bin). */
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
    throw adapterConfigMissing(dir, configPath, named.length > 0 ? `PEFT saves non-default adapters in sub-directories: try ${named.map((n) => join(dirArg, n)).join(' or ')}.` : undefined);
  }
  const { text } = await readJsonObject(configPath, 'adapter_config.json');
  const config = parseAdapterConfig(text, configPath);
  const present = new Set<string>();
  for (const n of [ADAPTER_SAFETENSORS, ADAPTER_TORCH]) if (await exists(join(dir, n))) present.add(n);
  const weightsName = adapterWeightsFile(present);
  if (weightsName === undefined) throw adapterWeightsMissing(dir, join(dir, ADAPTER_SAFETENSORS));
  const weightsPath = join(dir, weightsName);
  await assertNotLfsPointer(weightsPath);
  const header = await readInputHeader(files, weightsPath);
  return { dir, config, header };
}

/** The planner's view of opened directories (labels are their paths); `weights[i]` is adapter i's weight. */
export function planInputOf(base: BaseDir, adapters: readonly AdapterDir[], weights?: readonly number[]): Omit<PlanMergeInput, 'options'> {
  return {
    base: { label: base.dir, config: base.config, files: base.headers },
    adapters: adapters.map((a, i) => ({ label: a.dir, config: a.config, file: a.header, ...(weights ? { weight: weights[i]! } : {}) })),
  };
}
