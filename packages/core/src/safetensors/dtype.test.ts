import { describe, expect, it } from 'vitest';
import {
  bf16BitsToF32,
  decodeToF32,
  DTYPE_BITS,
  DTYPES,
  dtypeRank,
  encodeFromF32,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  isDtype,
  isFloatDtype,
} from './dtype.js';

const ALL_U16 = Uint16Array.from({ length: 65536 }, (_, i) => i);

/** Every 16-bit pattern as little-endian bytes, in order. */
function allPatternsLE(): Uint8Array {
  const out = new Uint8Array(2 * 65536);
  for (let i = 0; i < 65536; i++) {
    out[2 * i] = i & 0xff;
    out[2 * i + 1] = i >>> 8;
  }
  return out;
}

function u16At(bytes: Uint8Array, i: number): number {
  return bytes[2 * i]! | (bytes[2 * i + 1]! << 8);
}

const isF16NaN = (h: number): boolean => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
const isBf16NaN = (h: number): boolean => (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;

/** A JS number with the given f32 bit pattern. */
function f32(bits: number): number {
  return new Float32Array(new Uint32Array([bits]).buffer)[0]!;
}

/**
 * Independent oracle: round the f32 value x to a binary float with `mantBits` fraction bits,
 * minimum normal exponent `emin` and largest finite `max`, ties to even, by scaling in f64
 * (exact for these widths).
 */
function roundOracle(x: number, mantBits: number, emin: number, max: number): number {
  if (Number.isNaN(x) || x === 0 || !Number.isFinite(x)) return x;
  const a = Math.abs(x);
  let e = Math.floor(Math.log2(a));
  while (2 ** e > a) e--;
  while (2 ** (e + 1) <= a) e++;
  const ulp = 2 ** (Math.max(e, emin) - mantBits);
  const q = a / ulp;
  const fl = Math.floor(q);
  const r = q - fl;
  const n = r > 0.5 ? fl + 1 : r < 0.5 ? fl : fl % 2 === 0 ? fl : fl + 1;
  const v = n * ulp > max ? Infinity : n * ulp;
  return x < 0 ? -v : v;
}

describe('dtype table', () => {
  it('lists all 22 reference dtypes in enum order with their bit widths', () => {
    expect(DTYPES).toHaveLength(22);
    expect(DTYPES[0]).toBe('BOOL');
    expect(DTYPES.at(-1)).toBe('U64');
    expect(DTYPE_BITS.F4).toBe(4);
    expect(DTYPE_BITS.F6_E2M3).toBe(6);
    expect(DTYPE_BITS.BF16).toBe(16);
    expect(DTYPE_BITS.C64).toBe(64);
    expect(dtypeRank('F32')).toBeGreaterThan(dtypeRank('BF16'));
    expect(dtypeRank('BF16')).toBeGreaterThan(dtypeRank('F16'));
    expect(dtypeRank('F16')).toBeGreaterThan(dtypeRank('I8'));
    // Byte alignment (bits rounded up to whole bytes) never decreases along the enum.
    const align = (i: number): number => Math.ceil(DTYPE_BITS[DTYPES[i]!] / 8);
    for (let i = 1; i < DTYPES.length; i++) expect(align(i)).toBeGreaterThanOrEqual(align(i - 1));
  });

  it('recognises dtype strings and float dtypes', () => {
    expect(isDtype('F32')).toBe(true);
    expect(isDtype('f32')).toBe(false);
    expect(isDtype('FP32')).toBe(false);
    expect(DTYPES.filter(isFloatDtype)).toEqual(['F4', 'F6_E2M3', 'F6_E3M2', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'F8_E4M3FNUZ', 'F8_E5M2FNUZ', 'F16', 'BF16', 'F32', 'F64']);
  });
});

describe('f16', () => {
  it('round-trips all 65536 bit patterns through decodeToF32 / encodeFromF32 (NaN payload aside)', () => {
    const bytes = allPatternsLE();
    const values = decodeToF32('F16', bytes);
    const back = encodeFromF32('F16', values);
    let nans = 0;
    for (let h = 0; h < 65536; h++) {
      const got = u16At(back, h);
      if (isF16NaN(h)) {
        nans++;
        expect(Number.isNaN(values[h])).toBe(true);
        expect(isF16NaN(got) && (got & 0x8000) === (h & 0x8000)).toBe(true);
      } else if (got !== h) {
        throw new Error(`f16 0x${h.toString(16)} came back as 0x${got.toString(16)}`);
      }
    }
    expect(nans).toBe(2 * 1023);
  });

  it('scalar helpers agree with the array codecs on all patterns', () => {
    const values = decodeToF32('F16', allPatternsLE());
    for (const h of ALL_U16) {
      const v = f16BitsToF32(h);
      if (isF16NaN(h)) expect(Number.isNaN(v)).toBe(true);
      else if (!Object.is(v, values[h])) throw new Error(`0x${h.toString(16)}: ${v} vs ${values[h]}`);
      if (!isF16NaN(h) && f32ToF16Bits(v) !== h) throw new Error(`f32ToF16Bits(${v}) != 0x${h.toString(16)}`);
    }
  });

  it.each<[string, number, number]>([
    ['1', 1, 0x3c00],
    ['-2', -2, 0xc000],
    ['+0', 0, 0x0000],
    ['-0', -0, 0x8000],
    ['1 + 2^-11 (tie) rounds to even 1', 1 + 2 ** -11, 0x3c00],
    ['1 + 3·2^-11 (tie) rounds to even 1 + 2^-9', 1 + 3 * 2 ** -11, 0x3c02],
    ['just above the tie rounds up', f32(0x3f801001), 0x3c01],
    ['max finite 65504', 65504, 0x7bff],
    ['65519.99 rounds down to 65504', Math.fround(65519.99), 0x7bff],
    ['65520 (tie with 2^16) overflows to Inf', 65520, 0x7c00],
    ['-1e6 overflows to -Inf', -1e6, 0xfc00],
    ['Inf', Infinity, 0x7c00],
    ['-Inf', -Infinity, 0xfc00],
    ['smallest normal 2^-14', 2 ** -14, 0x0400],
    ['largest subnormal 1023·2^-24', 1023 * 2 ** -24, 0x03ff],
    ['smallest subnormal 2^-24', 2 ** -24, 0x0001],
    ['2^-25 (tie with 0) rounds to even 0', 2 ** -25, 0x0000],
    ['just above 2^-25 rounds up to 2^-24', f32(0x33000001), 0x0001],
    ['3·2^-25 (tie) rounds to even 2·2^-24', 3 * 2 ** -25, 0x0002],
    ['-2^-26 underflows to -0', -(2 ** -26), 0x8000],
    ['f32 subnormal underflows to 0', f32(0x00000001), 0x0000],
    ['subnormal rounding into the smallest normal', f32(0x387fe000), 0x0400],
    ['NaN is the canonical quiet NaN', NaN, 0x7e00],
  ])('f32ToF16Bits: %s', (_what, value, bits) => {
    expect(f32ToF16Bits(value)).toBe(bits);
    expect(u16At(encodeFromF32('F16', new Float32Array([value])), 0)).toBe(bits);
  });

  it('matches an independent rounding oracle on 200k random f32 values', () => {
    let seed = 12345;
    const next = (): number => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return seed;
    };
    const values = new Float32Array(200_000);
    const bits = new Uint32Array(values.buffer);
    for (let i = 0; i < bits.length; i++) {
      // Bias exponents towards the f16 range, where all the rounding happens.
      const r = next();
      bits[i] = i % 2 === 0 ? r : ((r & 0x807fffff) | (((r >>> 23) % 48) + 96) << 23) >>> 0;
    }
    const encoded = encodeFromF32('F16', values);
    for (let i = 0; i < values.length; i++) {
      const x = values[i]!;
      const got = f16BitsToF32(u16At(encoded, i));
      const want = roundOracle(x, 10, -14, 65504);
      if (Number.isNaN(x) ? !Number.isNaN(got) : !Object.is(got, want)) throw new Error(`f16(${x}) = ${got}, want ${want}`);
    }
  });
});

