import { describe, expect, it } from 'vitest';
import { paceDawnPolling, pacedImmediate, SPIN_MS } from './event-polling.js';

/** A paced setImmediate over a clock the test moves, counting the calls that ran at once. */
function harness() {
  const clock = { t: 0 };
  let atOnce = 0;
  const set = ((cb: () => void) => {
    atOnce++;
    return setImmediate(cb);
  }) as typeof setImmediate;
  const paced = pacedImmediate(set, clearImmediate, () => clock.t);
  return { clock, paced, atOnce: () => atOnce };
}

describe('paced setImmediate', () => {
  it('runs a self-rescheduling loop at once for SPIN_MS, then on timer ticks; other calls always at once', async () => {
    const { clock, paced, atOnce } = harness();
    const kinds: string[] = [];
    // A poll loop like dawn.node's: each run moves the clock by a tenth of SPIN_MS and reschedules itself.
    let polls = 0;
    const done = new Promise<void>((resolve) => {
      const poll = () => {
        clock.t += SPIN_MS / 10;
        if (++polls === 30) return resolve();
        kinds.push(paced.set(poll).constructor.name);
      };
      kinds.push(paced.set(poll).constructor.name);
    });
    await done;
    // Polls 0..10 started inside SPIN_MS of the loop's start; the rest waited for a timer.
    expect(kinds.slice(0, 10).every((k) => k === 'Immediate')).toBe(true);
    expect(kinds.slice(11).every((k) => k === 'Timeout')).toBe(true);
    // Meanwhile and after, a call from outside any paced callback runs at once, however late.
    const before = atOnce();
    clock.t += 100;
    expect(paced.set(() => undefined).constructor.name).toBe('Immediate');
    expect(atOnce()).toBe(before + 1);
  });

  it('clearImmediate cancels both kinds of handle', async () => {
    const { clock, paced } = harness();
    const ran: string[] = [];
    let timer: NodeJS.Immediate | undefined;
    await new Promise<void>((resolve) => {
      paced.set(() => {
        clock.t += SPIN_MS * 2;
        timer = paced.set(() => ran.push('timer'));
        resolve();
      });
    });
    const immediate = paced.set(() => ran.push('immediate'));
    expect(timer!.constructor.name).toBe('Timeout');
    paced.clear(timer);
    paced.clear(immediate);
    await new Promise((r) => setTimeout(r, 20));
    expect(ran).toEqual([]);
  });

  it('is installed on globalThis while any device holds it, and restored after the last', () => {
    const before = globalThis.setImmediate;
    const undoA = paceDawnPolling();
    const paced = globalThis.setImmediate;
    expect(paced).not.toBe(before);
    const undoB = paceDawnPolling();
    undoA();
    undoA(); // twice is once
    expect(globalThis.setImmediate).toBe(paced);
    undoB();
    expect(globalThis.setImmediate).toBe(before);
  });
});
