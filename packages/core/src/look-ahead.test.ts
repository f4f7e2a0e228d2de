import { describe, expect, it } from 'vitest';
import { withLookAhead } from './look-ahead.js';

interface Item {
  readonly name: string;
  readonly source: object;
  readonly bytes: number;
}

const item = (name: string, bytes = 1): Item => ({ name, source: {}, bytes });

/** A runner whose calls stay pending until released, recording what started. */
function gatedRunner() {
  const started: string[] = [];
  const release = new Map<string, (v: string) => void>();
  const fail = new Map<string, (e: Error) => void>();
  const run = (t: Item) => {
    started.push(t.name);
    return new Promise<string>((resolve, reject) => {
      release.set(t.name, (v) => resolve(v));
      fail.set(t.name, reject);
    });
  };
  return { run, started, release: (n: string) => release.get(n)!(`done ${n}`), fail: (n: string) => fail.get(n)!(new Error(`${n} failed`)) };
}

describe('withLookAhead', () => {
  it('runs up to `limit` items ahead by count, and starts the next as each is taken', async () => {
    const g = gatedRunner();
    const la = withLookAhead(g.run, { limit: 2 });
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((n) => item(n));
    la.prefetch([a!, b!, c!, d!]);
    expect(g.started).toEqual(['a', 'b']);
    const ra = la.run(a!);
    expect(g.started).toEqual(['a', 'b', 'c']);
    g.release('a');
    expect(await ra).toBe('done a');
  });

  it('bounds by cost, always letting one item run however large', async () => {
    const g = gatedRunner();
    const la = withLookAhead(g.run, { limit: 10, cost: (t) => t.bytes });
    const big = item('big', 50);
    const s1 = item('s1', 4);
    const s2 = item('s2', 4);
    const s3 = item('s3', 4);
    la.prefetch([big, s1, s2, s3]);
    expect(g.started).toEqual(['big']);
    void la.run(big);
    expect(g.started).toEqual(['big', 's1', 's2']);
  });

  it('runs an item asked for before its turn directly and never again; a failed item rejects only its own run()', async () => {
    const g = gatedRunner();
    const la = withLookAhead(g.run, { limit: 1 });
    const [a, b, c] = ['a', 'b', 'c'].map((n) => item(n));
    la.prefetch([a!, b!, c!]);
    const rc = la.run(c!);
    expect(g.started).toEqual(['a', 'c']);
    g.fail('a');
    await expect(la.run(a!)).rejects.toThrow('a failed');
    expect(g.started).toEqual(['a', 'c', 'b']);
    g.release('c');
    expect(await rc).toBe('done c');
    // A different source under the same name is not the item started ahead.
    const other = { ...b!, source: {} };
    void la.run(other);
    expect(g.started).toEqual(['a', 'c', 'b', 'b']);
  });

  it('drain() starts nothing more and waits for what is in flight', async () => {
    const g = gatedRunner();
    const la = withLookAhead(g.run, { limit: 1 });
    const [a, b] = ['a', 'b'].map((n) => item(n));
    la.prefetch([a!, b!]);
    let drained = false;
    const draining = la.drain().then(() => (drained = true));
    await Promise.resolve();
    expect(drained).toBe(false);
    g.release('a');
    await draining;
    expect(g.started).toEqual(['a']);
  });
});
