import { describe, expect, it } from 'vitest';
import { SeededRandom, seededUniform } from '../src/testing/index.js';

describe('SeededRandom', () => {
  it('gives the values core fixtures were generated with (the stream must not change)', () => {
    const r = new SeededRandom(7);
    expect([r.nextU32(), r.nextU32(), r.nextU32()]).toEqual([588686121, 1937383562, 4286812467]);
    expect(Array.from(new SeededRandom(42).normalArray(3, 0.5))).toEqual([-0.012623835355043411, -0.5405500531196594, -0.2908863425254822]);
  });

  it('is deterministic per seed and stays in range', () => {
    expect(new SeededRandom(3).uniformArray(100, 2)).toEqual(new SeededRandom(3).uniformArray(100, 2));
    expect(new SeededRandom(3).uniformArray(100)).not.toEqual(new SeededRandom(4).uniformArray(100));
    const r = new SeededRandom(11);
    for (let i = 0; i < 10_000; i++) {
      const x = r.next();
      expect(x >= 0 && x < 1).toBe(true);
    }
    const u = new SeededRandom(12).uniformArray(10_000, 0.25);
    expect(u.every((x) => x >= -0.25 && x < 0.25)).toBe(true);
  });
});

describe('seededUniform', () => {
  it('is SeededRandom(seed).uniformArray(n, amplitude)', () => {
    expect(seededUniform(5, 64, 0.1)).toEqual(new SeededRandom(5).uniformArray(64, 0.1));
    expect(seededUniform(5, 0)).toHaveLength(0);
  });
});
