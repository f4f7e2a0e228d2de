/**
 * What differs between two sets of tensors, and by how much: keys only on one side, shape and dtype
 * mismatches, then per-tensor statistics sorted worst first, and a verdict. The element-wise work is
 * injected ({@link TensorComparer}): the CLI streams byte ranges for identity and runs the compare
 * kernel (WebGPU) or its CPU reference on the rest. One implementation for `diff` and verification.
 */
import type { CompareStats, CompareTolerance } from '@lorafuse/kernels';
import type { TensorRef } from '../safetensors/tensor-ref.js';
import type { Dtype } from '../safetensors/dtype.js';
import { matchTensorSets, type TensorSet } from './tensor-set.js';

/** The element-wise work of a diff, done by the caller (file access, GPU). */
export interface TensorComparer {
  /** Whether two stored tensors of the same dtype and byte length hold the same bytes. */
  bytesEqual(a: TensorRef, b: TensorRef): Promise<boolean>;
  /**
   * Statistics of two F32/F16/BF16 tensors with the same number of elements, compared element by
   * element in f32 (`torch.allclose` rules, see `compareRef` of `@lorafuse/kernels`).
   */
  compare(a: TensorRef, b: TensorRef, tolerance: CompareTolerance): Promise<CompareStats>;
}

/** Options of {@link diffTensorSets}. */
export interface DiffOptions {
  readonly tolerance: CompareTolerance;
  /** Called after each matched pair: bytes of both sides done so far, of all pairs, and the pair's name. */
  readonly onProgress?: (doneBytes: number, totalBytes: number, name: string) => void;
}

/** A tensor's stored name, dtype and shape. */
export interface TensorSummary {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
}

/**
 * `identical`: the same bytes (no statistics computed, even when they hold NaN: the same bits are the
 * same tensor); `within-tolerance`: different bytes, every element within tolerance; `differs`: at
 * least one element outside it (or, for dtypes other than F32/F16/BF16, different bytes).
 */
export type TensorDiffStatus = 'identical' | 'within-tolerance' | 'differs';

/** One tensor present on both sides with the same shape. */
export interface TensorDiff {
  /** The stored name when both sides store it under the same key, else the canonical name. */
  readonly name: string;
  /** The canonical name both sides matched by. */
  readonly key: string;
  readonly a: TensorSummary;
  readonly b: TensorSummary;
  readonly shape: readonly number[];
  readonly status: TensorDiffStatus;
  /** Element-wise statistics; `null` for byte-identical tensors and for dtypes compared bytewise. */
  readonly stats: CompareStats | null;
  /** Why there are no statistics for a tensor that is not identical. */
  readonly note?: string;
  /** As-loaded diffs: how each side's value reached this parameter (`tied-to-wte`, ...). */
  readonly viaA?: string;
  readonly viaB?: string;
}

/** A key stored on one side only. */
export interface OneSidedKey {
  readonly name: string;
  readonly key: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly via?: string;
}

/** A key on both sides with different shapes (not compared). */
export interface ShapeMismatch {
  readonly name: string;
  readonly key: string;
  readonly a: TensorSummary;
  readonly b: TensorSummary;
}

/** The result of {@link diffTensorSets}. */
export interface TensorSetDiff {
  /** Same keys, same shapes, and every tensor identical or within tolerance. Dtypes may differ. */
  readonly equal: boolean;
  readonly tolerance: CompareTolerance;
  readonly onlyInA: readonly OneSidedKey[];
  readonly onlyInB: readonly OneSidedKey[];
  readonly shapeMismatches: readonly ShapeMismatch[];
  /** Tensors of the same shape stored in different dtypes (their values are compared in f32). */
  readonly dtypeMismatches: ReadonlyArray<{ readonly name: string; readonly dtypeA: Dtype; readonly dtypeB: Dtype }>;
  /** Every tensor on both sides with the same shape, worst first. */
  readonly tensors: readonly TensorDiff[];
  readonly counts: { readonly compared: number; readonly identical: number; readonly withinTolerance: number; readonly differs: number };
  /** One line: `equal: ...` or `differs: ...`. */
  readonly verdict: string;
}

const FLOAT_DTYPES: ReadonlySet<string> = new Set(['F32', 'F16', 'BF16']);

const sameShape = (x: readonly number[], y: readonly number[]) => x.length === y.length && x.every((d, i) => d === y[i]);
const summary = (ref: TensorRef): TensorSummary => ({ name: ref.name, dtype: ref.dtype, shape: [...ref.shape] });

/** A number for a verdict line: `1e-6`, `0.01`, `0`. */
export function formatTolerance(x: number): string {
  if (x === 0) return '0';
  return x < 1e-3 || x >= 1e4 ? x.toExponential().replace('e+', 'e') : String(x);
}

/** Orders tensors worst first: differing before within-tolerance before identical; then by max |a-b|, max rel, violations, name. */
export function compareTensorDiffs(x: TensorDiff, y: TensorDiff): number {
  const rank = (t: TensorDiff) => (t.status === 'differs' ? 0 : t.status === 'within-tolerance' ? 1 : 2);
  const abs = (t: TensorDiff) => (t.stats === null ? (t.status === 'differs' ? Infinity : 0) : t.stats.maxAbsDiff);
  const rel = (t: TensorDiff) => (t.stats === null ? 0 : t.stats.maxRelDiff);
  const vio = (t: TensorDiff) => (t.stats === null ? 0 : t.stats.violations);
  return rank(x) - rank(y) || desc(abs(x), abs(y)) || desc(rel(x), rel(y)) || vio(y) - vio(x) || (x.name < y.name ? -1 : x.name > y.name ? 1 : 0);
}

