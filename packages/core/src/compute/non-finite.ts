/**
 * NaN and ±Inf in encoded float tensors, read from the bit patterns: a value is non-finite exactly
 * when its exponent bits are all ones. Counting on the encoded bytes (not the f32 values before
 * rounding) is what catches an F16/BF16 result that overflows only when it is rounded.
 */
import { InputError } from '../errors.js';
import type { PlannedTensor } from '../plan/types.js';
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

/**
 * The refusal of a computed tensor with NaN/Inf values, or undefined when it has none. `merged.nonFinite`
 * counts the f32 results (what an F32 tensor stores); an F16/BF16 value can still overflow when
 * rounded, so those are counted on the encoded bytes. `override` says how the caller lets it be written anyway.
 */
export function nonFiniteRefusal(t: PlannedTensor, merged: { readonly bytes: Uint8Array; readonly nonFinite: number }, override: string): InputError | undefined {
  const nonFinite = t.dtype === 'F32' ? merged.nonFinite : countNonFiniteEncoded(t.dtype as FloatCodecDtype, merged.bytes);
  if (nonFinite === 0) return undefined;
  const rounded = t.dtype !== 'F32' && merged.nonFinite < nonFinite ? ` once rounded to ${t.dtype}` : '';
  const adapters = t.source.kind === 'merge' ? [...new Set(t.source.deltas.map((d) => d.adapter))] : [];
  const who = adapters.length === 0 ? 'the adapter seems' : `the adapter${adapters.length > 1 ? 's' : ''} ${adapters.join(', ')} seem${adapters.length > 1 ? '' : 's'}`;
  return new InputError('MERGE_NONFINITE', `merging "${t.name}" produced ${nonFinite} NaN/Inf value(s)${rounded}; ${who} to be broken`, {
    subject: t.name,
    hint: `Check the adapter for NaN/Inf weights, or ${override}.`,
  });
}
