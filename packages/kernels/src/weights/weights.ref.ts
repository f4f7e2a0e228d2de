/**
 * CPU twins of the weight kernels: the same words, the same f32 operations in the same order, the
 * same rounding (ties to even) and the same untouched high half of a 16-bit W's last word. Only
 * fused multiply-adds on a GPU can make the last bit differ.
 */
import { doraScaleRef } from '../dora-scale/dora-scale.ref.js';
import { f16BitsToF32Bits, f32Bits, f32BitsToBf16Bits, f32BitsToF16Bits, f32FromBits } from '../float-bits.js';
import { DORA_TERMS_PER_PASS, finishWeightStats, TERMS_PER_PASS, weightWords, type WeightElement, type WeightLayout, type WeightSums } from './weight-view.js';

/** A term on the host: A and B row-major f32 (shapes as in {@link LoraFactors}). */
export interface RefFactors {
  readonly a: Float32Array;
  readonly b: Float32Array;
  readonly rank: number;
  readonly scale: number;
}

/** Inputs of {@link applyTermsRef}. */
export interface ApplyTermsRefParams {
  /** W's words as the kernel binds them (`ceil(rows·cols·bytes / 4)` words); not modified. */
  readonly w: Uint8Array;
  readonly rows: number;
  readonly cols: number;
  readonly layout: WeightLayout;
  readonly element: WeightElement;
  readonly terms: readonly RefFactors[];
  /** The drift-free rebuild: start from these bytes (same layout) instead of W. */
  readonly pristine?: Uint8Array;
}

const fr = Math.fround;

function decode(element: WeightElement, half: number): number {
  return element === 'f16' ? f32FromBits(f16BitsToF32Bits(half)) : f32FromBits((half << 16) >>> 0);
}

function encode(element: WeightElement, value: number): number {
  return element === 'f16' ? f32BitsToF16Bits(f32Bits(value)) : f32BitsToBf16Bits(f32Bits(value));
}

function termDelta(term: RefFactors, layout: WeightLayout, rows: number, cols: number, row: number, col: number): number {
  let acc = 0;
  const r = term.rank;
  for (let k = 0; k < r; k++) {
    const product = layout === 'in-out' ? fr(term.a[k * rows + row]! * term.b[col * r + k]!) : fr(term.b[row * r + k]! * term.a[k * cols + col]!);
    acc = fr(acc + product);
  }
  return fr(fr(term.scale) * acc);
}

/** Σ of a group's terms at element e, in the kernel's order. */
function groupDelta(group: readonly RefFactors[], layout: WeightLayout, rows: number, cols: number, e: number): number {
  const row = Math.floor(e / cols);
  const col = e % cols;
  let d = 0;
  for (const term of group) d = fr(d + termDelta(term, layout, rows, cols, row, col));
  return d;
}

/**
 * W after `merge`/`swap`/`rebuild` with `terms` (negate a term's scale for unmerge), as new bytes.
 * Terms go in groups of {@link TERMS_PER_PASS}, each group one rounding, as the kernel does.
 */
export function applyTermsRef(params: ApplyTermsRefParams): Uint8Array {
  const { rows, cols, layout, element } = params;
  const words = weightWords(params);
  const out = new Uint8Array(words * 4);
  out.set(params.w.subarray(0, words * 4));
  const view = new DataView(out.buffer);
  const n = rows * cols;
  const groups: RefFactors[][] = [];
  for (let i = 0; i < params.terms.length; i += TERMS_PER_PASS) groups.push(params.terms.slice(i, i + TERMS_PER_PASS));
  if (groups.length === 0 && params.pristine !== undefined) groups.push([]);
  const delta = (group: readonly RefFactors[], e: number) => groupDelta(group, layout, rows, cols, e);
  groups.forEach((group, g) => {
    const src = g === 0 && params.pristine !== undefined ? new DataView(params.pristine.buffer, params.pristine.byteOffset, words * 4) : view;
    if (element === 'f32') {
      for (let e = 0; e < n; e++) view.setUint32(e * 4, f32Bits(fr(f32FromBits(src.getUint32(e * 4, true)) + delta(group, e))), true);
      return;
    }
    for (let e = 0; e < n; e++) view.setUint16(e * 2, encode(element, fr(decode(element, src.getUint16(e * 2, true)) + delta(group, e))), true);
  });
  return out;
}

