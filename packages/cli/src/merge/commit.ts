/**
 * Step 6 of a merge: the base directory's other files (tokenizer, generation_config.json, ...) join
 * the output (an adapter's tokenizer instead of the base's when one saved it), then the whole output
 * is swapped into place at once.
 */
import { join } from 'node:path';
import { baseFilesCarried, InputError, tokenizerFilesOf } from '@lorafuse/core';
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
  let chosen: { dir: string; names: string[] } | null = null;
  for (const adapter of adapters) {
    const names = tokenizerFilesOf(await listRegularFiles(adapter.dir));
    if (names.length === 0) continue;
    if (!chosen) {
      chosen = { dir: adapter.dir, names };
      continue;
    }
    const differs = names.join() !== chosen.names.join() ? `their files differ (${chosen.names.join(', ')} against ${names.join(', ')})` : await firstDifferentFile(chosen.dir, adapter.dir, names);
    if (differs) {
      throw new InputError('ADAPTER_TOKENIZERS_DIFFER', `adapters ${chosen.dir} and ${adapter.dir} both carry a tokenizer, and ${differs}`, {
        subject: 'tokenizer.json',
        hint: 'Adapters merged together must share one tokenizer; remove the tokenizer files from all but one of them if they encode text alike, or merge them separately.',
      });
    }
  }
  const fromBase = baseFilesCarried(base.otherFiles, chosen !== null);
  return { fromBase, fromAdapter: chosen?.names ?? [], adapterDir: chosen?.dir ?? null };
}

async function firstDifferentFile(a: string, b: string, names: readonly string[]): Promise<string | null> {
  for (const name of names) {
    const [x, y] = [await readInputFile(join(a, name)), await readInputFile(join(b, name))];
    if (!x.equals(y)) return `their ${name} differ`;
  }
  return null;
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
