/**
 * How often this process polls Dawn for finished GPU work while a software adapter's device is open.
 *
 * dawn.node settles a GPU promise (onSubmittedWorkDone, mapAsync, popErrorScope) by polling: while
 * one is pending it calls ProcessEvents from `setImmediate`, again and again, looking the function
 * up on `globalThis` each time. The main thread then spins at 100% for the whole wait. On a GPU that
 * only costs a core; on SwiftShader, whose threads run the kernels on the same CPUs, it takes that
 * core from the kernels (2 cores: a c_attn r8 merge 10.3 ms with the spin, 6.4 ms without it).
 *
 * So while such a device is open, `globalThis.setImmediate` is a paced one. A callback that
 * schedules itself again from inside its own run is a polling loop: for its first {@link SPIN_MS}
 * it is called at once (short waits stay short), later on the next timer tick (~1 ms), sleeping in
 * between (work cut into pieces that reschedule themselves the same way is paced too). Every other
 * call, one not made from inside a callback it scheduled, runs at once as before; Node's own modules
 * keep their internal setImmediate anyway.
 */

/** How long a polling loop runs without sleeping. */
export const SPIN_MS = 0.1;

type SetImmediate = typeof globalThis.setImmediate;
type ClearImmediate = typeof globalThis.clearImmediate;

let installs = 0;
let original: { set: SetImmediate; clear: ClearImmediate } | undefined;

/** The paced pair over `set`/`clear` and `now` (a clock in ms). */
export function pacedImmediate(set: SetImmediate, clear: ClearImmediate, now: () => number = () => performance.now()): { set: SetImmediate; clear: ClearImmediate } {
  // When the loop whose callback runs now started; undefined outside paced callbacks.
  let running: number | undefined;
  // Handles that are timers, so that clearImmediate on them still cancels.
  const timers = new WeakSet<object>();
  const paced = ((callback: (...args: unknown[]) => void, ...args: unknown[]) => {
    const t = now();
    const loopStart = running ?? t;
    const step = (...a: unknown[]) => {
      const outer = running;
      running = loopStart;
      try {
        callback(...a);
      } finally {
        running = outer;
      }
    };
    if (t - loopStart < SPIN_MS) return set(step, ...args);
    const timer = setTimeout(step, 0, ...args);
    timers.add(timer);
    return timer;
  }) as SetImmediate;
  const pacedClear = ((handle: NodeJS.Immediate | undefined) => {
    if (handle !== undefined && timers.has(handle)) clearTimeout(handle as unknown as NodeJS.Timeout);
    else clear(handle);
  }) as ClearImmediate;
  return { set: paced, clear: pacedClear };
}

/** Paces the global setImmediate until the returned function is called (nested uses count). */
export function paceDawnPolling(): () => void {
  if (installs++ === 0) {
    original = { set: globalThis.setImmediate, clear: globalThis.clearImmediate };
    const paced = pacedImmediate(original.set, original.clear);
    globalThis.setImmediate = paced.set;
    globalThis.clearImmediate = paced.clear;
  }
  let undone = false;
  return () => {
    if (undone) return;
    undone = true;
    if (--installs === 0 && original !== undefined) {
      globalThis.setImmediate = original.set;
      globalThis.clearImmediate = original.clear;
      original = undefined;
    }
  };
}
