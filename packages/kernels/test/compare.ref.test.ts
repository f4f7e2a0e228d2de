/** CPU reference of the compare kernel and its pure helpers, against hand-computed examples (exact). */
import { describe, expect, it } from 'vitest';
import { type CompareInput } from '../src/index.js';
import { planCompareChunks, reduceCompareRecords, COMPARE_ELEMENTS_PER_WORKGROUP, COMPARE_TOP_K } from '../src/internal.js';
import { compareRef } from '../src/reference.js';

const f32 = (values: number[]): CompareInput => ({ type: 'f32', bytes: new Uint8Array(Float32Array.from(values).buffer) });
const u16 = (type: 'f16' | 'bf16', bits: number[]): CompareInput => ({ type, bytes: new Uint8Array(Uint16Array.from(bits).buffer) });
const TOL = { atol: 1e-6, rtol: 1e-5, equalNan: false };

describe('compareRef', () => {
  it('a small example by hand', () => {
    const s = compareRef({ count: 3, a: f32([1, 2, 3]), b: f32([1, 2.5, 3]), ...TOL });
    expect(s).toMatchObject({
      count: 3, violations: 1, maxAbsDiff: 0.5, maxRelDiff: Math.fround(0.2), finitePairs: 3,
      sumSquaredDiff: 0.25, dot: 1 + 5 + 9, sumSquaresA: 14, sumSquaresB: 16.25, nanA: 0, nanB: 0, infA: 0, infB: 0,
      worst: [{ index: 1, absDiff: 0.5, a: 2, b: 2.5 }],
    });
    expect(s.rmse).toBeCloseTo(Math.sqrt(0.25 / 3), 15);
    expect(s.cosine).toBeCloseTo(15 / Math.sqrt(14 * 16.25), 15);
  });

  it('tolerance |a-b| <= atol + rtol·|b| is relative to b (not symmetric), in f32', () => {
    // |a-b| = 1e-3; rtol·|b| = 1e-3 when b = 100 (within), 0.9e-3 when b = 90 (outside).
    const within = compareRef({ count: 1, a: f32([100.001]), b: f32([100]), atol: 0, rtol: 1.1e-5, equalNan: false });
    const outside = compareRef({ count: 1, a: f32([90.001]), b: f32([90]), atol: 0, rtol: 1.1e-5, equalNan: false });
    expect(within.violations).toBe(0);
    expect(outside.violations).toBe(1);
    // b = 0: the relative difference is infinite, but atol still admits the pair.
    const zero = compareRef({ count: 1, a: f32([1e-7]), b: f32([0]), ...TOL });
    expect(zero).toMatchObject({ violations: 0, maxRelDiff: Infinity, maxAbsDiff: Math.fround(1e-7) });
  });

  it.each([
    // a, b, equalNan, violation, score
    [NaN, NaN, false, true, Infinity],
    [NaN, NaN, true, false, 0],
    [NaN, 1, true, true, Infinity],
    [1, NaN, true, true, Infinity],
    [Infinity, Infinity, false, false, 0],
    [-Infinity, -Infinity, false, false, 0],
    [Infinity, -Infinity, false, true, Infinity],
    [Infinity, 1, false, true, Infinity],
    [1, -Infinity, false, true, Infinity],
    [0, -0, false, false, 0],
    [3e38, -3e38, false, true, Infinity], // |a-b| overflows f32
  ] as const)('torch.isclose(%s, %s, equal_nan=%s): violation %s', (a, b, equalNan, violation, score) => {
    const s = compareRef({ count: 1, a: f32([a]), b: f32([b]), atol: 1e-6, rtol: 1e-5, equalNan });
    expect(s.violations).toBe(violation ? 1 : 0);
    expect(s.maxAbsDiff).toBe(score);
    expect(s.worst.length).toBe(score > 0 ? 1 : 0);
  });

  it('counts NaN and Inf per side; sums cover finite pairs only', () => {
    const s = compareRef({ count: 5, a: f32([NaN, Infinity, 1, 2, -Infinity]), b: f32([1, Infinity, NaN, 2, 3]), ...TOL });
    expect(s).toMatchObject({ nanA: 1, infA: 2, nanB: 1, infB: 1, finitePairs: 1, sumSquaresA: 4, dot: 4, violations: 3 });
  });

  it('decodes f16 (normal, subnormal, ±0, Inf, NaN) and bf16 exactly; mixed types compare in f32', () => {
    // f16: 1, -2, 2^-24 (smallest subnormal), -0, +Inf, NaN; bf16: the same values.
    const h = u16('f16', [0x3c00, 0xc000, 0x0001, 0x8000, 0x7c00, 0x7e00]);
    const bf = u16('bf16', [0x3f80, 0xc000, 0x3380, 0x8000, 0x7f80, 0x7fc0]);
    const x = f32([1, -2, 2 ** -24, 0, Infinity, NaN]);
    for (const [a, b] of [[h, bf], [h, x], [bf, x]] as const) {
      const s = compareRef({ count: 6, a, b, atol: 0, rtol: 0, equalNan: true });
      expect(s).toMatchObject({ violations: 0, maxAbsDiff: 0, nanA: 1, nanB: 1, infA: 1, infB: 1 });
    }
    const s = compareRef({ count: 2, a: u16('f16', [0x3c00, 0x3c01]), b: f32([1, 1]), ...TOL });
    expect(s.worst).toEqual([{ index: 1, absDiff: 2 ** -10, a: 1 + 2 ** -10, b: 1 }]);
  });

  it(`keeps the ${COMPARE_TOP_K} worst elements, largest first, ties by lower index`, () => {
    const a = new Array(20).fill(0);
    const b = [0, 1, 0, 2, 1, 1, 1, 1, 1, 1, 1, 1, 3, 0, 0, 0, 0, 0, 0, 2];
    const s = compareRef({ count: 20, a: f32(a), b: f32(b), ...TOL });
    expect(s.worst.map((w) => w.index)).toEqual([12, 3, 19, 1, 4, 5, 6, 7]);
  });

  it('cosine and RMSE: identical → 1 and 0; zero against non-zero → 0; no finite pairs → null', () => {
    expect(compareRef({ count: 2, a: f32([1, 2]), b: f32([1, 2]), ...TOL })).toMatchObject({ cosine: 1, rmse: 0 });
    expect(compareRef({ count: 2, a: f32([0, 0]), b: f32([0, 0]), ...TOL })).toMatchObject({ cosine: 1, rmse: 0 });
    expect(compareRef({ count: 2, a: f32([0, 0]), b: f32([1, 0]), ...TOL }).cosine).toBe(0);
    expect(compareRef({ count: 1, a: f32([NaN]), b: f32([1]), ...TOL })).toMatchObject({ cosine: null, rmse: null });
    expect(compareRef({ count: 2, a: f32([1, 0]), b: f32([-1, 0]), ...TOL }).cosine).toBe(-1);
  });

  it('sums accumulate in f64 (f32 accumulation would lose the small terms)', () => {
    const s = compareRef({ count: 3, a: f32([2 ** 12, 1, 1]), b: f32([2 ** 12, 1, 1]), ...TOL });
    expect(s.sumSquaresA).toBe(2 ** 24 + 2);
  });

  it('empty tensors', () => {
    expect(compareRef({ count: 0, a: f32([]), b: f32([]), ...TOL })).toMatchObject({ count: 0, violations: 0, maxAbsDiff: 0, maxRelDiff: 0, worst: [], cosine: null, rmse: null });
  });

  it('rejects inputs of the wrong size and bad tolerances', () => {
    expect(() => compareRef({ count: 2, a: f32([1]), b: f32([1, 2]), ...TOL })).toThrow(/a has 4 bytes/);
    expect(() => compareRef({ count: 1, a: f32([1]), b: f32([1]), atol: -1, rtol: 0, equalNan: false })).toThrow(/atol/);
    expect(() => compareRef({ count: 1, a: f32([1]), b: f32([1]), atol: 0, rtol: NaN, equalNan: false })).toThrow(/rtol/);
  });
});

