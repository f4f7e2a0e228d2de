/**
 * Opening one side of `lorafuse diff`: a checkpoint directory (single file or sharded index, in
 * safetensors or PyTorch `.bin` form), an adapter directory, or a bare `.safetensors` or `.bin`
 * file. Only tensor tables (and config.json) are read; a `.bin` pickle is interpreted under an
 * allow-list, never run. Git LFS pointer files are recognised and refused.
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { ADAPTER_SAFETENSORS, ADAPTER_TORCH, adapterWeightsFile, InputError, isTorchWeightsFile, looksLikeAdapterKeys, SHARD_INDEX_FILE, TORCH_INDEX_FILE, TORCH_WEIGHTS_FILE, type KeyNaming, type SafetensorsHeader } from '@lorafuse/core';
import { fromFsError } from '../fs/fs-error.js';
import { readInputText, refuseIrregularEntries, statInputFile } from '../fs/input-file.js';
import {
  assertNotLfsPointer,
  findCheckpointWeights,
  listRegularFiles,
  type OpenFiles,
} from '../fs/inputs.js';
import { readInputHeader } from '../fs/read-header.js';


/** One side of a diff, headers read. */
export interface DiffInput {
  /** Absolute path as given. */
  readonly path: string;
  /** A directory, or a bare weights file: `safetensors`, or `torch` for a PyTorch .bin/.pt/.pth. */
  readonly kind: 'checkpoint' | 'adapter' | 'safetensors' | 'torch';
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

/** Opens `arg` (side `role` of the diff). Throws InputError (exit 2) for anything it cannot compare. */
export async function openDiffInput(arg: string, role: 'a' | 'b', files: OpenFiles): Promise<DiffInput> {
  const path = resolve(arg);
  const s = await statOrNull(path);
  if (!s) throw new InputError('DIFF_INPUT_MISSING', `${role}: ${path} does not exist`, { subject: path });
  if (!s.isDirectory()) await statInputFile(path); // a FIFO, device or socket is refused by name
  if (s.isFile()) {
    if (!path.endsWith('.safetensors') && !isTorchWeightsFile(path)) {
      throw new InputError('DIFF_INPUT_UNSUPPORTED', `${role}: ${path} is not a .safetensors or PyTorch (.bin, .pt, .pth) file`, {
        subject: path,
        hint: 'Give a .safetensors or .bin file, a checkpoint directory (config.json + model.safetensors, pytorch_model.bin or an index) or a PEFT adapter directory.',
      });
    }
    const header = await readHeader(path, files);
    return { path, kind: isTorchWeightsFile(path) ? 'torch' : 'safetensors', naming: looksLikeAdapterKeys(header.byName.keys()) ? 'adapter' : 'checkpoint', headers: [header], weightFiles: [basename(path)], config: null };
  }
  const entries = await readdir(path, { withFileTypes: true });
  await refuseIrregularEntries(path, entries, [ADAPTER_SAFETENSORS, ADAPTER_TORCH, 'config.json', 'model.safetensors', SHARD_INDEX_FILE, TORCH_WEIGHTS_FILE, TORCH_INDEX_FILE]);
  const listed = await listRegularFiles(path);
  // PEFT's loader takes the safetensors file when both are there.
  const adapterFile = adapterWeightsFile(new Set(listed));
  if (adapterFile) {
    const header = await readHeader(join(path, adapterFile), files);
    return { path, kind: 'adapter', naming: 'adapter', headers: [header], weightFiles: [adapterFile], config: null };
  }
  const config = listed.includes('config.json') ? await readConfig(join(path, 'config.json')) : null;
  const found = await findCheckpointWeights(path, entries);
  if (found) {
    const headers: SafetensorsHeader[] = [];
    for (const name of found.dataFiles) headers.push(await readHeader(join(path, name), files));
    return { path, kind: 'checkpoint', naming: 'checkpoint', headers, weightFiles: found.dataFiles, config };
  }
  throw new InputError('DIFF_INPUT_EMPTY', `${role}: ${path} has no model.safetensors, ${SHARD_INDEX_FILE}, ${TORCH_WEIGHTS_FILE}, ${TORCH_INDEX_FILE} or an adapter_model file`, {
    subject: path,
    hint: 'Give a checkpoint directory as save_pretrained writes it, a PEFT adapter directory, or a .safetensors or .bin file.',
  });
}
