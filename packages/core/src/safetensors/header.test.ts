import { describe, expect, it } from 'vitest';
import { memorySource, type ByteSource } from '../io.js';
import { SafetensorsFormatError, type SafetensorsFormatErrorCode } from './errors.js';
import { parseSafetensorsBytes, parseSafetensorsHeader, readSafetensorsHeader, readTensorBytes } from './header.js';

const utf8 = new TextEncoder();

/** A file: u64 LE length of `header` (or `n` if given), the header bytes, then `data`. */
function file(header: string | Uint8Array, data: number | Uint8Array = 0, n?: bigint): Uint8Array {
  const h = typeof header === 'string' ? utf8.encode(header) : header;
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.byteLength + d.byteLength);
  new DataView(out.buffer).setBigUint64(0, n ?? BigInt(h.byteLength), true);
  out.set(h, 8);
  out.set(d, 8 + h.byteLength);
  return out;
}

function raw(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

function formatError(bytes: Uint8Array, label = 'model.safetensors'): SafetensorsFormatError {
  try {
    parseSafetensorsBytes(bytes, label);
  } catch (error) {
    expect(error).toBeInstanceOf(SafetensorsFormatError);
    return error as SafetensorsFormatError;
  }
  throw new Error('expected a SafetensorsFormatError, but the file parsed');
}

function expectCode(bytes: Uint8Array, code: SafetensorsFormatErrorCode): SafetensorsFormatError {
  const error = formatError(bytes);
  expect(error.code).toBe(code);
  expect(error.kind).toBe('input');
  expect(error.message).toMatch(/^model\.safetensors is not a valid safetensors file: /);
  return error;
}

// `test_deserialization` in the reference: one I32 [2,2] tensor, 60-byte header, 16 zero bytes.
const CANONICAL_HEADER = '{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}';
const CANONICAL = file(CANONICAL_HEADER, 16);

describe('parseSafetensorsBytes: valid files', () => {
  it('reads the canonical one-tensor file', () => {
    expect(CANONICAL_HEADER.length).toBe(60);
    expect([...CANONICAL.subarray(0, 8)]).toEqual([0x3c, 0, 0, 0, 0, 0, 0, 0]);
    const h = parseSafetensorsBytes(CANONICAL, 'canonical');
    expect(h.label).toBe('canonical');
    expect(h.headerLength).toBe(60);
    expect(h.dataStart).toBe(68);
    expect(h.metadata).toBeNull();
    expect(h.tensors).toEqual([{ name: 'test', dtype: 'I32', shape: [2, 2], begin: 0, end: 16, byteLength: 16, fileOffset: 68 }]);
    expect(h.byName.get('test')).toBe(h.tensors[0]);
  });

  it('sorts tensors by offset and reads metadata', () => {
    const header = JSON.stringify({
      b: { dtype: 'F16', shape: [3], data_offsets: [8, 14] },
      __metadata__: { format: 'pt', other: 'x' },
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
    });
    const h = parseSafetensorsBytes(file(header, 14), 'f');
    expect(h.tensors.map((t) => t.name)).toEqual(['a', 'b']);
    expect(h.metadata).toEqual({ format: 'pt', other: 'x' });
    expect(h.byName.get('b')?.fileOffset).toBe(8 + header.length + 8);
  });

  it('accepts a scalar (shape [], one element) — test_empty_shapes_allowed', () => {
    const h = parseSafetensorsBytes(file('{"s":{"dtype":"F64","shape":[],"data_offsets":[0,8]}}', 8), 'f');
    expect(h.tensors[0]?.shape).toEqual([]);
    expect(h.tensors[0]?.byteLength).toBe(8);
  });

  it('accepts empty tensors with [0,0]-style offsets — test_zero_sized_tensor', () => {
    const header = '{"z":{"dtype":"F32","shape":[2,0],"data_offsets":[0,0]},"y":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}';
    const h = parseSafetensorsBytes(file(header, 1), 'f');
    expect(h.tensors.map((t) => [t.name, t.begin, t.end])).toEqual([
      ['y', 0, 0],
      ['z', 0, 0],
      ['x', 0, 1],
    ]);
  });

  it('accepts trailing space padding — test_whitespace_padded_header', () => {
    const h = parseSafetensorsBytes(file(`${CANONICAL_HEADER}    `, 16), 'f');
    expect(h.headerLength).toBe(64);
    expect(h.tensors[0]?.fileOffset).toBe(72);
  });

  it('accepts leading and trailing JSON whitespace — test_whitespace_leading_padded_header', () => {
    const h = parseSafetensorsBytes(file('\t\n{}\r '), 'f');
    expect(h.tensors).toEqual([]);
    expect(h.metadata).toBeNull();
  });

  it('accepts "__metadata__": null as no metadata, and unknown tensor fields', () => {
    const h = parseSafetensorsBytes(file('{"__metadata__":null,"t":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1],"extra":[1]}}', 1), 'f');
    expect(h.metadata).toBeNull();
    expect(h.tensors[0]?.dtype).toBe('BOOL');
  });

  it('accepts sub-byte dtypes that fill whole bytes', () => {
    const h = parseSafetensorsBytes(file('{"q":{"dtype":"F6_E2M3","shape":[4],"data_offsets":[0,3]},"r":{"dtype":"F4","shape":[2,3],"data_offsets":[3,6]}}', 6), 'f');
    expect(h.tensors.map((t) => t.byteLength)).toEqual([3, 3]);
  });

  it('keeps "__proto__" as an ordinary metadata key and tensor name', () => {
    const h = parseSafetensorsBytes(file('{"__metadata__":{"__proto__":"x"},"__proto__":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1), 'f');
    expect(Object.keys(h.metadata ?? {})).toEqual(['__proto__']);
    expect(h.byName.get('__proto__')?.byteLength).toBe(1);
  });

  it('decodes escaped and non-ASCII names', () => {
    const h = parseSafetensorsBytes(file('{"a\\"b\\u00e9\\ud83d\\ude00ü":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}'), 'f');
    expect(h.tensors[0]?.name).toBe('a"bé😀ü');
  });
});

describe('parseSafetensorsBytes: one test per error code', () => {
  it('HEADER_TOO_SMALL — test_header_too_small (empty file), and a 7-byte file', () => {
    expectCode(new Uint8Array(0), 'HEADER_TOO_SMALL');
    expectCode(new Uint8Array(7), 'HEADER_TOO_SMALL');
  });

  it('HEADER_TOO_LARGE — test_header_too_large (N bytes <\\0\\0\\0\\0\\xff\\xff\\xff)', () => {
    const bytes = new Uint8Array([...raw('<\0\0\0\0\xff\xff\xff'), ...utf8.encode(CANONICAL_HEADER), ...new Uint8Array(16)]);
    expectCode(bytes, 'HEADER_TOO_LARGE');
    // Just above the limit, in a file that would be large enough.
    expectCode(file('', 0, 100_000_001n), 'HEADER_TOO_LARGE');
  });

  it('INVALID_HEADER_LENGTH — test_invalid_header_length (N = 60, no header bytes)', () => {
    expectCode(raw('<\0\0\0\0\0\0\0'), 'INVALID_HEADER_LENGTH');
    expectCode(file('{}', 0, 3n), 'INVALID_HEADER_LENGTH');
  });

  it('INVALID_HEADER_UTF8 — test_invalid_header_non_utf8 (N = 1, byte 0xff)', () => {
    expectCode(raw('\x01\0\0\0\0\0\0\0\xff'), 'INVALID_HEADER_UTF8');
    // An encoded surrogate (ED A0 80) is not UTF-8 either.
    expectCode(file(new Uint8Array([0x7b, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d])), 'INVALID_HEADER_UTF8');
  });

  it('INVALID_HEADER_JSON — test_invalid_header_not_json (N = 1, "{")', () => {
    expectCode(raw('\x01\0\0\0\0\0\0\0{'), 'INVALID_HEADER_JSON');
  });

  it.each([
    ['an empty header', ''],
    ['a JSON array', '[]'],
    ['a JSON string', '"x"'],
    ['a UTF-8 BOM before the object', '\ufeff{}'],
    ['trailing garbage', '{} x'],
    ['a NUL after the object', '{}\0'],
    ['a tensor entry that is not an object', '{"t":[1]}'],
    ['a missing dtype', '{"t":{"shape":[1],"data_offsets":[0,1]}}'],
    ['a missing shape', '{"t":{"dtype":"U8","data_offsets":[0,1]}}'],
    ['missing data_offsets', '{"t":{"dtype":"U8","shape":[1]}}'],
    ['a non-string dtype', '{"t":{"dtype":8,"shape":[1],"data_offsets":[0,1]}}'],
    ['a negative dimension', '{"t":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}'],
    ['a fractional dimension', '{"t":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}}'],
    ['a dimension written 1.0', '{"t":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}}'],
    ['a dimension written 1e0', '{"t":{"dtype":"U8","shape":[1e0],"data_offsets":[0,1]}}'],
    ['a dimension as a string', '{"t":{"dtype":"U8","shape":["1"],"data_offsets":[0,1]}}'],
    ['a dimension above u64', '{"t":{"dtype":"U8","shape":[18446744073709551616],"data_offsets":[0,1]}}'],
    ['a shape that is not an array', '{"t":{"dtype":"U8","shape":1,"data_offsets":[0,1]}}'],
    ['three offsets', '{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1,1]}}'],
    ['a negative offset', '{"t":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}}'],
    ['an offset above u64', '{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,18446744073709551617]}}'],
    ['a duplicate field inside a tensor entry', '{"t":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}'],
    ['a lone surrogate escape in a name', '{"\\ud800":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}'],
    ['a raw control character in a name', '{"a\nb":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}'],
  ])('INVALID_HEADER_JSON for %s', (_what, header) => {
    expectCode(file(header, 1), 'INVALID_HEADER_JSON');
  });

  it('INVALID_HEADER_JSON names the tensor', () => {
    const error = expectCode(file('{"h.0.attn.c_attn.weight":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}', 4), 'INVALID_HEADER_JSON');
    expect(error.tensor).toBe('h.0.attn.c_attn.weight');
    expect(error.message).toContain('"h.0.attn.c_attn.weight"');
    expect(error.message).toContain('shape[0]');
  });

  it('INVALID_METADATA — non-string metadata values, or metadata not an object', () => {
    expect(expectCode(file('{"__metadata__":{"format":1}}'), 'INVALID_METADATA').message).toContain('"format"');
    expectCode(file('{"__metadata__":{"nested":{"a":"b"}}}'), 'INVALID_METADATA');
    expectCode(file('{"__metadata__":"pt"}'), 'INVALID_METADATA');
    expectCode(file('{"__metadata__":["pt"]}'), 'INVALID_METADATA');
  });

  it('UNKNOWN_DTYPE — an unknown dtype string (test_simple.py), names it and the tensor', () => {
    const error = expectCode(file('{"t":{"dtype":"FP32","shape":[1],"data_offsets":[0,4]}}', 4), 'UNKNOWN_DTYPE');
    expect(error.message).toContain('"FP32"');
    expect(error.tensor).toBe('t');
    // Dtype strings are case-sensitive, as serde's enum names are.
    expectCode(file('{"t":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}', 4), 'UNKNOWN_DTYPE');
  });

  it('DUPLICATE_KEY — the same tensor name twice (JSON.parse would keep the last)', () => {
    const error = expectCode(file('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1), 'DUPLICATE_KEY');
    expect(error.tensor).toBe('a');
    // Same key spelled differently in the JSON text.
    expectCode(file('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"\\u0061":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', 2), 'DUPLICATE_KEY');
    expectCode(file('{"__metadata__":{},"__metadata__":{}}'), 'DUPLICATE_KEY');
    expectCode(file('{"__metadata__":{"format":"pt","format":"pt"}}'), 'DUPLICATE_KEY');
  });

  it('INVALID_OFFSET — test_json_attack (10 tensors all at (0,16)), names the tensor', () => {
    const entries = Array.from({ length: 10 }, (_, i) => `"weight_${i}":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}`);
    const error = expectCode(file(`{${entries.join(',')}}`, 16 * 10), 'INVALID_OFFSET');
    expect(error.tensor).toBe('weight_1');
    expect(error.message).toContain('"weight_1"');
  });

  it.each([
    ['first tensor not at 0', '{"t":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', 2, 't'],
    ['a gap', '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}', 3, 'b'],
    ['an overlap', '{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}', 3, 'b'],
    ['end before begin', '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}, "c":{"dtype":"U8","shape":[1],"data_offsets":[1,0]}}', 1, 'c'],
    ['an offset beyond 2^53', '{"t":{"dtype":"U8","shape":[1],"data_offsets":[9007199254740993,9007199254740994]}}', 1, 't'],
  ])('INVALID_OFFSET for %s', (_what, header, dataLength, tensor) => {
    expect(expectCode(file(header, dataLength), 'INVALID_OFFSET').tensor).toBe(tensor);
  });

  it('VALIDATION_OVERFLOW — test_validation_overflow ([2, 18446744073709551614] and [2, 9223372036854775807])', () => {
    expectCode(file('{"test":{"dtype":"I32","shape":[2,18446744073709551614],"data_offsets":[0,16]}}', 16), 'VALIDATION_OVERFLOW');
    // The element count fits u64 here; its bit count does not.
    const error = expectCode(file('{"test":{"dtype":"I32","shape":[2,9223372036854775807],"data_offsets":[0,16]}}', 16), 'VALIDATION_OVERFLOW');
    expect(error.tensor).toBe('test');
    // Checked left to right as the reference's try_fold: a later zero does not save an overflow.
    expectCode(file('{"t":{"dtype":"U8","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}}'), 'VALIDATION_OVERFLOW');
    // Valid for the reference, but not representable as a JS number without rounding: refused.
    expectCode(file('{"t":{"dtype":"U8","shape":[0,9007199254740993],"data_offsets":[0,0]}}'), 'VALIDATION_OVERFLOW');
  });

  it('MISALIGNED_SLICE — a sub-byte dtype whose bits are not a whole number of bytes (test_serialization_fp4_misaligned)', () => {
    const error = expectCode(file('{"q":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}', 2), 'MISALIGNED_SLICE');
    expect(error.tensor).toBe('q');
    expectCode(file('{"q":{"dtype":"F6_E3M2","shape":[1,1],"data_offsets":[0,1]}}', 1), 'MISALIGNED_SLICE');
  });

  it('TENSOR_INVALID_INFO — test_invalid_info (I32 [2,2] with offsets [0,4])', () => {
    const error = expectCode(file('{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,4]}}', 4), 'TENSOR_INVALID_INFO');
    expect(error.tensor).toBe('test');
    expect(error.message).toContain('needs 16');
  });

  it('METADATA_INCOMPLETE_BUFFER — test_metadata_incomplete_buffer (trailing polyglot data, and 2 bytes missing)', () => {
    const extra = utf8.encode('extra_bogus_data_for_polyglot_file');
    expect(expectCode(new Uint8Array([...CANONICAL, ...extra]), 'METADATA_INCOMPLETE_BUFFER').message).toContain(`${extra.length} more bytes`);
    expect(expectCode(CANONICAL.subarray(0, CANONICAL.length - 2), 'METADATA_INCOMPLETE_BUFFER').message).toContain('truncated by 2 bytes');
    // No tensors: the data buffer must be empty.
    expectCode(file('{}', 1), 'METADATA_INCOMPLETE_BUFFER');
  });
});

describe('check order', () => {
  const U8 = '"dtype":"U8","shape":[1]';
  it.each<[string, string, number, SafetensorsFormatErrorCode]>([
    ['structure before unknown dtype', `{"a":{"dtype":"X","shape":[1],"data_offsets":[0,1]},"b":{${U8}}}`, 1, 'INVALID_HEADER_JSON'],
    ['metadata before unknown dtype', `{"a":{"dtype":"X","shape":[1],"data_offsets":[0,1]},"__metadata__":{"k":1}}`, 1, 'INVALID_METADATA'],
    ['unknown dtype before duplicate', `{"a":{${U8},"data_offsets":[0,1]},"a":{"dtype":"X","shape":[1],"data_offsets":[0,1]}}`, 1, 'UNKNOWN_DTYPE'],
    ['duplicate before offsets', `{"a":{${U8},"data_offsets":[0,1]},"a":{${U8},"data_offsets":[5,6]}}`, 1, 'DUPLICATE_KEY'],
    // As the reference, all checks of one tensor run before the next tensor's: a's size error wins over b's gap.
    ['offsets checked per tensor in file order', `{"b":{${U8},"data_offsets":[2,3]},"a":{"dtype":"U8","shape":[2],"data_offsets":[0,1]}}`, 3, 'TENSOR_INVALID_INFO'],
    ['coverage last', `{"a":{${U8},"data_offsets":[0,1]}}`, 0, 'METADATA_INCOMPLETE_BUFFER'],
  ])('%s', (_what, header, dataLength, code) => {
    expectCode(file(header, dataLength), code);
  });

  it('checks the header length before the header bytes', () => {
    // An invalid length wins over garbage that would fail UTF-8.
    expectCode(file(new Uint8Array([0xff, 0xff]), 0, 3n), 'INVALID_HEADER_LENGTH');
  });
});

describe('parseSafetensorsHeader', () => {
  it('takes the prefix and header bytes separately', () => {
    const h = parseSafetensorsHeader(CANONICAL.subarray(0, 8), CANONICAL.subarray(8, 68), CANONICAL.length, 'parts');
    expect(h.tensors[0]?.name).toBe('test');
  });

  it('rejects header bytes of the wrong length as a caller bug', () => {
    expect(() => parseSafetensorsHeader(CANONICAL.subarray(0, 8), CANONICAL.subarray(8, 60), CANONICAL.length, 'parts')).toThrow(RangeError);
  });

  it('reads an unaligned prefix', () => {
    const shifted = new Uint8Array(CANONICAL.length + 3);
    shifted.set(CANONICAL, 3);
    const bytes = shifted.subarray(3);
    expect(parseSafetensorsHeader(bytes.subarray(0, 8), bytes.subarray(8, 68), bytes.length, 'x').headerLength).toBe(60);
  });
});

/** A source that records reads, and claims `size` without holding that many bytes. */
function spySource(bytes: Uint8Array, size = bytes.byteLength): ByteSource & { reads: Array<[number, number]> } {
  const inner = memorySource('spy.safetensors', bytes);
  const reads: Array<[number, number]> = [];
  return {
    label: 'spy.safetensors',
    size,
    reads,
    read(offset, length) {
      reads.push([offset, length]);
      return inner.read(offset, length);
    },
  };
}

describe('readSafetensorsHeader', () => {
  it('reads the prefix, then exactly the header', async () => {
    const source = spySource(CANONICAL);
    const h = await readSafetensorsHeader(source);
    expect(h.label).toBe('spy.safetensors');
    expect(source.reads).toEqual([
      [0, 8],
      [8, 60],
    ]);
    const data = await readTensorBytes(source, h.tensors[0]!);
    expect(data.byteLength).toBe(16);
  });

  it('never reads the header when N is above the limit or past the end', async () => {
    const huge = spySource(file('', 0, 100_000_001n), 2 ** 40);
    await expect(readSafetensorsHeader(huge)).rejects.toMatchObject({ code: 'HEADER_TOO_LARGE' });
    expect(huge.reads).toEqual([[0, 8]]);
    const short = spySource(file('', 0, 99_999_999n));
    await expect(readSafetensorsHeader(short)).rejects.toMatchObject({ code: 'INVALID_HEADER_LENGTH' });
    expect(short.reads).toEqual([[0, 8]]);
  });

  it('reads nothing from a file under 8 bytes', async () => {
    const tiny = spySource(new Uint8Array(5));
    await expect(readSafetensorsHeader(tiny)).rejects.toMatchObject({ code: 'HEADER_TOO_SMALL' });
    expect(tiny.reads).toEqual([]);
  });

  it('rejects a bad file with the label in the message', async () => {
    const error = await readSafetensorsHeader(memorySource('gpt2/model.safetensors', raw('\x01\0\0\0\0\0\0\0\xff'))).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SafetensorsFormatError);
    expect((error as SafetensorsFormatError).message).toBe('gpt2/model.safetensors is not a valid safetensors file: the header is not valid UTF-8');
    expect((error as SafetensorsFormatError).file).toBe('gpt2/model.safetensors');
    expect((error as SafetensorsFormatError).hint).toBeTypeOf('string');
  });
});

describe('readTensorBytes', () => {
  it('returns each tensor’s bytes at its absolute offset', async () => {
    const header = '{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U16","shape":[1],"data_offsets":[2,4]},"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}';
    const bytes = file(header, new Uint8Array([1, 2, 3, 4]));
    const source = memorySource('f', bytes);
    const h = await readSafetensorsHeader(source);
    expect([...(await readTensorBytes(source, h.byName.get('a')!))]).toEqual([1, 2]);
    expect([...(await readTensorBytes(source, h.byName.get('b')!))]).toEqual([3, 4]);
    expect((await readTensorBytes(source, h.byName.get('e')!)).byteLength).toBe(0);
  });

  it('fails with a typed error if the source is shorter than the header said', async () => {
    const h = parseSafetensorsBytes(CANONICAL, 'f');
    await expect(readTensorBytes(memorySource('f', CANONICAL.subarray(0, 70)), h.tensors[0]!)).rejects.toMatchObject({ code: 'METADATA_INCOMPLETE_BUFFER', tensor: 'test' });
  });
});
