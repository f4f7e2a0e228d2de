/**
 * Step 3 of a merge, the one place outside core's tie step (`plan/tie.ts`) that handles the tie:
 * when the plan leaves it pending, compute the effective wte and lm_head, compare them bitwise, and
 * let core decide. The computed bytes are kept for writing, and lm_head's digest for the proof.
 */
import { canonicalName, decodeToF32, resolveTie, type FloatCodecDtype, type MergePlan, type TieComparison } from '@lorafuse/core';
import { digestBytes } from '../proof/digest.js';
import type { Intended } from '../proof/prove-loads.js';
import type { TensorProducer } from './tensor-producer.js';

/** The plan with its tie decided, and what settling it computed. */
export interface SettledTie {
  readonly plan: MergePlan;
  /** Output tensors already computed (by output name): written as they are, not computed again. */
  readonly precomputed: ReadonlyMap<string, Uint8Array>;
  /** What lm_head was meant to be, when it was computed here (it may be stored or loaded through the tie). */
  readonly lmHeadIntent: Intended | undefined;
}

/** Decides a pending tie from the computed matrices; any other plan passes through. */
export async function settleTie(plan: MergePlan, produce: TensorProducer): Promise<SettledTie> {
  if (plan.tie.state !== 'pending') return { plan, precomputed: new Map(), lmHeadIntent: undefined };
  const wteName = plan.tie.wte.name;
  const wte = plan.tensors.find((t) => canonicalName(t.name) === canonicalName(wteName))!;
  const head = plan.tie.lmHead;
  const wteBytes = await produce.bytes(wte);
  const headBytes = await produce.bytes(head);
  const settled = resolveTie(plan, compareTiePair(wteBytes, wte.dtype, headBytes, head.dtype, wte.shape[1] ?? 1));
  return {
    plan: settled,
    precomputed: new Map([[wte.name, wteBytes], [head.name, headBytes]]),
    lmHeadIntent: { kind: 'digest', digest: digestBytes(headBytes) },
  };
}

/**
 * Compares the effective wte and lm_head (row-major [vocab, dim]) bitwise, and, when they differ,
 * counts differing rows and the largest absolute difference for the report.
 */
export function compareTiePair(wte: Uint8Array, wteDtype: string, head: Uint8Array, headDtype: string, dim: number): TieComparison {
  if (wteDtype === headDtype && wte.byteLength === head.byteLength && Buffer.from(wte.buffer, wte.byteOffset, wte.byteLength).equals(Buffer.from(head.buffer, head.byteOffset, head.byteLength))) {
    return { equal: true, differingRows: 0, maxAbsDiff: 0 };
  }
  const a = decodeToF32(wteDtype as FloatCodecDtype, wte);
  const b = decodeToF32(headDtype as FloatCodecDtype, head);
  let differingRows = 0;
  let maxAbsDiff = 0;
  const rows = Math.floor(Math.min(a.length, b.length) / Math.max(1, dim));
  for (let r = 0; r < rows; r++) {
    let rowDiffers = false;
    for (let c = 0; c < dim; c++) {
      const i = r * dim + c;
      const d = Math.abs(a[i]! - b[i]!);
      if (d > 0 || Object.is(a[i], b[i]) === false) rowDiffers = true;
      if (d > maxAbsDiff) maxAbsDiff = d;
    }
    if (rowDiffers) differingRows++;
  }
  return { equal: false, differingRows, maxAbsDiff };
}
