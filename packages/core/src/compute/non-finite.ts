/**
 * NaN and ±Inf in encoded float tensors, read from the bit patterns: a value is non-finite exactly
 * when its exponent bits are all ones. Counting on the encoded bytes (not the f32 values before
 * rounding) is what catches an F16/BF16 result that overflows only when it is rounded.
 */
import type { FloatCodecDtype } from '../safetensors/dtype.js';

/** NaN/Inf values among the little-endian `dtype` values in `bytes`. */
export function countNonFiniteEncoded(dtype: FloatCodecDtype, bytes: Uint8Array): number {
  let n = 0;
  if (dtype === 'F32') {
    const count = bytes.byteLength >>> 2;
    const view = bytes.byteOffset % 4 === 0 ? new Uint32Array(bytes.buffer, bytes.byteOffset, count) : new Uint32Array(bytes.slice(0, count * 4).buffer);
    for (let i = 0; i < count; i++) if ((view[i]! & 0x7f800000) === 0x7f800000) n++;
    return n;
  }
  const count = bytes.byteLength >>> 1;
  const view = bytes.byteOffset % 2 === 0 ? new Uint16Array(bytes.buffer, bytes.byteOffset, count) : new Uint16Array(bytes.slice(0, count * 2).buffer);
  const mask = dtype === 'F16' ? 0x7c00 : 0x7f80;
  for (let i = 0; i < count; i++) if ((view[i]! & mask) === mask) n++;
  return n;
}
