/**
 * Bit-exact conversions between f32 and the 16-bit float formats, on bit patterns (u32 / u16 as JS
 * numbers) so NaN payloads survive: the CPU side of what the WGSL kernels do when they read and write
 * 16-bit weights, and what core's safetensors codecs use.
 */

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** The bit pattern of `value` rounded to f32. */
export function f32Bits(value: number): number {
  scratchF32[0] = value;
  return scratchU32[0]!;
}

/** The f32 value whose bit pattern is `bits`. */
export function f32FromBits(bits: number): number {
  scratchU32[0] = bits;
  return scratchF32[0]!;
}

/** f32 bit pattern of the f16 with bit pattern `h` (exact; NaN payload kept, quiet bit as given). */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  // Subnormal half: mant·2^-24 is a normal f32; Math.fround is exact for it.
  return (sign | f32Bits(mant * 2 ** -24)) >>> 0;
}

/**
 * f16 bit pattern nearest to the f32 with bit pattern `w`, ties to even (IEEE 754 default, what
 * PyTorch's `.to(torch.float16)` does). Overflow gives ±Inf; NaN stays NaN (quiet, sign and top
 * payload bits kept).
 */
export function f32BitsToF16Bits(w: number): number {
  const sign = (w >>> 16) & 0x8000;
  const exp = (w >>> 23) & 0xff;
  const mant = w & 0x7fffff;
  if (exp === 0xff) return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  const e = exp - 127;
  if (e >= 16) return sign | 0x7c00;
  if (e >= -14) {
    let h = ((e + 15) << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    // A carry out of the mantissa correctly bumps the exponent, up to 0x7c00 (= Inf).
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h += 1;
    return sign | h;
  }
  // f32 subnormals and anything below half the smallest f16 subnormal round to zero.
  if (exp === 0) return sign;
  const shift = -e - 1;
  if (shift > 24) return sign;
  const m = mant | 0x800000;
  let h = m >>> shift;
  const rest = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rest > half || (rest === half && (h & 1) === 1)) h += 1;
  return sign | h;
}

/** bf16 bit pattern nearest to the f32 with bit pattern `w`, ties to even; NaN stays a quiet NaN. */
export function f32BitsToBf16Bits(w: number): number {
  if ((w & 0x7f800000) === 0x7f800000 && (w & 0x7fffff) !== 0) return ((w >>> 16) | 0x0040) & 0xffff;
  // Adding 0x7fff plus the lowest kept bit rounds ties to even; a carry into the exponent gives Inf.
  return ((w + 0x7fff + ((w >>> 16) & 1)) >>> 16) & 0xffff;
}
