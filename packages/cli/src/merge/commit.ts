/**
 * Step 6 of a merge: the base directory's other files (tokenizer, generation_config.json, ...) join
 * the output (an adapter's tokenizer instead of the base's when one saved it), then the whole output
 * is swapped into place at once.
 */
import { join } from 'node:path';
import { adapterTokenizer, baseFilesCarried } from '@lorafuse/core';
import { readInputFile, statInputFile } from '../fs/input-file.js';
import { listRegularFiles, type AdapterDir, type BaseDir } from '../fs/inputs.js';
import type { Committed, OutputTransaction } from '../fs/output-dir.js';

/** The files the output carries besides config.json and its weights, and where each comes from. */
export interface FilesToCopy {
  readonly fromBase: readonly string[];
  /** The adapter's tokenizer files, when it has a tokenizer: they replace the base's. */
  readonly fromAdapter: readonly string[];
  /** The adapter directory they come from (the first that has a tokenizer). */
  readonly adapterDir: string | null;
}

/**
 * Decides the copies. A tokenizer saved with an adapter is the one training used (it knows the
 * tokens a resized vocabulary added), so it replaces the base's tokenizer files as a set. Of several
 * adapters, those that saved one must have saved the same files with the same bytes: two tokenizers
 * give one token id two meanings, and no output could honour both.
 */
export async function filesToCopy(base: BaseDir, adapters: readonly AdapterDir[]): Promise<FilesToCopy> {
  const listed = await Promise.all(adapters.map(async (a) => ({ dir: a.dir, names: await listRegularFiles(a.dir) })));
  const chosen = await adapterTokenizer(listed, async (a, b, name) => (await readInputFile(join(a.dir, name))).equals(await readInputFile(join(b.dir, name))));
  const fromBase = baseFilesCarried(base.otherFiles, chosen !== null);
  return { fromBase, fromAdapter: chosen?.names ?? [], adapterDir: chosen?.adapter.dir ?? null };
}

/**
 * The names of every file the output will hold besides its weight files (model.safetensors or the
 * shards and their index, which are known once the plan is settled and count as lorafuse's anyway).
 */
export function outputFileNames(copies: FilesToCopy): string[] {
  return ['config.json', 'model.safetensors', ...copies.fromBase, ...copies.fromAdapter];
}

/** Copies the other files in and commits; returns the names copied and what was replaced. */
export async function commitOutput(tx: OutputTransaction, base: BaseDir, copies: FilesToCopy): Promise<Committed & { copied: string[]; copiedFromAdapter: string[] }> {
  const sets = [[base.dir, copies.fromBase], ...(copies.adapterDir ? [[copies.adapterDir, copies.fromAdapter] as const] : [])] as const;
  for (const [dir, names] of sets) {
    for (const name of names) {
      // Copying a FIFO or a device would block or never end: only regular files are copied.
      await statInputFile(join(dir, name));
      await tx.copyFileIn(name, join(dir, name));
    }
  }
  const committed = await tx.commit();
  return { ...committed, copied: [...copies.fromBase], copiedFromAdapter: [...copies.fromAdapter] };
}
