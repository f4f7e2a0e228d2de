/**
 * Computing one planned merge on the CPU with the kernels' reference (f64 accumulation, one rounding
 * to f32, then one rounding to the base dtype). The same math the WebGPU kernel is tested against.
 */
import { loraMergeRef } from '@lorafuse/kernels';
import { decodeToF32, encodeFromF32, type FloatCodecDtype } from '../safetensors/dtype.js';
import type { TensorRef, TensorSource } from './merge-plan.js';

/** Reads a tensor's bytes (by file range). */
export type ReadTensorBytes = (ref: TensorRef) => Promise<Uint8Array>;

/** Merged tensor bytes in the output dtype, and the count of NaN/Inf values produced. */
export interface CpuMergeResult {
  readonly bytes: Uint8Array;
  readonly nonFinite: number;
}

/** Computes `base + Σ scale · delta` for a `merge` source, encoded as `outDtype`. */
export async function mergeOnCpu(source: Extract<TensorSource, { kind: 'merge' }>, outDtype: FloatCodecDtype, read: ReadTensorBytes): Promise<CpuMergeResult> {
  let w = decodeToF32(source.base.dtype as FloatCodecDtype, await read(source.base));
  for (const d of source.deltas) {
    const a = decodeToF32(d.a.dtype as FloatCodecDtype, await read(d.a));
    const b = decodeToF32(d.b.dtype as FloatCodecDtype, await read(d.b));
    w = loraMergeRef({ w, a, b, rows: d.rows, cols: d.cols, rank: d.rank, orientation: d.orientation, scale: d.scale });
  }
  let nonFinite = 0;
  for (let i = 0; i < w.length; i++) if (!Number.isFinite(w[i]!)) nonFinite++;
  return { bytes: encodeFromF32(outDtype, w), nonFinite };
}
