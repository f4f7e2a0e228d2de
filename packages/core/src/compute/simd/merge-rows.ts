/**
 * {@link loraMergeRowsInPlace} on WebAssembly SIMD (merge-rows.wat): the same result bit for bit,
 * about 3–4× faster (two columns per f64x2, four pairs side by side). W is merged a block of rows
 * at a time in the module's memory and copied back; a block that produced any NaN or ±Inf is left
 * as it was and redone by the JavaScript loop, so even a NaN's payload is the reference's. Where
 * WebAssembly SIMD is missing, everything runs on the JavaScript loop.
 */
import { checkMergeRows, loraMergeColumnFactor, loraMergeRowsInPlace, type LoraMergeInPlaceParams } from '../merge-rows.js';
import { WASM_BYTES } from './merge-rows-wasm.js';

interface Kernel {
  readonly memory: WebAssembly.Memory;
  mergeRows(w: number, rows: number, cols: number, l: number, lRow: number, lK: number, rp: number, rank: number, scale: number, lv: number): number;
}

/** Bytes of W merged per block: small enough to stay in a core's L2 cache between copy-in and copy-out. */
const BLOCK_BYTES = 256 * 1024;

// One instance per thread (each worker has its own module scope), made on first use.
let kernel: Kernel | null | undefined;

function simdKernel(): Kernel | null {
  if (kernel !== undefined) return kernel;
  try {
    // Synchronous compilation is allowed for a module this small, on a browser's main thread too.
    const instance = new WebAssembly.Instance(new WebAssembly.Module(WASM_BYTES));
    kernel = instance.exports as unknown as Kernel;
  } catch {
    kernel = null; // no WebAssembly, or no SIMD in it
  }
  return kernel;
}

/** Whether merges run on WebAssembly SIMD in this thread (else on the JavaScript loop). */
export function simdMergeAvailable(): boolean {
  return simdKernel() !== null;
}

const align16 = (n: number) => Math.ceil(n / 16) * 16;

/**
 * {@link loraMergeRowsInPlace}, the same arguments and the same bytes: rows `[rowStart, rowEnd)` of
 * `p.w` updated in place; returns the count of NaN/Inf values written.
 */
export function loraMergeRowsSimd(p: LoraMergeInPlaceParams, rowStart = 0, rowEnd = p.rows): number {
  checkMergeRows(p, rowStart, rowEnd);
  const k = simdKernel();
  const { rows, cols, rank, w } = p;
  if (k === null || cols === 0 || rowStart === rowEnd) return loraMergeRowsInPlace(p, rowStart, rowEnd);
  const column = loraMergeColumnFactor(p);
  const linear = p.orientation === 'linear';
  const pairs = Math.ceil(cols / 2);
  const rpBytes = pairs * rank * 16;
  const lvAt = rpBytes;
  const lAt = lvAt + rank * 16;
  const lBytes = rows * rank * 4;
  const blockAt = align16(lAt + lBytes);
  const blockRows = Math.max(1, Math.floor(BLOCK_BYTES / (cols * 4)));
  const needed = blockAt + blockRows * cols * 4;
  const have = k.memory.buffer.byteLength;
  if (needed > have) k.memory.grow(Math.ceil((needed - have) / 65536));
  const buffer = k.memory.buffer;

  // R in column pairs: R[k, col] is column[col·rank + k] (the loop's own layout of the factor).
  const rp = new Float64Array(buffer, 0, pairs * rank * 2);
  for (let pair = 0; pair < pairs; pair++) {
    const c0 = 2 * pair;
    const hasSecond = c0 + 1 < cols;
    for (let kk = 0, at = pair * rank * 2; kk < rank; kk++, at += 2) {
      rp[at] = column[c0 * rank + kk]!;
      rp[at + 1] = hasSecond ? column[(c0 + 1) * rank + kk]! : 0;
    }
  }
  // L[row, k]: B[row, k] for linear (W [out, in]), A[k, row] for transposed (W [in, out]).
  new Float32Array(buffer, lAt, rows * rank).set(linear ? p.b.subarray(0, rows * rank) : p.a.subarray(0, rank * rows));
  const [lRow, lK] = linear ? [rank, 1] : [1, rows];
  const block = new Float32Array(buffer, blockAt, blockRows * cols);
  let nonFinite = 0;
  for (let r0 = rowStart; r0 < rowEnd; r0 += blockRows) {
    const n = Math.min(blockRows, rowEnd - r0);
    const values = w.subarray(r0 * cols, (r0 + n) * cols);
    block.set(values);
    const bad = k.mergeRows(blockAt, n, cols, lAt + r0 * lRow * 4, lRow, lK, 0, rank, p.scale, lvAt);
    if (bad === 0) values.set(block.subarray(0, n * cols));
    else nonFinite += loraMergeRowsInPlace(p, r0, r0 + n, column);
  }
  return nonFinite;
}
