/**
 * Opening one side of `lorafuse diff`: a checkpoint directory (single file or sharded index), an
 * adapter directory, or a bare `.safetensors` file. Only headers (and config.json) are read.
 * Pickle `.bin` weights and Git LFS pointer files are recognised and refused.
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { InputError, looksLikeAdapterKeys, parseShardIndex, SHARD_INDEX_FILE, type KeyNaming, type SafetensorsHeader } from '@lorafuse/core';
import { fromFsError } from '../fs/fs-error.js';
import { readInputText, refuseIrregularEntries, statInputFile } from '../fs/input-file.js';
import { assertNotLfsPointer, listRegularFiles, type OpenFiles } from '../fs/inputs.js';
import { readInputHeader } from '../fs/read-header.js';


/** One side of a diff, headers read. */
export interface DiffInput {
  /** Absolute path as given. */
  readonly path: string;
  readonly kind: 'checkpoint' | 'adapter' | 'safetensors';
  /** How its keys are matched (see `canonicalTensorKey`). */
  readonly naming: KeyNaming;
  /** Headers of its weight files (one, or every shard). */
  readonly headers: readonly SafetensorsHeader[];
  /** Weight file names relative to the directory (or the file's own name). */
  readonly weightFiles: readonly string[];
  /** Parsed config.json of a checkpoint directory, if it has one. */
  readonly config: Record<string, unknown> | null;
}

async function statOrNull(path: string) {
  try {
    return await stat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw fromFsError(e, path, 'read', 'input');
  }
}


async function readHeader(path: string, files: OpenFiles): Promise<SafetensorsHeader> {
  const s = await statInputFile(path);
  await assertNotLfsPointer(path, s.size);
  return readInputHeader(files, path);
}

async function readConfig(path: string): Promise<Record<string, unknown>> {
  const text = await readInputText(path);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new InputError('CONFIG_JSON', `${path} is not valid JSON: ${(e as Error).message}`, { subject: path });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InputError('CONFIG_JSON', `${path} must hold a JSON object`, { subject: path });
  return value as Record<string, unknown>;
}

function pickleError(path: string, name: string): InputError {
  return new InputError('PICKLE_WEIGHTS', `${path} holds ${name}, a pickle file; lorafuse reads only safetensors and never runs pickle code`, {
    subject: join(path, name),
    hint: 'Re-save it in Python with `save_pretrained(dir, safe_serialization=True)`.',
  });
}

/** Opens `arg` (side `role` of the diff). Throws InputError (exit 2) for anything it cannot compare. */
export async function openDiffInput(arg: string, role: 'a' | 'b', files: OpenFiles): Promise<DiffInput> {
  const path = resolve(arg);
  const s = await statOrNull(path);
  if (!s) throw new InputError('DIFF_INPUT_MISSING', `${role}: ${path} does not exist`, { subject: path });
  if (!s.isDirectory()) await statInputFile(path); // a FIFO, device or socket is refused by name
  if (s.isFile()) {
    if (path.endsWith('.bin') || path.endsWith('.pt') || path.endsWith('.pth')) throw pickleError(resolve(path, '..'), basename(path));
    if (!path.endsWith('.safetensors')) {
      throw new InputError('DIFF_INPUT_UNSUPPORTED', `${role}: ${path} is not a .safetensors file`, {
        subject: path,
        hint: 'Give a .safetensors file, a checkpoint directory (config.json + model.safetensors or its index) or a PEFT adapter directory.',
      });
    }
    const header = await readHeader(path, files);
    return { path, kind: 'safetensors', naming: looksLikeAdapterKeys(header.byName.keys()) ? 'adapter' : 'checkpoint', headers: [header], weightFiles: [basename(path)], config: null };
  }
  const entries = await readdir(path, { withFileTypes: true });
  await refuseIrregularEntries(path, entries, ['adapter_model.safetensors', 'config.json', 'model.safetensors', SHARD_INDEX_FILE]);
  const names = await listRegularFiles(path);
  if (names.includes('adapter_model.safetensors')) {
    const header = await readHeader(join(path, 'adapter_model.safetensors'), files);
    return { path, kind: 'adapter', naming: 'adapter', headers: [header], weightFiles: ['adapter_model.safetensors'], config: null };
  }
  if (names.includes('adapter_model.bin')) throw pickleError(path, 'adapter_model.bin');
  const config = names.includes('config.json') ? await readConfig(join(path, 'config.json')) : null;
  if (names.includes('model.safetensors')) {
    return { path, kind: 'checkpoint', naming: 'checkpoint', headers: [await readHeader(join(path, 'model.safetensors'), files)], weightFiles: ['model.safetensors'], config };
  }
  if (names.includes(SHARD_INDEX_FILE)) {
    const indexPath = join(path, SHARD_INDEX_FILE);
    const index = parseShardIndex(await readInputText(indexPath), indexPath);
    await refuseIrregularEntries(path, entries, index.shardFiles);
    const headers: SafetensorsHeader[] = [];
    for (const shard of index.shardFiles) {
      if (!names.includes(shard)) {
        throw new InputError('SHARD_MISSING', `${indexPath} lists ${shard}, which is not in ${path}`, { subject: shard, hint: 'Download every shard listed in the index.' });
      }
      headers.push(await readHeader(join(path, shard), files));
    }
    return { path, kind: 'checkpoint', naming: 'checkpoint', headers, weightFiles: index.shardFiles, config };
  }
  const pickle = names.find((n) => n === 'pytorch_model.bin' || /^pytorch_model-\d+-of-\d+\.bin$/.test(n));
  if (pickle) throw pickleError(path, pickle);
  throw new InputError('DIFF_INPUT_EMPTY', `${role}: ${path} has no model.safetensors, ${SHARD_INDEX_FILE} or adapter_model.safetensors`, {
    subject: path,
    hint: 'Give a checkpoint directory as save_pretrained writes it, a PEFT adapter directory, or a .safetensors file.',
  });
}
