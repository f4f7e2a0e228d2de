import {
  checkCompareInput,
  checkCompareTolerance,
  finishCompareStats,
  isFiniteBits,
  isNanBits,
  pairScore,
  WorstList,
  type CompareInput,
  type CompareStats,
  type CompareTolerance,
} from './compare.types.js';

/** Inputs of {@link compareRef}. */
export interface CompareRefParams extends CompareTolerance {
  /** Elements in each tensor. */
  count: number;
  a: CompareInput;
  b: CompareInput;
}

const INF_BITS = 0x7f800000;

/** Every element of `input` widened to f32, as an f32 array and its bits (one buffer). */
function widen(input: CompareInput, count: number): { values: Float32Array; bits: Uint32Array } {
  const values = new Float32Array(count);
  const bits = new Uint32Array(values.buffer);
  const src = input.bytes;
  if (input.type === 'f32') {
    new Uint8Array(values.buffer).set(src);
  } else if (input.type === 'bf16') {
    for (let i = 0, j = 0; i < count; i++, j += 2) bits[i] = ((src[j]! << 16) | (src[j + 1]! << 24)) >>> 0;
  } else {
    for (let i = 0, j = 0; i < count; i++, j += 2) {
      const h = src[j]! | (src[j + 1]! << 8);
      const sign = (h & 0x8000) << 16;
      const e = (h >> 10) & 0x1f;
      const m = h & 0x3ff;
      if (e === 0x1f) bits[i] = (sign | INF_BITS | (m << 13)) >>> 0;
      else if (e === 0) {
        values[i] = m * 2 ** -24;
        bits[i] = (bits[i]! | sign) >>> 0;
      } else bits[i] = (sign | ((e + 112) << 23) | (m << 13)) >>> 0;
    }
  }
  return { values, bits };
}

/**
 * CPU reference of the compare kernel: the same per-element rules in f32 (the difference, the
 * tolerance test and the relative difference are rounded to f32 exactly as WGSL's correctly rounded
 * f32 `-`, `*`, `+` do), with the sums accumulated in f64 from exact f64 products of the f32 values.
 *
 * NaN/Inf follow `torch.isclose`: a pair is within tolerance when `a == b` (so Inf == Inf of the same
 * sign), or both are NaN and `equalNan`, or both are finite with `|a - b| <= atol + rtol·|b|` and
 * `|a - b|` finite in f32. Worst elements carry a and b as f32 values.
 *
 * @throws RangeError for a bad tolerance, or inputs that do not hold `count` elements.
 */
export function compareRef(params: CompareRefParams): CompareStats {
  const { count } = params;
  if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`compare: count must be an integer >= 0, got ${count}.`);
  checkCompareTolerance(params);
  checkCompareInput('a', params.a, count);
  checkCompareInput('b', params.b, count);
  const atol = Math.fround(params.atol);
  const rtol = Math.fround(params.rtol);
  const a = widen(params.a, count);
  const b = widen(params.b, count);
  let violations = 0;
  let nanA = 0;
  let nanB = 0;
  let infA = 0;
  let infB = 0;
  let finitePairs = 0;
  let maxAbs = 0;
  let maxRel = 0;
  let sumSq = 0;
  let dot = 0;
  let aa = 0;
  let bb = 0;
  const worst = new WorstList();
  for (let i = 0; i < count; i++) {
    const ab = a.bits[i]!;
    const bbits = b.bits[i]!;
    const x = a.values[i]!;
    const y = b.values[i]!;
    const aNan = isNanBits(ab);
    const bNan = isNanBits(bbits);
    const bothFinite = isFiniteBits(ab) && isFiniteBits(bbits);
    if (aNan) nanA++;
    else if (!isFiniteBits(ab)) infA++;
    if (bNan) nanB++;
    else if (!isFiniteBits(bbits)) infB++;
    const score = pairScore(ab, bbits, x, y, params.equalNan);
    let rel = score;
    let violation = score === Infinity;
    if (bothFinite) {
      finitePairs++;
      sumSq += score * score;
      dot += x * y;
      aa += x * x;
      bb += y * y;
      if (score !== Infinity) {
        violation = !(score <= Math.fround(atol + Math.fround(rtol * Math.abs(y))));
        rel = score === 0 ? 0 : y === 0 ? Infinity : Math.fround(score / Math.abs(y));
      }
    }
    if (violation) violations++;
    if (score > maxAbs) maxAbs = score;
    if (rel > maxRel) maxRel = rel;
    if (score > 0) worst.offer(i, score, x, y);
  }
  return finishCompareStats({
    count,
    violations,
    maxAbsDiff: maxAbs,
    maxRelDiff: maxRel,
    finitePairs,
    sumSquaredDiff: sumSq,
    dot,
    sumSquaresA: aa,
    sumSquaresB: bb,
    nanA,
    nanB,
    infA,
    infB,
    worst: worst.items,
  });
}
