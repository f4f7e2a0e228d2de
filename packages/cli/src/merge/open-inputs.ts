/**
 * Step 1 of a merge: open the base and adapter directories (configs parsed, headers validated, no
 * tensor bytes read) and refuse an output directory that overlaps any of them.
 */
import type { PlanMergeInput } from '@lorafuse/core';
import { openAdapterDir, openBaseDir, planInputOf, type AdapterDir, type BaseDir, type OpenFiles } from '../fs/inputs.js';
import { assertOutDirSeparate } from '../fs/output-dir.js';

/** The opened inputs of a merge, and the planner's view of them. */
export interface MergeInputs {
  readonly base: BaseDir;
  /** The adapters, in merge order. */
  readonly adapters: readonly AdapterDir[];
  readonly planInput: Omit<PlanMergeInput, 'options'>;
}

/** Opens the inputs through `files` (closed by the caller); `weights[i]` is adapter i's weight (default 1). */
export async function openMergeInputs(baseDir: string, adapterDirs: readonly string[], weights: readonly number[] | undefined, outDir: string, files: OpenFiles): Promise<MergeInputs> {
  const base = await openBaseDir(baseDir, files);
  const adapters: AdapterDir[] = [];
  for (const dir of adapterDirs) adapters.push(await openAdapterDir(dir, files));
  await assertOutDirSeparate(outDir, [base.dir, ...adapters.map((a) => a.dir)]);
  return { base, adapters, planInput: planInputOf(base, adapters, weights) };
}