describe('reduceCompareRecords', () => {
  const record = (fields: Partial<Record<'score' | 'index' | 'rel' | 'violations' | 'nanA' | 'nanB' | 'infA' | 'infB' | 'finite', number>>, sums: number[] = [0, 0, 0, 0]): number[] => {
    const r = new Array(16).fill(0);
    r[0] = fields.score ?? 0;
    r[1] = fields.index ?? 0xffffffff;
    r[2] = fields.rel ?? 0;
    r[3] = fields.violations ?? 0;
    r[4] = fields.nanA ?? 0;
    r[5] = fields.nanB ?? 0;
    r[6] = fields.infA ?? 0;
    r[7] = fields.infB ?? 0;
    r[8] = fields.finite ?? 0;
    const bits = new Uint32Array(Float32Array.from(sums).buffer);
    r.splice(9, 4, ...bits);
    return r;
  };
  const bitsOf = (x: number) => new Uint32Array(Float32Array.of(x).buffer)[0]!;

  it('adds counts, takes maxima on bits, sums in f64 and picks candidate workgroups by their worst element', () => {
    const recs = new Uint32Array([
      ...record({ score: bitsOf(0.5), index: 10, rel: bitsOf(0.1), violations: 2, nanA: 1, finite: 4096 }, [1, 2, 3, 4]),
      ...record({ finite: 4096 }, [0, 2, 2, 2]),
      ...record({ score: bitsOf(0.5), index: 8200, rel: bitsOf(Infinity), violations: 1, infB: 3, finite: 100 }, [0.25, 0, 0, 0]),
    ]);
    const { stats, candidates } = reduceCompareRecords(recs, 8292);
    expect(stats).toMatchObject({ count: 8292, violations: 3, nanA: 1, infB: 3, finitePairs: 8292, maxAbsDiff: 0.5, maxRelDiff: Infinity, sumSquaredDiff: 1.25, dot: 4, worst: [] });
    expect(candidates).toEqual([0, 2]);
  });

  it(`keeps at most ${COMPARE_TOP_K} candidates: the workgroups with the worst own elements`, () => {
    const recs: number[] = [];
    for (let g = 0; g < 12; g++) recs.push(...record({ score: bitsOf(g % 4 === 0 ? 2 : 1), index: g * 4096 }));
    const { candidates } = reduceCompareRecords(new Uint32Array(recs), 12 * 4096);
    // Scores 2 at groups 0, 4, 8; then the lowest-indexed of the score-1 groups.
    expect(candidates).toEqual([0, 1, 2, 3, 4, 5, 6, 8]);
  });
});

describe('planCompareChunks', () => {
  it('one chunk when everything fits; none when empty', () => {
    expect(planCompareChunks(10_000, 1 << 20)).toEqual([{ elemStart: 0, elemCount: 10_000, recordStart: 0, records: 3 }]);
    expect(planCompareChunks(0, 1 << 20)).toEqual([]);
  });
  it('chunks start at multiples of the workgroup elements and fit the binding as f32', () => {
    const chunks = planCompareChunks(50_257 * 768, 128 * 1024 * 1024);
    expect(chunks).toHaveLength(2);
    let next = 0;
    for (const c of chunks) {
      expect(c.elemStart).toBe(next);
      expect(c.elemStart % COMPARE_ELEMENTS_PER_WORKGROUP).toBe(0);
      expect(c.elemCount * 4).toBeLessThanOrEqual(128 * 1024 * 1024);
      expect(c.recordStart).toBe(c.elemStart / COMPARE_ELEMENTS_PER_WORKGROUP);
      next += c.elemCount;
    }
    expect(next).toBe(50_257 * 768);
  });
  it('throws naming maxStorageBufferBindingSize below one workgroup of f32', () => {
    expect(() => planCompareChunks(10, 8192)).toThrow(/maxStorageBufferBindingSize/);
  });
});