function desc(x: number, y: number): number {
  return x === y ? 0 : x > y ? -1 : 1;
}

/**
 * Diffs two sides by name: keys only in a or only in b, shape mismatches (not compared), and every
 * other pair compared: byte-identical pairs through {@link TensorComparer.bytesEqual} only, the rest
 * element-wise (F32/F16/BF16, mixed dtypes in f32) or, for other dtypes, by bytes.
 */
export async function diffTensorSets(a: TensorSet, b: TensorSet, comparer: TensorComparer, options: DiffOptions): Promise<TensorSetDiff> {
  const { tolerance } = options;
  const match = matchTensorSets(a, b);
  const oneSided = (side: TensorSet) => ({ key, ref }: { key: string; ref: TensorRef }): OneSidedKey => {
    const via = side.via?.get(key);
    return { name: isStoredFormOf(ref.name, key) ? ref.name : key, key, dtype: ref.dtype, shape: [...ref.shape], ...(via ? { via } : {}) };
  };
  const onlyInA = match.onlyInA.map(oneSided(a));
  const onlyInB = match.onlyInB.map(oneSided(b));
  const shapeMismatches: ShapeMismatch[] = [];
  const dtypeMismatches: Array<{ name: string; dtypeA: Dtype; dtypeB: Dtype }> = [];
  const tensors: TensorDiff[] = [];
  const pairs = match.pairs.filter((p) => {
    if (sameShape(p.a.shape, p.b.shape)) return true;
    shapeMismatches.push({ name: displayName(p.key, p.a, p.b), key: p.key, a: summary(p.a), b: summary(p.b) });
    return false;
  });
  const totalBytes = pairs.reduce((n, p) => n + p.a.byteLength + p.b.byteLength, 0);
  let doneBytes = 0;
  for (const { key, a: x, b: y } of pairs) {
    const name = displayName(key, x, y);
    if (x.dtype !== y.dtype) dtypeMismatches.push({ name, dtypeA: x.dtype, dtypeB: y.dtype });
    const via = { ...(a.via?.get(key) ? { viaA: a.via.get(key)! } : {}), ...(b.via?.get(key) ? { viaB: b.via.get(key)! } : {}) };
    const base = { name, key, a: summary(x), b: summary(y), shape: [...x.shape], ...via };
    if (x.dtype === y.dtype && x.byteLength === y.byteLength && (await comparer.bytesEqual(x, y))) {
      tensors.push({ ...base, status: 'identical', stats: null });
    } else if (FLOAT_DTYPES.has(x.dtype) && FLOAT_DTYPES.has(y.dtype)) {
      const stats = await comparer.compare(x, y, tolerance);
      tensors.push({ ...base, status: stats.violations === 0 ? 'within-tolerance' : 'differs', stats });
    } else {
      tensors.push({ ...base, status: 'differs', stats: null, note: `${x.dtype === y.dtype ? x.dtype : `${x.dtype} vs ${y.dtype}`}: only F32, F16 and BF16 are compared by value; the bytes differ` });
    }
    doneBytes += x.byteLength + y.byteLength;
    options.onProgress?.(doneBytes, totalBytes, name);
  }
  tensors.sort(compareTensorDiffs);
  const counts = {
    compared: tensors.length,
    identical: tensors.filter((t) => t.status === 'identical').length,
    withinTolerance: tensors.filter((t) => t.status === 'within-tolerance').length,
    differs: tensors.filter((t) => t.status === 'differs').length,
  };
  const equal = onlyInA.length === 0 && onlyInB.length === 0 && shapeMismatches.length === 0 && counts.differs === 0;
  return { equal, tolerance, onlyInA, onlyInB, shapeMismatches, dtypeMismatches, tensors, counts, verdict: verdictOf(equal, tolerance, onlyInA.length, onlyInB.length, shapeMismatches.length, counts) };
}

/** Whether `name` is how `key` itself is stored (with or without a prefix), not another tensor standing in for it. */
function isStoredFormOf(name: string, key: string): boolean {
  return name === key || key.endsWith(`.${name}`) || name.endsWith(`.${key}`);
}

function displayName(key: string, a: TensorRef, b: TensorRef): string {
  return a.name === b.name && isStoredFormOf(a.name, key) ? a.name : key;
}

function verdictOf(
  equal: boolean,
  tolerance: CompareTolerance,
  onlyA: number,
  onlyB: number,
  shapes: number,
  counts: TensorSetDiff['counts'],
): string {
  const tol = `atol=${formatTolerance(tolerance.atol)}, rtol=${formatTolerance(tolerance.rtol)}${tolerance.equalNan ? ', NaN == NaN' : ''}`;
  if (equal) {
    if (counts.compared === 0) return 'equal: neither side holds a tensor';
    const identical = counts.identical === counts.compared ? 'all byte-identical' : `${counts.identical} byte-identical`;
    return `equal: ${counts.compared} tensor${counts.compared === 1 ? '' : 's'} within ${tol} (${identical})`;
  }
  const parts: string[] = [];
  if (counts.differs > 0) parts.push(`${counts.differs} of ${counts.compared} tensor${counts.compared === 1 ? '' : 's'} outside ${tol}`);
  if (onlyA > 0) parts.push(`${onlyA} key${onlyA === 1 ? '' : 's'} only in a`);
  if (onlyB > 0) parts.push(`${onlyB} key${onlyB === 1 ? '' : 's'} only in b`);
  if (shapes > 0) parts.push(`${shapes} shape mismatch${shapes === 1 ? '' : 'es'}`);
  return `differs: ${parts.join('; ')}`;
}