describe('bf16', () => {
  it('round-trips all 65536 bit patterns through decodeToF32 / encodeFromF32 (NaN payload aside)', () => {
    const bytes = allPatternsLE();
    const values = decodeToF32('BF16', bytes);
    const back = encodeFromF32('BF16', values);
    for (let h = 0; h < 65536; h++) {
      const got = u16At(back, h);
      if (isBf16NaN(h)) {
        expect(Number.isNaN(values[h])).toBe(true);
        expect(isBf16NaN(got) && (got & 0x8000) === (h & 0x8000)).toBe(true);
      } else if (got !== h) {
        throw new Error(`bf16 0x${h.toString(16)} came back as 0x${got.toString(16)}`);
      }
    }
  });

  it('scalar helpers agree with the array codecs on all patterns', () => {
    const values = decodeToF32('BF16', allPatternsLE());
    for (const h of ALL_U16) {
      const v = bf16BitsToF32(h);
      if (isBf16NaN(h)) expect(Number.isNaN(v)).toBe(true);
      else if (!Object.is(v, values[h]) || f32ToBf16Bits(v) !== h) throw new Error(`0x${h.toString(16)}`);
    }
  });

  it.each<[string, number, number]>([
    ['1', 1, 0x3f80],
    ['-0', -0, 0x8000],
    ['1 + 2^-8 (tie) rounds to even 1', 1 + 2 ** -8, 0x3f80],
    ['1 + 3·2^-8 (tie) rounds to even 1 + 2^-6', 1 + 3 * 2 ** -8, 0x3f82],
    ['just above the tie rounds up', f32(0x3f808001), 0x3f81],
    ['max finite bf16', f32(0x7f7f0000), 0x7f7f],
    ['f32 max rounds up to Inf', f32(0x7f7fffff), 0x7f80],
    ['just below the overflow tie stays finite', f32(0x7f7f7fff), 0x7f7f],
    ['-Inf', -Infinity, 0xff80],
    ['smallest bf16 subnormal 2^-133', 2 ** -133, 0x0001],
    ['2^-134 (tie with 0) rounds to even 0', 2 ** -134, 0x0000],
    ['3·2^-134 (tie) rounds to even 2·2^-133', 3 * 2 ** -134, 0x0002],
    ['NaN stays NaN', NaN, 0x7fc0],
  ])('f32ToBf16Bits: %s', (_what, value, bits) => {
    expect(f32ToBf16Bits(value)).toBe(bits);
    expect(u16At(encodeFromF32('BF16', new Float32Array([value])), 0)).toBe(bits);
  });

  it('keeps NaN a NaN even when rounding would carry into the exponent', () => {
    // 0x7fffffff + rounding bias would wrap to 0x8000 (-0) without the NaN check.
    const back = encodeFromF32('BF16', new Float32Array(new Uint32Array([0x7fffffff, 0xffffffff, 0x7f800001]).buffer));
    for (let i = 0; i < 3; i++) expect(isBf16NaN(u16At(back, i))).toBe(true);
  });

  it('matches an independent rounding oracle on 200k random f32 values', () => {
    let seed = 777;
    const values = new Float32Array(200_000);
    const bits = new Uint32Array(values.buffer);
    for (let i = 0; i < bits.length; i++) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      bits[i] = seed;
    }
    const encoded = encodeFromF32('BF16', values);
    const maxBf16 = bf16BitsToF32(0x7f7f);
    for (let i = 0; i < values.length; i++) {
      const x = values[i]!;
      const got = bf16BitsToF32(u16At(encoded, i));
      const want = roundOracle(x, 7, -126, maxBf16);
      if (Number.isNaN(x) ? !Number.isNaN(got) : !Object.is(got, want)) throw new Error(`bf16(${x}) = ${got}, want ${want}`);
    }
  });
});

