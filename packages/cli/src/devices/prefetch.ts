/**
 * Look-ahead for merge devices: a few merges of the plan run ahead of the caller, so reading,
 * computing and writing overlap while memory stays bounded by a few tensors.
 */
import type { MergedBytes, MergeTensor } from './device.js';

/** The look-ahead part of an executor, built by {@link withPrefetch}. */
export interface Prefetcher {
  merge(tensor: MergeTensor): Promise<MergedBytes>;
  prefetch(tensors: readonly MergeTensor[]): void;
  /** Stops starting merges and waits until those in flight have settled. */
  drain(): Promise<void>;
}

/**
 * Adds {@link MergeExecutor.prefetch} to a one-tensor merge function: after `prefetch(list)`, up to
 * `depth` merges of the list run ahead of the caller; `merge(t)` takes t's result when it was
 * started ahead (matched by name and source), else merges t directly. A failed look-ahead merge
 * rejects only the `merge()` call that asks for it.
 */
export function withPrefetch(mergeOne: (tensor: MergeTensor) => Promise<MergedBytes>, depth: number): Prefetcher {
  let queue: readonly MergeTensor[] = [];
  let next = 0;
  let stopped = false;
  const ahead = new Map<string, { tensor: MergeTensor; result: Promise<MergedBytes> }>();
  /** Tensors of the list merged directly (asked for before their turn): not started again. */
  const direct = new Set<MergeTensor>();
  const running = new Set<Promise<unknown>>();

  const start = (tensor: MergeTensor): Promise<MergedBytes> => {
    const result = mergeOne(tensor);
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    running.add(settled);
    void settled.then(() => running.delete(settled));
    return result;
  };

  const pump = (): void => {
    while (!stopped && ahead.size < depth && next < queue.length) {
      const tensor = queue[next++]!;
      if (ahead.has(tensor.name) || direct.has(tensor)) continue;
      const result = start(tensor);
      result.catch(() => {}); // observed by merge(); never an unhandled rejection
      ahead.set(tensor.name, { tensor, result });
    }
  };

  return {
    prefetch(tensors) {
      queue = [...tensors];
      next = 0;
      direct.clear();
      pump();
    },
    async merge(tensor) {
      const started = ahead.get(tensor.name);
      if (started !== undefined && started.tensor.source === tensor.source) {
        ahead.delete(tensor.name);
        pump();
        return started.result;
      }
      // Not started ahead: never start it later either, if it is still to come in the list.
      if (queue.indexOf(tensor, next) >= 0) direct.add(tensor);
      const result = start(tensor);
      pump();
      return result;
    },
    async drain() {
      stopped = true;
      ahead.clear();
      while (running.size > 0) await Promise.all([...running]);
    },
  };
}