/** What {@link inspectRef} measures (the kernel's `WeightStats`, in f64). */
export interface InspectRefResult {
  readonly nonFinite: number;
  readonly referenceNonFinite: number;
  readonly maxAbsDiff: number;
  readonly cosine: number;
  readonly norm: number;
}

/** The inspection on the host, sums in f64. */
export function inspectRef(w: Uint8Array, element: WeightElement, elements: number, reference?: Uint8Array): InspectRefResult {
  const values = (bytes: Uint8Array) => {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return Array.from({ length: elements }, (_, e) => (element === 'f32' ? view.getFloat32(e * 4, true) : decode(element, view.getUint16(e * 2, true))));
  };
  const wv = values(w);
  const rv = reference === undefined ? undefined : values(reference);
  const sums: WeightSums = { nonFinite: 0, referenceNonFinite: 0, maxAbsDiff: 0, dot: 0, ww: 0, rr: 0 };
  for (let e = 0; e < elements; e++) {
    const v = wv[e]!;
    if (!Number.isFinite(v)) sums.nonFinite++;
    if (rv === undefined) {
      if (Number.isFinite(v)) sums.ww += v * v;
      continue;
    }
    const r = rv[e]!;
    if (!Number.isFinite(r)) sums.referenceNonFinite++;
    if (Number.isFinite(v) && Number.isFinite(r)) {
      sums.maxAbsDiff = Math.max(sums.maxAbsDiff, Math.abs(v - r));
      sums.dot += v * r;
      sums.ww += v * v;
      sums.rr += r * r;
    }
  }
  return finishWeightStats(sums, rv !== undefined);
}

/** Inputs of {@link applyDoraRef}: those of {@link applyTermsRef} and the magnitude vector. */
export interface ApplyDoraRefParams extends ApplyTermsRefParams {
  /** m, one value per output feature (rows for `out-in`, columns for `in-out`). */
  readonly magnitude: ArrayLike<number>;
}

/**
 * W after `mergeDora`/`rebuildDora`, as new bytes: V = source + Σ terms in f32 exactly as the
 * kernel forms it, scaled per feature by `doraScaleRef` (the CPU executors' DoRA step: its norms
 * are summed in f64, the kernel's in f32, hence the kernel checks' small tolerance), then rounded
 * once to the element type; the high half of an odd 16-bit W's last word is kept.
 * @throws RangeError past {@link DORA_TERMS_PER_PASS} terms or for a magnitude of the wrong length.
 */
export function applyDoraRef(params: ApplyDoraRefParams): Uint8Array {
  const { rows, cols, layout, element, terms } = params;
  if (terms.length > DORA_TERMS_PER_PASS) throw new RangeError(`applyDoraRef: ${terms.length} terms; DoRA adds at most ${DORA_TERMS_PER_PASS} in one pass.`);
  const words = weightWords(params);
  const out = new Uint8Array(words * 4);
  out.set(params.w.subarray(0, words * 4));
  const view = new DataView(out.buffer);
  const srcBytes = params.pristine ?? params.w;
  const src = new DataView(srcBytes.buffer, srcBytes.byteOffset, words * 4);
  const n = rows * cols;
  const v = new Float32Array(n);
  for (let e = 0; e < n; e++) {
    const base = element === 'f32' ? f32FromBits(src.getUint32(e * 4, true)) : decode(element, src.getUint16(e * 2, true));
    v[e] = fr(base + groupDelta(terms, layout, rows, cols, e));
  }
  doraScaleRef({ w: v, rows, cols, magnitude: params.magnitude, featureAxis: layout === 'out-in' ? 'row' : 'column' });
  for (let e = 0; e < n; e++) {
    if (element === 'f32') view.setUint32(e * 4, f32Bits(v[e]!), true);
    else view.setUint16(e * 2, encode(element, v[e]!), true);
  }
  return out;
}
