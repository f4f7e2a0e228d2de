/**
 * Types and the final reduction of the compare kernel, shared by the GPU wrapper and the CPU
 * reference so that both produce the same {@link CompareStats} from the same per-element rules.
 */

/**
 * Element type of a compared tensor as stored: little-endian IEEE `f32` (4 bytes), `f16` (2 bytes),
 * or `bf16` (2 bytes, the upper half of an f32). Mixed types are compared in f32.
 */
export type CompareElementType = 'f32' | 'f16' | 'bf16';

/** Bytes per element of each {@link CompareElementType}. */
export const COMPARE_ELEMENT_BYTES: Readonly<Record<CompareElementType, 2 | 4>> = { f32: 4, f16: 2, bf16: 2 };

/** How many of the worst elements a comparison reports. */
export const COMPARE_TOP_K = 8;

/**
 * Tolerance of a comparison, as `torch.allclose(a, b, rtol, atol, equal_nan)`: element i is within
 * tolerance when `|a - b| <= atol + rtol·|b|` (evaluated in f32, with atol and rtol rounded to f32),
 * or when `a == b` (so Inf == Inf of the same sign), or when both are NaN and `equalNan` is set.
 */
export interface CompareTolerance {
  /** Absolute tolerance (>= 0, finite). */
  atol: number;
  /** Relative tolerance (>= 0, finite), relative to |b|. */
  rtol: number;
  /** Whether NaN in a equals NaN in b at the same index. */
  equalNan: boolean;
}

/** One of the worst elements of a comparison. */
export interface CompareWorstElement {
  /** Flat (row-major) element index. */
  index: number;
  /** |a - b| in f32; `Infinity` for a pair that is unequal and not both finite. */
  absDiff: number;
  /** a[index] as f32 (absent when the values were not at hand, see `readCompareStats`). */
  a?: number;
  /** b[index] as f32 (absent when the values were not at hand). */
  b?: number;
}

/**
 * Statistics of one comparison of tensors a and b with the same number of elements.
 *
 * "Finite pairs" are the indices where both a and b are finite; the sums, RMSE and cosine cover only
 * those. Maxima cover every index: a pair that is unequal and not both finite counts `Infinity`.
 */
export interface CompareStats {
  /** Elements compared. */
  count: number;
  /** Elements outside the tolerance (`torch.isclose` false). */
  violations: number;
  /** max |a - b| (f32), `Infinity` when some pair is unequal and not both finite; 0 for no elements. */
  maxAbsDiff: number;
  /** max |a - b| / |b| (f32; `Infinity` where b = 0 and a != 0, or as for `maxAbsDiff`). */
  maxRelDiff: number;
  /** Indices where both a and b are finite. */
  finitePairs: number;
  /** Σ (a - b)² over finite pairs. */
  sumSquaredDiff: number;
  /** Σ a·b over finite pairs. */
  dot: number;
  /** Σ a² over finite pairs. */
  sumSquaresA: number;
  /** Σ b² over finite pairs. */
  sumSquaresB: number;
  /** sqrt(sumSquaredDiff / finitePairs); `null` without finite pairs. */
  rmse: number | null;
  /**
   * dot / sqrt(Σa²·Σb²) clamped to [-1, 1]; 1 when both sides are all zeros, 0 when exactly one is;
   * `null` without finite pairs.
   */
  cosine: number | null;
  nanA: number;
  nanB: number;
  /** ±Inf in a. */
  infA: number;
  /** ±Inf in b. */
  infB: number;
  /** Up to {@link COMPARE_TOP_K} elements with the largest |a - b| > 0, largest first, ties by lower index. */
  worst: CompareWorstElement[];
}

/** The parts of {@link CompareStats} that are accumulated; the rest is derived by {@link finishCompareStats}. */
export type CompareAccumulators = Omit<CompareStats, 'rmse' | 'cosine'>;

/** Derives RMSE and cosine similarity from the accumulated sums. */
export function finishCompareStats(acc: CompareAccumulators): CompareStats {
  const rmse = acc.finitePairs === 0 ? null : Math.sqrt(acc.sumSquaredDiff / acc.finitePairs);
  let cosine: number | null;
  if (acc.finitePairs === 0) cosine = null;
  else if (acc.sumSquaresA === 0 && acc.sumSquaresB === 0) cosine = 1;
  else if (acc.sumSquaresA === 0 || acc.sumSquaresB === 0) cosine = 0;
  else cosine = Math.min(1, Math.max(-1, acc.dot / Math.sqrt(acc.sumSquaresA * acc.sumSquaresB)));
  return { ...acc, rmse, cosine };
}

