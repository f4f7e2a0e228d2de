/**
 * Look-ahead for whoever computes a checkpoint's tensors in order (the CLI's merge devices, the
 * app's page): some of a known list run ahead of the caller, so reading, computing and writing
 * overlap while memory stays bounded — by a number of tensors, or by their bytes.
 */

/** What may run ahead: while anything is ahead, a next item starts only if the costs stay within `limit`. */
export interface LookAheadBudget<T> {
  readonly limit: number;
  /** An item's cost (default 1: `limit` is then a number of items). */
  readonly cost?: (item: T) => number;
}

/** The look-ahead, built by {@link withLookAhead}. */
export interface LookAhead<T, R> {
  /** Announces the items to come, in order; some start at once. */
  prefetch(items: readonly T[]): void;
  /** `item`'s result: taken from the look-ahead when it was started there, else run now. */
  run(item: T): Promise<R>;
  /** Stops starting items and waits until those in flight have settled. */
  drain(): Promise<void>;
}

/**
 * Adds look-ahead to `runOne`: after `prefetch(list)`, items of the list run ahead of the caller
 * within `budget` (always at least one); `run(t)` takes t's result when it was started ahead
 * (matched by name and source), else runs t directly. A failed look-ahead item rejects only the
 * `run()` call that asks for it.
 */
export function withLookAhead<T extends { readonly name: string; readonly source: unknown }, R>(runOne: (item: T) => Promise<R>, budget: LookAheadBudget<T>): LookAhead<T, R> {
  const cost = budget.cost ?? (() => 1);
  let queue: readonly T[] = [];
  let next = 0;
  let stopped = false;
  let used = 0;
  const ahead = new Map<string, { item: T; result: Promise<R>; cost: number }>();
  /** Items of the list run directly (asked for before their turn): not started again. */
  const direct = new Set<T>();
  const running = new Set<Promise<unknown>>();

  const start = (item: T): Promise<R> => {
    const result = runOne(item);
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    running.add(settled);
    void settled.then(() => running.delete(settled));
    return result;
  };

  const pump = (): void => {
    while (!stopped && next < queue.length) {
      const item = queue[next]!;
      if (ahead.has(item.name) || direct.has(item)) {
        next++;
        continue;
      }
      const c = cost(item);
      if (ahead.size > 0 && used + c > budget.limit) return;
      next++;
      const result = start(item);
      result.catch(() => {}); // observed by run(); never an unhandled rejection
      ahead.set(item.name, { item, result, cost: c });
      used += c;
    }
  };

  return {
    prefetch(items) {
      queue = [...items];
      next = 0;
      direct.clear();
      pump();
    },
    async run(item) {
      const started = ahead.get(item.name);
      if (started !== undefined && started.item.source === item.source) {
        ahead.delete(item.name);
        used -= started.cost;
        pump();
        return started.result;
      }
      // Not started ahead: never start it later either, if it is still to come in the list.
      if (queue.indexOf(item, next) >= 0) direct.add(item);
      const result = start(item);
      pump();
      return result;
    },
    async drain() {
      stopped = true;
      ahead.clear();
      used = 0;
      while (running.size > 0) await Promise.all([...running]);
    },
  };
}