describe('f32 and alignment', () => {
  it('decodes little-endian f32 from an unaligned offset, bit-exact (NaN payload included)', () => {
    const buffer = new Uint8Array(1 + 12);
    const bytes = buffer.subarray(1);
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    view.setFloat32(0, 1.5, true);
    view.setUint32(4, 0x7fa00001, true);
    view.setFloat32(8, -0, true);
    const values = decodeToF32('F32', bytes);
    expect(values[0]).toBe(1.5);
    expect(new Uint32Array(values.buffer)[1]).toBe(0x7fa00001);
    expect(Object.is(values[2], -0)).toBe(true);
    expect([...encodeFromF32('F32', values)]).toEqual([...bytes]);
  });

  it('decodes f16 and bf16 from odd offsets', () => {
    const buffer = new Uint8Array([0xaa, 0x00, 0x3c, 0x00, 0xc0, 0xaa]);
    expect([...decodeToF32('F16', buffer.subarray(1, 5))]).toEqual([1, -2]);
    const bf = new Uint8Array([0xaa, 0x80, 0x3f, 0x00, 0xc0]);
    expect([...decodeToF32('BF16', bf.subarray(1))]).toEqual([1, -2]);
  });

  it('encodes a Float32Array view that starts inside its buffer', () => {
    const all = new Float32Array([9, 1, -2]);
    expect([...encodeFromF32('F16', all.subarray(1))]).toEqual([0x00, 0x3c, 0x00, 0xc0]);
    expect([...encodeFromF32('F32', all.subarray(2))]).toEqual([0x00, 0x00, 0x00, 0xc0]);
  });

  it('rejects a partial element', () => {
    expect(() => decodeToF32('F32', new Uint8Array(6))).toThrow(RangeError);
    expect(() => decodeToF32('BF16', new Uint8Array(3))).toThrow(RangeError);
  });
});