/** Validates a tolerance; throws RangeError naming the bad field. */
export function checkCompareTolerance(t: CompareTolerance): void {
  for (const key of ['atol', 'rtol'] as const) {
    const v = t[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new RangeError(`compare: ${key} must be a finite number >= 0, got ${String(v)}.`);
  }
}

/** A tensor given as its raw little-endian bytes. */
export interface CompareInput {
  type: CompareElementType;
  /** `count` elements of `type`, little-endian, starting at any byte offset. */
  bytes: Uint8Array;
}

/** Checks that `input` holds exactly `count` elements. */
export function checkCompareInput(name: string, input: CompareInput, count: number): void {
  const size = COMPARE_ELEMENT_BYTES[input.type];
  if (size === undefined) throw new RangeError(`compare: ${name}.type must be f32, f16 or bf16, got ${JSON.stringify(input.type)}.`);
  if (input.bytes.byteLength !== count * size) {
    throw new RangeError(`compare: ${name} has ${input.bytes.byteLength} bytes; ${count} ${input.type} elements need ${count * size}.`);
  }
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** f32 value of IEEE f32 bits. */
export function f32FromBits(bits: number): number {
  u32Scratch[0] = bits;
  return f32Scratch[0]!;
}

/** IEEE f32 bits of an f32 value. */
export function bitsFromF32(value: number): number {
  f32Scratch[0] = value;
  return u32Scratch[0]!;
}

const INF_BITS = 0x7f800000;

/** Whether f32 bits are a NaN. */
export function isNanBits(bits: number): boolean {
  return (bits & 0x7fffffff) > INF_BITS;
}

/** Whether f32 bits are a finite value. */
export function isFiniteBits(bits: number): boolean {
  return (bits & INF_BITS) !== INF_BITS;
}

/**
 * The per-element rule of the kernel and the reference: the "score" of a pair is |a - b| rounded to
 * f32 when both are finite (`Infinity` when that overflows f32), 0 for an equal non-finite pair
 * (same-signed Inf, or NaN and NaN with `equalNan`), and `Infinity` for any other non-finite pair.
 * `a`, `b` are the f32 values of `aBits`, `bBits`.
 */
export function pairScore(aBits: number, bBits: number, a: number, b: number, equalNan: boolean): number {
  if (isFiniteBits(aBits) && isFiniteBits(bBits)) return Math.abs(Math.fround(a - b));
  const aNan = isNanBits(aBits);
  const bNan = isNanBits(bBits);
  const same = aNan && bNan ? equalNan : !aNan && !bNan && aBits === bBits;
  return same ? 0 : Infinity;
}

/** Keeps the {@link COMPARE_TOP_K} worst elements offered in increasing index order (largest score first; ties keep the lower index). */
export class WorstList {
  readonly items: CompareWorstElement[] = [];

  offer(index: number, absDiff: number, a?: number, b?: number): void {
    const items = this.items;
    if (items.length === COMPARE_TOP_K && !(absDiff > items[items.length - 1]!.absDiff)) return;
    let at = items.length;
    while (at > 0 && absDiff > items[at - 1]!.absDiff) at--;
    items.splice(at, 0, a === undefined || b === undefined ? { index, absDiff } : { index, absDiff, a, b });
    if (items.length > COMPARE_TOP_K) items.pop();
  }
}

/** f32 bits of element `i` of `input` (f16 and bf16 widened exactly, NaN payloads kept). */
export function elementBits(input: CompareInput, i: number): number {
  const bytes = input.bytes;
  if (input.type === 'f32') {
    const o = 4 * i;
    return (bytes[o]! | (bytes[o + 1]! << 8) | (bytes[o + 2]! << 16) | (bytes[o + 3]! << 24)) >>> 0;
  }
  const h = bytes[2 * i]! | (bytes[2 * i + 1]! << 8);
  if (input.type === 'bf16') return (h << 16) >>> 0;
  const sign = (h & 0x8000) << 16;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return (sign | 0x7f800000 | (m << 13)) >>> 0;
  if (e === 0) return (sign | bitsFromF32(m * 2 ** -24)) >>> 0;
  return (sign | ((e + 112) << 23) | (m << 13)) >>> 0;
}
