/**
 * Step 6 of a merge: the base directory's other files (tokenizer, generation_config.json, ...) join
 * the output, then the whole output is swapped into place at once.
 */
import { join } from 'node:path';
import { statInputFile } from '../fs/input-file.js';
import type { BaseDir } from '../fs/inputs.js';
import type { Committed, OutputTransaction } from '../fs/output-dir.js';
import { isWeightFileName } from '../fs/output-leftovers.js';

/** The base's files the output carries besides config.json and the weights. */
export function baseFilesToCopy(base: BaseDir): string[] {
  // A merged checkpoint must never carry adapter files: transformers would apply the adapter again on
  // load. Nor the base's stray weight files (an index or shards beside its model.safetensors): the
  // output's weights are the merge's own, and a stale index there would send transformers to them.
  return base.otherFiles.filter((name) => name !== 'adapter_config.json' && !name.startsWith('adapter_model.') && !isWeightFileName(name));
}

/**
 * The names of every file the output will hold besides its weight files (model.safetensors or the
 * shards and their index, which are known once the plan is settled and count as lorafuse's anyway).
 */
export function outputFileNames(base: BaseDir): string[] {
  return ['config.json', 'model.safetensors', ...baseFilesToCopy(base)];
}

/** Copies the base's other files in and commits; returns the names copied and what was replaced. */
export async function commitOutput(tx: OutputTransaction, base: BaseDir): Promise<Committed & { copied: string[] }> {
  const copied = baseFilesToCopy(base);
  for (const name of copied) {
    // Copying a FIFO or a device would block or never end: only regular files are copied.
    await statInputFile(join(base.dir, name));
    await tx.copyFileIn(name, join(base.dir, name));
  }
  const committed = await tx.commit();
  return { ...committed, copied };
}
