/**
 * Before a merge or a verification: one trained tensor given twice — PEFT may store it under two
 * names in one adapter, or two adapters may both save it — is taken from one of them, so the two
 * must hold the same bytes, or the inputs are inconsistent (or two adapters disagree) and nothing
 * is merged.
 */
import { InputError, type MergePlan } from '@lorafuse/core';
import type { OpenFiles } from '../fs/inputs.js';
import { byteRangesEqual } from '../fs/byte-ranges.js';

/** Throws when a duplicate copy differs from the copy the plan keeps. */
export async function checkDuplicateCopies(plan: MergePlan, files: OpenFiles): Promise<void> {
  for (const { tensor, kept, duplicate, keptBy, duplicateBy } of plan.duplicateCopies) {
    const same = kept.byteLength === duplicate.byteLength && (await byteRangesEqual(files.get(kept.file), kept.fileOffset, files.get(duplicate.file), duplicate.fileOffset, kept.byteLength));
    if (same) continue;
    if (keptBy === duplicateBy) {
      throw new InputError('ADAPTER_DUPLICATE_DIFFERS', `${keptBy}: "${kept.name}" and "${duplicate.name}" are two copies of one trained tensor but their values differ`, {
        subject: duplicate.name,
        hint: 'The adapter file is inconsistent; re-save it with PEFT.',
      });
    }
    throw new InputError('ADAPTER_CONFLICT', `adapters ${keptBy} and ${duplicateBy} both change "${tensor}" with different values ("${kept.name}" and "${duplicate.name}" differ)`, {
      subject: tensor,
      hint: 'A tensor saved whole (modules_to_save, a saved embedding, a trained bias, trainable-token rows) can come from one adapter only, unless both saved identical values. Leave one of the adapters out, or merge them one after the other.',
    });
  }
}
