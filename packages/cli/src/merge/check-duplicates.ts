/**
 * Part of step 2: PEFT may store one trained tensor under two names; the plan keeps one, so the two
 * must hold the same bytes, or the adapter is inconsistent and nothing is merged.
 */
import { InputError, type MergePlan } from '@lorafuse/core';
import type { OpenFiles } from '../fs/inputs.js';
import { byteRangesEqual } from '../fs/byte-ranges.js';

/** Throws when a duplicate copy differs from the copy the plan keeps. */
export async function checkDuplicateCopies(plan: MergePlan, files: OpenFiles, adapterLabel: string): Promise<void> {
  for (const { kept, duplicate } of plan.duplicateCopies) {
    const same = kept.byteLength === duplicate.byteLength && (await byteRangesEqual(files.get(kept.file), kept.fileOffset, files.get(duplicate.file), duplicate.fileOffset, kept.byteLength));
    if (!same) {
      throw new InputError('ADAPTER_DUPLICATE_DIFFERS', `${adapterLabel}: "${kept.name}" and "${duplicate.name}" are two copies of one trained tensor but their values differ`, {
        subject: duplicate.name,
        hint: 'The adapter file is inconsistent; re-save it with PEFT.',
      });
    }
  }
}
