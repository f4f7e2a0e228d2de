/**
 * What the behavioural check asks of a model, whatever computes it: logits of a sequence and greedy
 * decoding. The CPU implementation runs the kernels' CPU references.
 */
import { emptyKvCache, forwardGpt2 } from './run-forward.js';
import type { Gpt2Model } from './gpt2-model.js';

/** A model that can be asked for logits and greedy continuations. */
export interface LogitsRunner {
  readonly model: Gpt2Model;
  /** `[ids.length, outputs]` logits of every position. */
  logits(ids: readonly number[]): Promise<Float32Array>;
  /** Up to `tokens` greedily chosen ids after `prompt` (stops after `stopId` if given, or at n_positions). */
  greedy(prompt: readonly number[], tokens: number, stopId?: number | null): Promise<number[]>;
}

/** Index of the largest value of row `row` (the first one on a tie, as torch.argmax picks). */
export function argmaxRow(values: Float32Array, row: number, width: number): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let j = 0; j < width; j++) {
    const v = values[row * width + j]!;
    if (v > bestValue || (Number.isNaN(v) && !Number.isNaN(bestValue))) {
      best = j;
      bestValue = v;
      if (Number.isNaN(v)) break;
    }
  }
  return best;
}

/** The CPU runner: the forward pass on the CPU references, with a key/value cache while decoding. */
export function cpuLogitsRunner(model: Gpt2Model): LogitsRunner {
  const width = model.head.outDim;
  return {
    model,
    async logits(ids) {
      return forwardGpt2(model, ids);
    },
    async greedy(prompt, tokens, stopId = null) {
      const cache = emptyKvCache(model);
      const out: number[] = [];
      let logits = forwardGpt2(model, prompt, cache);
      let last = prompt.length - 1;
      while (out.length < tokens && cache.length < model.config.nPositions) {
        const next = argmaxRow(logits, last, width);
        out.push(next);
        if (next === stopId || out.length === tokens || cache.length >= model.config.nPositions) break;
        logits = forwardGpt2(model, [next], cache);
        last = 0;
      }
      return out;
    },
  };
}
