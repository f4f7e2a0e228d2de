/**
 * safetensors dtypes and exact f32 ⇄ f16 / bf16 / f32 codecs.
 *
 * All byte layouts are little-endian, as in the file format. Codecs never need the input bytes to
 * be aligned: a tensor's bytes start wherever the header says, often at an odd offset of a buffer.
 */
import { f16BitsToF32Bits, f32Bits, f32BitsToBf16Bits, f32BitsToF16Bits, f32FromBits } from '@lorafuse/kernels/reference';

/**
 * Every dtype string the reference implementation knows, in the order of its `Dtype` enum.
 * That order is increasing alignment, and the reference writer sorts tensors by it (descending).
 */
export const DTYPES = [
  'BOOL',
  'F4',
  'F6_E2M3',
  'F6_E3M2',
  'U8',
  'I8',
  'F8_E5M2',
  'F8_E4M3',
  'F8_E8M0',
  'F8_E4M3FNUZ',
  'F8_E5M2FNUZ',
  'I16',
  'U16',
  'F16',
  'BF16',
  'I32',
  'U32',
  'F32',
  'C64',
  'F64',
  'I64',
  'U64',
] as const;

/** A safetensors dtype string, e.g. `"F32"`, `"BF16"`. */
export type Dtype = (typeof DTYPES)[number];

/** The dtypes lorafuse can decode to and encode from f32 exactly. */
export type FloatCodecDtype = 'F32' | 'F16' | 'BF16';

/** Bits per element of each dtype (`Dtype::bitsize()` in the reference). Sub-byte dtypes pack elements. */
export const DTYPE_BITS: Readonly<Record<Dtype, number>> = {
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  F8_E4M3FNUZ: 8,
  F8_E5M2FNUZ: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  F64: 64,
  I64: 64,
  U64: 64,
};

const DTYPE_RANK: ReadonlyMap<string, number> = new Map(DTYPES.map((d, i) => [d, i]));

/** True if `value` is one of the dtype strings in {@link DTYPES}. */
export function isDtype(value: string): value is Dtype {
  return DTYPE_RANK.has(value);
}

/**
 * Position of `dtype` in the reference `Dtype` enum (0 = `BOOL`). Higher means larger alignment;
 * the reference writer puts higher ranks first.
 */
export function dtypeRank(dtype: Dtype): number {
  return DTYPE_RANK.get(dtype) ?? -1;
}

/**
 * True for real floating-point dtypes (F4, F6_*, F8_*, F16, BF16, F32, F64).
 * C64 (complex) is not counted: a LoRA delta cannot be added to it element-wise as a real number.
 */
export function isFloatDtype(dtype: Dtype): boolean {
  return dtype.startsWith('F') || dtype === 'BF16';
}

/** Bytes per element of a codec dtype. */
export function floatCodecBytes(dtype: FloatCodecDtype): 2 | 4 {
  return dtype === 'F32' ? 4 : 2;
}

// The codecs move raw bit patterns through typed-array views instead of JS numbers, so NaN payloads
// survive decoding and the result never depends on how the engine canonicalises NaN.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
let f16Table: Uint32Array | undefined;

/** f32 bit patterns of all 65536 halves, built once on first use (256 KiB). */
function f16ToF32BitsTable(): Uint32Array {
  if (f16Table === undefined) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32Bits(h);
  }
  return f16Table;
}

/** The f32 value (as a JS number) of the f16 with bit pattern `bits` (0..65535). Exact. */
export function f16BitsToF32(bits: number): number {
  return f32FromBits(f16BitsToF32Bits(bits & 0xffff));
}

/** The f16 bit pattern nearest to `value` (rounded to f32 first), ties to even; overflow gives ±Inf. */
export function f32ToF16Bits(value: number): number {
  return f32BitsToF16Bits(f32Bits(value));
}

/** The f32 value (as a JS number) of the bf16 with bit pattern `bits` (0..65535). Exact. */
export function bf16BitsToF32(bits: number): number {
  return f32FromBits(((bits & 0xffff) << 16) >>> 0);
}

/** The bf16 bit pattern nearest to `value` (rounded to f32 first), ties to even; overflow gives ±Inf. */
export function f32ToBf16Bits(value: number): number {
  return f32BitsToBf16Bits(f32Bits(value));
}

function checkWholeElements(dtype: FloatCodecDtype, byteLength: number): number {
  const size = floatCodecBytes(dtype);
  if (byteLength % size !== 0) {
    throw new RangeError(`${byteLength} bytes is not a whole number of ${dtype} elements (${size} bytes each)`);
  }
  return byteLength / size;
}

/**
 * Decodes little-endian `dtype` elements to f32. `bytes` may start at any byte offset.
 * Exact: every F16 and BF16 value is representable in f32. Returns a new array of
 * `bytes.byteLength / elementSize` values; throws `RangeError` on a partial element.
 */
export function decodeToF32(dtype: FloatCodecDtype, bytes: Uint8Array): Float32Array {
  const count = checkWholeElements(dtype, bytes.byteLength);
  const out = new Float32Array(count);
  if (dtype === 'F32') {
    if (LITTLE_ENDIAN) {
      new Uint8Array(out.buffer).set(bytes);
    } else {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const outBits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) outBits[i] = view.getUint32(4 * i, true);
    }
    return out;
  }
  const outBits = new Uint32Array(out.buffer);
  if (dtype === 'F16') {
    const table = f16ToF32BitsTable();
    for (let i = 0, j = 0; i < count; i++, j += 2) outBits[i] = table[bytes[j]! | (bytes[j + 1]! << 8)]!;
  } else {
    for (let i = 0, j = 0; i < count; i++, j += 2) outBits[i] = ((bytes[j]! << 16) | (bytes[j + 1]! << 24)) >>> 0;
  }
  return out;
}

/**
 * Encodes f32 values as little-endian `dtype` elements, rounding to nearest, ties to even, as
 * PyTorch's `.to(torch.float16 / torch.bfloat16)` does: values past the largest finite number
 * become ±Inf, tiny values become subnormals or ±0, NaN stays NaN. Returns a new array of
 * `values.length * elementSize` bytes.
 */
export function encodeFromF32(dtype: FloatCodecDtype, values: Float32Array): Uint8Array {
  const count = values.length;
  const out = new Uint8Array(count * floatCodecBytes(dtype));
  const inBits = new Uint32Array(values.buffer, values.byteOffset, count);
  if (dtype === 'F32') {
    if (LITTLE_ENDIAN) {
      out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    } else {
      const view = new DataView(out.buffer);
      for (let i = 0; i < count; i++) view.setUint32(4 * i, inBits[i]!, true);
    }
    return out;
  }
  const encode = dtype === 'F16' ? f32BitsToF16Bits : f32BitsToBf16Bits;
  for (let i = 0, j = 0; i < count; i++, j += 2) {
    const h = encode(inBits[i]!);
    out[j] = h & 0xff;
    out[j + 1] = h >>> 8;
  }
  return out;
}
