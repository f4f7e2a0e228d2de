/**
 * The fixed probe sequences `verify --behaviour` runs when no prompt is given: deterministic ids
 * spread over the vocabulary, as long as the work budget allows (ideally every position up to
 * n_positions), plus a sequence of the rows a resized vocabulary added.
 */
import type { BehaviourProbes } from './behaviour.js';

/** What the default probes are made from. */
export interface ProbeInput {
  readonly vocabSize: number;
  readonly nPositions: number;
  /** Rows the base's own config had; rows at and above it were added by training. */
  readonly baseVocabSize: number;
  /** Parameters of the model, to size the sequences to the work budget. */
  readonly parameterCount: number;
  readonly greedyTokens: number;
}

/**
 * Multiply-adds the default probes may cost on one side (about 2·params per token): a few seconds
 * of the CPU reference; a model small enough gets every position checked.
 */
export const PROBE_WORK_BUDGET = 4e9;

/** Deterministic ids spread over `[0, vocab)`: a multiplicative hash of the position. */
function spreadIds(length: number, vocab: number, salt: number): number[] {
  const ids: number[] = [];
  for (let i = 0; i < length; i++) ids.push(Number((BigInt(i + salt) * 2654435761n) % BigInt(vocab)));
  return ids;
}

/** The default probes for a model. */
export function defaultProbes(p: ProbeInput): BehaviourProbes {
  const affordable = Math.max(8, Math.floor(PROBE_WORK_BUDGET / Math.max(1, 2 * p.parameterCount)));
  const length = Math.min(p.nPositions, affordable);
  const sequences: number[][] = [spreadIds(length, p.vocabSize, 1)];
  if (p.vocabSize > p.baseVocabSize) {
    // Every added row, each after an old token, so both the embedding and the head rows are exercised.
    const added: number[] = [];
    for (let id = p.baseVocabSize; id < p.vocabSize && added.length + 2 <= length; id++) added.push((id * 31) % p.baseVocabSize, id);
    sequences.push(added);
  }
  const promptLength = Math.min(4, Math.max(1, p.nPositions - 1));
  const greedyTokens = Math.max(0, Math.min(p.greedyTokens, p.nPositions - promptLength));
  return { sequences, greedyPrompts: [spreadIds(promptLength, p.vocabSize, 7)], greedyTokens };
}

/** The positions the probes cover, in words (`every position of 64`, `positions 0–127 of 1024`). */
export function positionsCovered(probes: BehaviourProbes, nPositions: number): string {
  const longest = probes.sequences.reduce((m, s) => Math.max(m, s.length), 0);
  return longest >= nPositions ? `every position of ${nPositions}` : `positions 0–${longest - 1} of ${nPositions}`;
}
