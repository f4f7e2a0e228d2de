/**
 * Adding trained `lora_B` biases to a module's bias (PEFT's `lora_bias` merge): pure, dtype-aware.
 */
import type { TensorSource } from '../plan/types.js';
import { decodeToF32, encodeFromF32, type FloatCodecDtype } from '../safetensors/dtype.js';
import type { ReadTensorBytes } from './cpu-merge.js';

/** One `lora_B.bias` vector's bytes, its dtype and the module's LoRA scale. */
export interface LoraBiasInput {
  readonly bytes: Uint8Array;
  readonly dtype: FloatCodecDtype;
  readonly scale: number;
}

/**
 * `b + Σ scale·lora_B.bias` for a bias `[n]` in `baseDtype`: summed in f64, rounded once to f32 (as
 * the weight merge is), then once to `baseDtype`. Returns the bytes and the count of NaN/Inf values.
 */
export function applyLoraBias(base: Uint8Array, baseDtype: FloatCodecDtype, terms: readonly LoraBiasInput[]): { bytes: Uint8Array; nonFinite: number } {
  const b = decodeToF32(baseDtype, base);
  const out = new Float32Array(b.length);
  const decoded = terms.map((t) => {
    const v = decodeToF32(t.dtype, t.bytes);
    if (v.length !== b.length) throw new RangeError(`applyLoraBias: a lora_B bias has ${v.length} values, the bias ${b.length}`);
    return { v, scale: t.scale };
  });
  let nonFinite = 0;
  for (let i = 0; i < b.length; i++) {
    let sum = b[i]!;
    for (const t of decoded) sum += t.scale * t.v[i]!;
    out[i] = sum;
    if (!Number.isFinite(out[i])) nonFinite++;
  }
  return { bytes: encodeFromF32(baseDtype, out), nonFinite };
}

/** A planned `bias` source's bytes, its inputs read with `read` (small vectors: always on the CPU). */
export async function computeLoraBias(source: Extract<TensorSource, { kind: 'bias' }>, read: ReadTensorBytes): Promise<{ bytes: Uint8Array; nonFinite: number }> {
  const terms = await Promise.all(source.terms.map(async (t) => ({ bytes: await read(t.bias), dtype: t.bias.dtype as FloatCodecDtype, scale: t.scale })));
  return applyLoraBias(await read(source.base), source.base.dtype as FloatCodecDtype, terms);
}
