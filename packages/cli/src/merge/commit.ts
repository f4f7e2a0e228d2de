/**
 * Step 6 of a merge: the base directory's other files (tokenizer, generation_config.json, ...) join
 * the output, then everything is renamed into place at once.
 */
import { join } from 'node:path';
import { statInputFile } from '../fs/input-file.js';
import type { BaseDir } from '../fs/inputs.js';
import type { OutputTransaction } from '../fs/output-dir.js';

/** Copies the base's other files in and commits; returns the names copied. */
export async function commitOutput(tx: OutputTransaction, base: BaseDir): Promise<string[]> {
  const copied: string[] = [];
  for (const name of base.otherFiles) {
    // A merged checkpoint must never carry adapter files: transformers would apply the adapter again on load.
    if (name === 'adapter_config.json' || name.startsWith('adapter_model.')) continue;
    // Copying a FIFO or a device would block or never end: only regular files are copied.
    await statInputFile(join(base.dir, name));
    await tx.copyFileIn(name, join(base.dir, name));
    copied.push(name);
  }
  await tx.commit();
  return copied;
}
