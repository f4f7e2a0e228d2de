/**
 * The CPU merge loop: `W += scale · L · R` over a range of W's rows, in place, with the semantics of
 * the kernels' reference (`loraMergeRef`: f64 accumulation over k in ascending order, one rounding
 * to f32), bit for bit, but laid out for speed: one factor's values for the current row in a small
 * f64 array, the other factor transposed once so the inner loop reads contiguous memory. The
 * WebAssembly SIMD version (simd/merge-rows.ts) gives the same bytes and falls back to it.
 */
import { loraMergeSizes, type LoraMergeOrientation } from '@lorafuse/kernels/internal';

/** Inputs of {@link loraMergeRowsInPlace}. */
export interface LoraMergeInPlaceParams {
  /** W, row-major f32 `[rows, cols]`; rows `[rowStart, rowEnd)` are updated in place. */
  readonly w: Float32Array;
  /** A, row-major f32 `[rank, in]`. */
  readonly a: Float32Array;
  /** B, row-major f32 `[out, rank]`. */
  readonly b: Float32Array;
  /** Rows of W (`out` for `'linear'`, `in` for `'transposed'`). */
  readonly rows: number;
  /** Columns of W (`in` for `'linear'`, `out` for `'transposed'`). */
  readonly cols: number;
  readonly rank: number;
  readonly orientation: LoraMergeOrientation;
  /** LoRA scaling s. */
  readonly scale: number;
}

/**
 * The column factor laid out `[cols, rank]` in f64 (exact: every f32 is an f64): for `'linear'`,
 * `A[k, col]` (A transposed); for `'transposed'`, `B[col, k]` (B as stored).
 */
function columnFactor(p: LoraMergeInPlaceParams): Float64Array {
  const { cols, rank } = p;
  const out = new Float64Array(cols * rank);
  if (p.orientation === 'transposed') {
    const b = p.b;
    for (let i = 0; i < cols * rank; i++) out[i] = b[i]!;
  } else {
    const a = p.a;
    for (let k = 0; k < rank; k++) for (let col = 0, src = k * cols; col < cols; col++, src++) out[col * rank + k] = a[src]!;
  }
  return out;
}

/** Throws a `RangeError` for factors shorter than their shapes or a row range outside W. */
export function checkMergeRows(p: LoraMergeInPlaceParams, rowStart: number, rowEnd: number): void {
  const sizes = loraMergeSizes(p);
  const { w, a, b, rows } = p;
  if (w.length < sizes.w || a.length < sizes.a || b.length < sizes.b) {
    throw new RangeError(`loraMergeRowsInPlace: need W ${sizes.w}, A ${sizes.a}, B ${sizes.b} values; got ${w.length}, ${a.length}, ${b.length}.`);
  }
  if (!(rowStart >= 0 && rowEnd <= rows && rowStart <= rowEnd)) throw new RangeError(`loraMergeRowsInPlace: bad row range [${rowStart}, ${rowEnd}) of ${rows}.`);
}

/**
 * `W[row, col] = f32(W[row, col] + scale · Σ_k L[row, k] · R[k, col])` for rows `[rowStart, rowEnd)`,
 * in place, where the sum runs over k = 0..rank-1 in f64 exactly as {@link loraMergeRef} sums it
 * (so the result is bit-identical to the reference; W's other rows are untouched). Returns the count
 * of NaN/Inf values written. `columnFactor` may be passed in when several row ranges share it.
 */
export function loraMergeRowsInPlace(p: LoraMergeInPlaceParams, rowStart = 0, rowEnd = p.rows, column?: Float64Array): number {
  checkMergeRows(p, rowStart, rowEnd);
  const { w, a, b, rows, cols, rank, scale } = p;
  if (cols === 0 || rowStart === rowEnd) return 0;
  const r = column ?? columnFactor(p);
  const l = new Float64Array(rank);
  const linear = p.orientation === 'linear';
  // Partial sums per column for ranks above 8, carried from one block of 8 k's to the next (each
  // element still sums its products one by one in k order).
  const acc = rank > 8 ? new Float64Array(cols) : undefined;
  let nonFinite = 0;
  for (let row = rowStart; row < rowEnd; row++) {
    // L[row, k]: B[row, k] for linear (W [out, in]), A[k, row] for transposed (W [in, out]).
    if (linear) for (let k = 0; k < rank; k++) l[k] = b[row * rank + k]!;
    else for (let k = 0; k < rank; k++) l[k] = a[k * rows + row]!;
    const base = row * cols;
    if (acc === undefined) {
      if (rank === 8) {
        const l0 = l[0]!, l1 = l[1]!, l2 = l[2]!, l3 = l[3]!, l4 = l[4]!, l5 = l[5]!, l6 = l[6]!, l7 = l[7]!;
        for (let col = 0, j = 0; col < cols; col++, j += 8) {
          // Left to right from 0, as the reference's `sum += ...` loop adds.
          const sum = 0 + r[j]! * l0 + r[j + 1]! * l1 + r[j + 2]! * l2 + r[j + 3]! * l3 + r[j + 4]! * l4 + r[j + 5]! * l5 + r[j + 6]! * l6 + r[j + 7]! * l7;
          const v = Math.fround(w[base + col]! + scale * sum);
          w[base + col] = v;
          if (v - v !== 0) nonFinite++;
        }
      } else {
        for (let col = 0, j = 0; col < cols; col++, j += rank) {
          let sum = 0;
          for (let k = 0; k < rank; k++) sum += r[j + k]! * l[k]!;
          const v = Math.fround(w[base + col]! + scale * sum);
          w[base + col] = v;
          if (v - v !== 0) nonFinite++;
        }
      }
      continue;
    }
    acc.fill(0);
    let k0 = 0;
    for (; k0 + 8 <= rank; k0 += 8) {
      const l0 = l[k0]!, l1 = l[k0 + 1]!, l2 = l[k0 + 2]!, l3 = l[k0 + 3]!, l4 = l[k0 + 4]!, l5 = l[k0 + 5]!, l6 = l[k0 + 6]!, l7 = l[k0 + 7]!;
      for (let col = 0, j = k0; col < cols; col++, j += rank) {
        acc[col] = acc[col]! + r[j]! * l0 + r[j + 1]! * l1 + r[j + 2]! * l2 + r[j + 3]! * l3 + r[j + 4]! * l4 + r[j + 5]! * l5 + r[j + 6]! * l6 + r[j + 7]! * l7;
      }
    }
    for (; k0 < rank; k0++) {
      const lk = l[k0]!;
      for (let col = 0, j = k0; col < cols; col++, j += rank) acc[col] = acc[col]! + r[j]! * lk;
    }
    for (let col = 0; col < cols; col++) {
      const v = Math.fround(w[base + col]! + scale * acc[col]!);
      w[base + col] = v;
      if (v - v !== 0) nonFinite++;
    }
  }
  return nonFinite;
}

/**
 * The f64 `[cols, rank]` column factor of {@link loraMergeRowsInPlace}, for callers that split W's
 * rows over several threads and want to build it once.
 */
export function loraMergeColumnFactor(p: LoraMergeInPlaceParams): Float64Array {
  loraMergeSizes(p);
  return columnFactor(p);
}

