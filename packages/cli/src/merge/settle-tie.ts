/**
 * Step 3 of a merge, the one place outside core's tie step (`plan/tie.ts`) that handles the tie:
 * when the plan leaves it pending, compute the effective wte and lm_head, compare them bitwise, and
 * let core decide. The computed bytes are kept for writing, and lm_head's digest for the proof.
 */
import { canonicalName, compareTiePair, resolveTie, type MergePlan } from '@lorafuse/core';
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
