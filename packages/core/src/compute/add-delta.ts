/**
 * The host half of a GPU merge: the kernels compute ΔW = Σ scale·BA in f32, and W + ΔW (then DoRA's
 * step) happens here, so every device that hands back ΔW (Chromium, Dawn, the browser app) rounds
 * the same way and writes the same bytes.
 */
import { decodeToF32, encodeFromF32, type FloatCodecDtype } from '../safetensors/dtype.js';
import type { TensorSource } from '../plan/types.js';
import { applyDoraStep, type CpuMergeResult, type ReadTensorBytes } from './cpu-merge.js';

type MergeSource = Extract<TensorSource, { kind: 'merge' }>;
/** Merged bytes in the output dtype and the NaN/Inf count of the f32 results. */
type MergedBytes = CpuMergeResult;

/**
 * W + ΔW in f32 (each sum rounded to f32, as the kernel's own `+=` does), in `outDtype`, with the
 * NaN/Inf count of the result. `wBytes` (f32, aligned) is summed in place and returned: pass bytes
 * nobody else holds, such as a fresh read of the base file.
 */
export function addDelta(wBytes: Uint8Array, wDtype: FloatCodecDtype, deltaBytes: Uint8Array, outDtype: FloatCodecDtype): MergedBytes {
  const { w, nonFinite, inPlace } = sumDelta(wBytes, wDtype, deltaBytes);
  return { bytes: inPlace && outDtype === 'F32' ? wBytes : encodeFromF32(outDtype, w), nonFinite };
}

/**
 * {@link addDelta} followed by the source's DoRA step (core's `applyDoraStep`, the CPU executor's own)
 * before the one rounding to `outDtype`; without a DoRA step, exactly {@link addDelta}.
 */
export async function addDeltaThenDora(source: MergeSource, wBytes: Uint8Array, deltaBytes: Uint8Array, outDtype: FloatCodecDtype, read: ReadTensorBytes): Promise<MergedBytes> {
  if (!source.dora) return addDelta(wBytes, source.base.dtype as FloatCodecDtype, deltaBytes, outDtype);
  const { w, inPlace } = sumDelta(wBytes, source.base.dtype as FloatCodecDtype, deltaBytes);
  const nonFinite = (await applyDoraStep(source, w, read))!;
  return { bytes: inPlace && outDtype === 'F32' ? wBytes : encodeFromF32(outDtype, w), nonFinite };
}

function sumDelta(wBytes: Uint8Array, wDtype: FloatCodecDtype, deltaBytes: Uint8Array): { w: Float32Array; nonFinite: number; inPlace: boolean } {
  const aligned = deltaBytes.byteOffset % 4 === 0 ? deltaBytes : deltaBytes.slice();
  const delta = new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
  const inPlace = wDtype === 'F32' && wBytes.byteOffset % 4 === 0;
  const w = inPlace ? new Float32Array(wBytes.buffer, wBytes.byteOffset, wBytes.byteLength / 4) : decodeToF32(wDtype, wBytes);
  if (w.length !== delta.length) throw new Error(`internal: ΔW has ${delta.length} values for a W of ${w.length}`);
  let nonFinite = 0;
  for (let i = 0; i < w.length; i++) {
    const v = Math.fround(w[i]! + delta[i]!);
    w[i] = v;
    if (v - v !== 0) nonFinite++;
  }
  return { w, nonFinite, inPlace };
}
