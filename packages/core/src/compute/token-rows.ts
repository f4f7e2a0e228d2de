/**
 * Applying trainable-token rows (PEFT's `index_copy`) to an embedding's bytes: pure, dtype-aware.
 */
import { decodeToF32, encodeFromF32, floatCodecBytes, type FloatCodecDtype } from '../safetensors/dtype.js';
import type { TensorSource } from '../plan/types.js';
import type { ReadTensorBytes } from './cpu-merge.js';

/**
 * A `rows` source's bytes: the base embedding with the adapter's rows copied in, in the base's
 * dtype. Every executor computes trainable tokens with this.
 */
export async function computeTokenRows(source: Extract<TensorSource, { kind: 'rows' }>, read: ReadTensorBytes): Promise<Uint8Array> {
  return applyTokenRows(await read(source.base), source.base.dtype as FloatCodecDtype, await read(source.rows), source.rows.dtype as FloatCodecDtype, source.indices, source.base.shape[1] ?? 1);
}

/**
 * Returns a copy of `base` (row-major `[rows, dim]` in `baseDtype`) with row `indices[k]` replaced by
 * row k of `rows` (`[indices.length, dim]` in `rowsDtype`, converted once if the dtypes differ).
 */
export function applyTokenRows(base: Uint8Array, baseDtype: FloatCodecDtype, rows: Uint8Array, rowsDtype: FloatCodecDtype, indices: readonly number[], dim: number): Uint8Array {
  const out = base.slice();
  const rowBytes = dim * floatCodecBytes(baseDtype);
  const src = rowsDtype === baseDtype ? rows : encodeFromF32(baseDtype, decodeToF32(rowsDtype, rows));
  indices.forEach((index, k) => out.set(src.subarray(k * rowBytes, (k + 1) * rowBytes), index * rowBytes));
  return out;
}
