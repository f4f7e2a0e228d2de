/**
 * The behavioural check: two models (a checkpoint as transformers loads it, and base + adapter
 * unmerged) asked the same questions — logits on probe sequences, greedy continuations — and their
 * answers compared against a stated tolerance.
 */
import type { FloatCodecDtype } from '../safetensors/dtype.js';
import { argmaxRow, type LogitsRunner } from './logits-runner.js';

/** `|a − b| ≤ atol + rtol·|b|` per logit. */
export interface BehaviourTolerance {
  readonly atol: number;
  readonly rtol: number;
}

/**
 * Tolerances by the weights' dtype. f32: both sides compute in f32 from the same numbers up to the
 * merge's one rounding, so 1e-4 is loose. f16/bf16: the merged weights were rounded to 11 or 8
 * significant bits while the unmerged side adds LoRA in f32; the bounds allow that rounding carried
 * through the layers, and are still far below what a wrong matrix gives (differences of order 1).
 */
export const BEHAVIOUR_TOLERANCE: Readonly<Record<FloatCodecDtype, BehaviourTolerance>> = {
  F32: { atol: 1e-4, rtol: 1e-4 },
  F16: { atol: 1e-2, rtol: 1e-2 },
  BF16: { atol: 5e-2, rtol: 5e-2 },
};

/** One probe sequence, both sides' logits compared. */
export interface SequenceComparison {
  readonly ids: readonly number[];
  readonly maxAbsDiff: number;
  /** Where the largest difference is, and both values there. */
  readonly worst: { readonly position: number; readonly index: number; readonly a: number; readonly b: number } | null;
  /** Logits outside the tolerance. */
  readonly violations: number;
  /** Positions whose top-1 token agrees, of all positions. */
  readonly top1Agree: number;
  readonly positions: number;
}

/** One greedy continuation on both sides. */
export interface GreedyComparison {
  readonly prompt: readonly number[];
  readonly a: readonly number[];
  readonly b: readonly number[];
  /** Index of the first generated token that differs; null when all agree. */
  readonly firstDivergence: number | null;
}

/** The whole check. */
export interface BehaviourReport {
  readonly tolerance: BehaviourTolerance;
  readonly sequences: readonly SequenceComparison[];
  readonly greedy: readonly GreedyComparison[];
  readonly maxAbsDiff: number;
  /** Every logit of every probe within the tolerance. */
  readonly ok: boolean;
}

/** Compares two `[positions, width]` logit matrices. */
export function compareLogits(ids: readonly number[], a: Float32Array, b: Float32Array, width: number, tol: BehaviourTolerance): SequenceComparison {
  let maxAbsDiff = 0;
  let worst: SequenceComparison['worst'] = null;
  let violations = 0;
  let top1Agree = 0;
  const positions = ids.length;
  for (let i = 0; i < positions; i++) {
    for (let j = 0; j < width; j++) {
      const x = a[i * width + j]!;
      const y = b[i * width + j]!;
      const d = Math.abs(x - y);
      // NaN on either side is a difference of unbounded size.
      const diff = Number.isNaN(d) ? Infinity : d;
      if (worst === null || diff > maxAbsDiff) {
        maxAbsDiff = diff;
        worst = { position: i, index: j, a: x, b: y };
      }
      if (!(diff <= tol.atol + tol.rtol * Math.abs(y))) violations++;
    }
    if (argmaxRow(a, i, width) === argmaxRow(b, i, width)) top1Agree++;
  }
  return { ids, maxAbsDiff, worst, violations, top1Agree, positions };
}

/** What to ask both models. */
export interface BehaviourProbes {
  readonly sequences: ReadonlyArray<readonly number[]>;
  readonly greedyPrompts: ReadonlyArray<readonly number[]>;
  readonly greedyTokens: number;
}

/** Runs the probes on `a` (the checkpoint) and `b` (base + adapter) and compares. */
export async function checkBehaviour(a: LogitsRunner, b: LogitsRunner, probes: BehaviourProbes, tol: BehaviourTolerance): Promise<BehaviourReport> {
  const width = a.model.head.outDim;
  const sequences: SequenceComparison[] = [];
  for (const ids of probes.sequences) sequences.push(compareLogits(ids, await a.logits(ids), await b.logits(ids), width, tol));
  const greedy: GreedyComparison[] = [];
  for (const prompt of probes.greedyPrompts) {
    const ga = await a.greedy(prompt, probes.greedyTokens);
    const gb = await b.greedy(prompt, probes.greedyTokens);
    const n = Math.max(ga.length, gb.length);
    let firstDivergence: number | null = null;
    for (let i = 0; i < n; i++) if (ga[i] !== gb[i]) { firstDivergence = i; break; }
    greedy.push({ prompt, a: ga, b: gb, firstDivergence });
  }
  const maxAbsDiff = sequences.reduce((m, s) => Math.max(m, s.maxAbsDiff), 0);
  return { tolerance: tol, sequences, greedy, maxAbsDiff, ok: sequences.every((s) => s.violations === 0) };
}
