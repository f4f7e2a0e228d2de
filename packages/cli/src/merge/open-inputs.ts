/**
 * Step 1 of a merge: open the base and adapter directories (configs parsed, headers validated, no
 * tensor bytes read) and refuse an output directory that overlaps either.
 */
import type { PlanMergeInput } from '@lorafuse/core';
import { openAdapterDir, openBaseDir, type AdapterDir, type BaseDir, type OpenFiles } from '../fs/inputs.js';
import { assertOutDirSeparate } from '../fs/output-dir.js';

/** The opened inputs of a merge, and the planner's view of them. */
export interface MergeInputs {
  readonly base: BaseDir;
  readonly adapter: AdapterDir;
  readonly planInput: Omit<PlanMergeInput, 'options'>;
}

/** Opens both inputs through `files` (closed by the caller). */
export async function openMergeInputs(baseDir: string, adapterDir: string, outDir: string, files: OpenFiles): Promise<MergeInputs> {
  const base = await openBaseDir(baseDir, files);
  const adapter = await openAdapterDir(adapterDir, files);
  await assertOutDirSeparate(outDir, [base.dir, adapter.dir]);
  return {
    base,
    adapter,
    planInput: {
      base: { label: base.dir, config: base.config, files: base.headers },
      adapter: { label: adapter.dir, config: adapter.config, file: adapter.header },
    },
  };
}
