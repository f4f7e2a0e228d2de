import { describe, expect, it } from 'vitest';
import { MemorySink, memorySource } from '../io.js';
import { encodeFromF32 } from './dtype.js';
import { SafetensorsWriteError } from './errors.js';
import { parseSafetensorsBytes, readSafetensorsHeader, readTensorBytes } from './header.js';
import { layoutSafetensors, SafetensorsPositionalWriter, SafetensorsStreamWriter, type SafetensorsLayout, type TensorSpec } from './writer.js';

const utf8 = new TextEncoder();

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** u64 LE of `n`, the header text, then `data`: a file written out by hand. */
function expectedFile(n: number, headerText: string, data: number[]): Uint8Array {
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(n), true);
  return new Uint8Array([...prefix, ...utf8.encode(headerText), ...data]);
}

async function writeAll(layout: SafetensorsLayout, data: Map<string, Uint8Array>): Promise<Uint8Array> {
  const sink = new MemorySink();
  const writer = new SafetensorsStreamWriter(sink, layout);
  await writer.start();
  for (const e of layout.entries) await writer.writeTensorChunk(e.name, data.get(e.name) ?? new Uint8Array(0));
  await writer.finish();
  expect(writer.bytesWritten).toBe(layout.totalSize);
  return sink.bytes();
}

// f32 0, 1, 2, 3, 4, 5 little-endian.
const ARANGE6_F32 = [0, 0, 0, 0, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40, 0, 0, 0xa0, 0x40];

describe('layoutSafetensors + SafetensorsStreamWriter: byte-identical to the reference writer', () => {
  it('one F32 [1,2,3] tensor without metadata (the reference test_serialization example)', async () => {
    // 64 header bytes, already a multiple of 8: no padding.
    const text = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
    expect(text.length).toBe(64);
    const layout = layoutSafetensors([{ name: 'attn.0', dtype: 'F32', shape: [1, 2, 3] }], null);
    const bytes = await writeAll(layout, new Map([['attn.0', new Uint8Array(ARANGE6_F32)]]));
    expect(hex(bytes)).toBe(hex(expectedFile(64, text, ARANGE6_F32)));
    expect(layout.dataStart).toBe(72);
    expect(layout.totalSize).toBe(96);
  });

  it('with the default {"format":"pt"} metadata: __metadata__ first, one space of padding', async () => {
    // 32 + 62 + 1 = 95 bytes of JSON, padded to 96.
    const text = '{"__metadata__":{"format":"pt"},"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
    expect(text.length).toBe(95);
    const layout = layoutSafetensors([{ name: 'attn.0', dtype: 'F32', shape: [1, 2, 3] }]);
    const bytes = await writeAll(layout, new Map([['attn.0', new Uint8Array(ARANGE6_F32)]]));
    expect(hex(bytes)).toBe(hex(expectedFile(96, `${text} `, ARANGE6_F32)));
  });

  it('three dtypes: F32 before F16 before I8, scalar shape [], two spaces of padding', async () => {
    const text =
      '{"__metadata__":{"format":"pt"},' +
      '"c":{"dtype":"F32","shape":[],"data_offsets":[0,4]},' +
      '"b":{"dtype":"F16","shape":[2],"data_offsets":[4,8]},' +
      '"a":{"dtype":"I8","shape":[3],"data_offsets":[8,11]}}';
    expect(text.length).toBe(190);
    const layout = layoutSafetensors([
      { name: 'b', dtype: 'F16', shape: [2] },
      { name: 'a', dtype: 'I8', shape: [3] },
      { name: 'c', dtype: 'F32', shape: [] },
    ]);
    const data = new Map([
      ['c', encodeFromF32('F32', new Float32Array([1.5]))],
      ['b', encodeFromF32('F16', new Float32Array([1, -2]))],
      ['a', new Uint8Array([1, 2, 3])],
    ]);
    const bytes = await writeAll(layout, data);
    const expected = expectedFile(192, `${text}  `, [0, 0, 0xc0, 0x3f, 0x00, 0x3c, 0x00, 0xc0, 1, 2, 3]);
    expect(hex(bytes)).toBe(hex(expected));
  });

  it('matches safetensors 0.8.0 `safetensors.numpy.save` on all dtype groups, escaped and astral names', async () => {
    // Produced once by the reference (Python binding 0.8.0) for these tensors, all zeros, no metadata.
    const reference =
      '20030000000000007b2276223a7b226474797065223a22553634222c227368617065223a5b315d2c22646174615f6f666673657473223a5b302c385d7d2c2278223a7b226474797065223a22493634222c227368617065223a5b315d2c22646174615f6f666673657473223a5b382c31365d7d2c2277223a7b226474797065223a22463634222c227368617065223a5b315d2c22646174615f6f666673657473223a5b31362c32345d7d2c2271223a7b226474797065223a22433634222c227368617065223a5b315d2c22646174615f6f666673657473223a5b32342c33325d7d2c2265223a7b226474797065223a22463332222c227368617065223a5b322c305d2c22646174615f6f666673657473223a5b33322c33325d7d2c2272223a7b226474797065223a22553332222c227368617065223a5b315d2c22646174615f6f666673657473223a5b33322c33365d7d2c2273223a7b226474797065223a22493332222c227368617065223a5b315d2c22646174615f6f666673657473223a5b33362c34305d7d2c22615c22625c5c635c6e645c75303030317fc3a9efbfbf223a7b226474797065223a22463136222c227368617065223a5b325d2c22646174615f6f666673657473223a5b34302c34345d7d2c22efbfbf223a7b226474797065223a22463136222c227368617065223a5b315d2c22646174615f6f666673657473223a5b34342c34365d7d2c22f0908080223a7b226474797065223a22463136222c227368617065223a5b315d2c22646174615f6f666673657473223a5b34362c34385d7d2c2274223a7b226474797065223a22553136222c227368617065223a5b315d2c22646174615f6f666673657473223a5b34382c35305d7d2c2275223a7b226474797065223a22493136222c227368617065223a5b315d2c22646174615f6f666673657473223a5b35302c35325d7d2c227a223a7b226474797065223a225538222c227368617065223a5b315d2c22646174615f6f666673657473223a5b35322c35335d7d2c2279223a7b226474797065223a22424f4f4c222c227368617065223a5b315d2c22646174615f6f666673657473223a5b35332c35345d7d7d20202020' +
      '00'.repeat(54);
    const specs: TensorSpec[] = [
      { name: 'z', dtype: 'U8', shape: [1] },
      { name: 'y', dtype: 'BOOL', shape: [1] },
      { name: 'x', dtype: 'I64', shape: [1] },
      { name: 'w', dtype: 'F64', shape: [1] },
      { name: 'v', dtype: 'U64', shape: [1] },
      { name: 'u', dtype: 'I16', shape: [1] },
      { name: 't', dtype: 'U16', shape: [1] },
      { name: 's', dtype: 'I32', shape: [1] },
      { name: 'r', dtype: 'U32', shape: [1] },
      { name: 'q', dtype: 'C64', shape: [1] },
      { name: 'a"b\\c\nd\u0001\u007fé\uffff', dtype: 'F16', shape: [2] },
      { name: '\u{10000}', dtype: 'F16', shape: [1] },
      { name: '\uffff', dtype: 'F16', shape: [1] },
      { name: 'e', dtype: 'F32', shape: [2, 0] },
    ];
    const layout = layoutSafetensors(specs, null);
    const data = new Map(layout.entries.map((e) => [e.name, new Uint8Array(e.end - e.begin)]));
    expect(hex(await writeAll(layout, data))).toBe(reference);
    // Names sort by code point (UTF-8 byte order): U+FFFF before U+10000, unlike UTF-16 `<`.
    expect(layout.entries.filter((e) => e.dtype === 'F16').map((e) => e.name)).toEqual(['a"b\\c\nd\u0001\u007fé\uffff', '\uffff', '\u{10000}']);
  });
});

describe('layoutSafetensors', () => {
  it('orders by dtype alignment descending, then by name, back to back, and reads back', async () => {
    const specs: TensorSpec[] = [
      { name: 'i8', dtype: 'I8', shape: [3] },
      { name: 'f16.b', dtype: 'F16', shape: [5] },
      { name: 'f16.a', dtype: 'F16', shape: [1] },
      { name: 'bf16', dtype: 'BF16', shape: [3] },
      { name: 'f32', dtype: 'F32', shape: [2, 1] },
      { name: 'bool', dtype: 'BOOL', shape: [1] },
      { name: 'f64', dtype: 'F64', shape: [] },
      { name: 'f4', dtype: 'F4', shape: [2] },
    ];
    const layout = layoutSafetensors(specs);
    expect(layout.entries.map((e) => e.name)).toEqual(['f64', 'f32', 'bf16', 'f16.a', 'f16.b', 'i8', 'f4', 'bool']);
    let at = 0;
    for (const e of layout.entries) {
      expect(e.begin).toBe(at);
      at = e.end;
    }
    expect(layout.dataStart % 8).toBe(0);
    expect(layout.prefixAndHeader.byteLength).toBe(layout.dataStart);
    expect(layout.totalSize).toBe(layout.dataStart + at);

    const text = new TextDecoder().decode(layout.prefixAndHeader.subarray(8));
    expect(text.startsWith('{"__metadata__":{"format":"pt"},"f64":')).toBe(true);
    const json = text.trimEnd();
    expect(text.slice(json.length)).toMatch(/^ {0,7}$/);
    expect(json.endsWith('}')).toBe(true);

    // Distinct bytes per tensor so a misplaced write would show.
    const data = new Map(layout.entries.map((e, i) => [e.name, new Uint8Array(e.end - e.begin).fill(i + 1)]));
    const bytes = await writeAll(layout, data);
    expect(bytes.byteLength).toBe(layout.totalSize);
    const source = memorySource('roundtrip.safetensors', bytes);
    const header = await readSafetensorsHeader(source);
    expect(header.metadata).toEqual({ format: 'pt' });
    expect(header.dataStart).toBe(layout.dataStart);
    expect(header.tensors.map(({ name, dtype, shape, begin, end }) => ({ name, dtype, shape, begin, end }))).toEqual(layout.entries);
    for (const t of header.tensors) expect(await readTensorBytes(source, t)).toEqual(data.get(t.name));
  });

  it('pads every header length to a multiple of 8 with spaces', () => {
    for (let len = 1; len <= 16; len++) {
      const layout = layoutSafetensors([{ name: 'x'.repeat(len), dtype: 'U8', shape: [1] }], null);
      const n = Number(new DataView(layout.prefixAndHeader.buffer).getBigUint64(0, true));
      expect(n % 8).toBe(0);
      expect(n).toBe(layout.prefixAndHeader.byteLength - 8);
      const json = `{"${'x'.repeat(len)}":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`;
      expect(n - json.length).toBeLessThan(8);
      expect([...layout.prefixAndHeader.subarray(8 + json.length)].every((b) => b === 0x20)).toBe(true);
      expect(parseSafetensorsBytes(new Uint8Array([...layout.prefixAndHeader, 0]), 'p').tensors[0]?.name).toBe('x'.repeat(len));
    }
  });

  it('writes an empty file as just the header, and {} metadata as "__metadata__":{}', () => {
    const none = layoutSafetensors([], null);
    expect(new TextDecoder().decode(none.prefixAndHeader.subarray(8))).toBe('{}      ');
    // safetensors 0.8.0 writes the invalid `{},"__metadata__":{}}` for this case; we write valid JSON.
    const empty = layoutSafetensors([], {});
    expect(new TextDecoder().decode(empty.prefixAndHeader.subarray(8))).toBe('{"__metadata__":{}}     ');
    expect(parseSafetensorsBytes(empty.prefixAndHeader, 'e').metadata).toEqual({});
  });

  it.each<[string, TensorSpec[], string]>([
    ['a duplicate name', [{ name: 'a', dtype: 'F32', shape: [1] }, { name: 'a', dtype: 'F16', shape: [1] }], 'DUPLICATE_TENSOR_NAME'],
    ['the name __metadata__', [{ name: '__metadata__', dtype: 'F32', shape: [1] }], 'INVALID_TENSOR_NAME'],
    ['an unpaired surrogate', [{ name: 'a\ud800', dtype: 'F32', shape: [1] }], 'INVALID_TENSOR_NAME'],
    ['a negative dimension', [{ name: 'a', dtype: 'F32', shape: [-1] }], 'INVALID_SHAPE'],
    ['a fractional dimension', [{ name: 'a', dtype: 'F32', shape: [1.5] }], 'INVALID_SHAPE'],
    ['a byte size above 2^53', [{ name: 'a', dtype: 'F64', shape: [2 ** 30, 2 ** 30] }], 'INVALID_SHAPE'],
    ['a sub-byte tensor of 12 bits', [{ name: 'a', dtype: 'F4', shape: [3] }], 'MISALIGNED_SLICE'],
  ])('rejects %s', (_what, specs, code) => {
    const error = (() => {
      try {
        layoutSafetensors(specs);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(SafetensorsWriteError);
    expect((error as SafetensorsWriteError).code).toBe(code);
    expect((error as SafetensorsWriteError).message).toContain(JSON.stringify(specs.at(-1)!.name));
  });

  it('rejects malformed metadata', () => {
    expect(() => layoutSafetensors([], { k: 'a\udc00' })).toThrow(expect.objectContaining({ code: 'INVALID_METADATA' }));
    expect(() => layoutSafetensors([], { k: 1 } as unknown as Record<string, string>)).toThrow(expect.objectContaining({ code: 'INVALID_METADATA' }));
  });

  it('HEADER_TOO_LARGE above 100,000,000 header bytes (test_invalid_header_size_serialization), not at it', () => {
    const base = '{"__metadata__":{"x":""}}'.length;
    const fits = layoutSafetensors([], { x: 'a'.repeat(100_000_000 - base) });
    expect(fits.dataStart).toBe(100_000_008);
    expect(() => layoutSafetensors([], { x: 'a'.repeat(100_000_000 - base + 1) })).toThrow(expect.objectContaining({ code: 'HEADER_TOO_LARGE' }));
  });
});

describe('SafetensorsStreamWriter', () => {
  const layout = layoutSafetensors([
    { name: 'a', dtype: 'F32', shape: [2] },
    { name: 'e', dtype: 'F16', shape: [0] },
    { name: 'b', dtype: 'F16', shape: [2] },
  ]);
  // File order: a (F32, 8 bytes), b (F16, 4 bytes), e (F16, empty).

  async function started(): Promise<{ sink: MemorySink; writer: SafetensorsStreamWriter }> {
    const sink = new MemorySink();
    const writer = new SafetensorsStreamWriter(sink, layout);
    await writer.start();
    return { sink, writer };
  }

  it('accepts a tensor in several chunks and skips empty tensors', async () => {
    const { sink, writer } = await started();
    await writer.writeTensorChunk('a', new Uint8Array([1, 2, 3]));
    await writer.writeTensorChunk('a', new Uint8Array([]));
    await writer.writeTensorChunk('a', new Uint8Array([4, 5, 6, 7, 8]));
    await writer.writeTensorChunk('b', new Uint8Array([9, 10]));
    await writer.writeTensorChunk('b', new Uint8Array([11, 12]));
    await writer.finish();
    const bytes = sink.bytes();
    expect([...bytes.subarray(layout.dataStart)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(parseSafetensorsBytes(bytes, 'w').byName.get('e')?.byteLength).toBe(0);
  });

  it('rejects a tensor written before an earlier one', async () => {
    const { writer } = await started();
    await expect(writer.writeTensorChunk('b', new Uint8Array(4))).rejects.toMatchObject({ code: 'WRITE_OUT_OF_ORDER', subject: 'a' });
  });

  it('rejects going back to a finished tensor', async () => {
    const { writer } = await started();
    await writer.writeTensorChunk('a', new Uint8Array(8));
    await writer.writeTensorChunk('b', new Uint8Array(1));
    await expect(writer.writeTensorChunk('a', new Uint8Array(0))).rejects.toMatchObject({ code: 'WRITE_OUT_OF_ORDER' });
  });

  it('rejects an unknown tensor', async () => {
    const { writer } = await started();
    await expect(writer.writeTensorChunk('zzz', new Uint8Array(1))).rejects.toMatchObject({ code: 'WRITE_OUT_OF_ORDER', subject: 'zzz' });
  });

  it('rejects too many bytes, without passing them on', async () => {
    const { sink, writer } = await started();
    await writer.writeTensorChunk('a', new Uint8Array(6));
    await expect(writer.writeTensorChunk('a', new Uint8Array(3))).rejects.toMatchObject({ code: 'WRITE_TOO_MANY_BYTES', subject: 'a' });
    expect(sink.bytes().byteLength).toBe(layout.dataStart + 6);
  });

  it('rejects moving on from an incomplete tensor', async () => {
    const { writer } = await started();
    await writer.writeTensorChunk('a', new Uint8Array(7));
    await expect(writer.writeTensorChunk('b', new Uint8Array(4))).rejects.toMatchObject({ code: 'WRITE_INCOMPLETE', subject: 'a' });
  });

  it('finish() rejects missing or partial tensors', async () => {
    const first = await started();
    await first.writer.writeTensorChunk('a', new Uint8Array(8));
    await expect(first.writer.finish()).rejects.toMatchObject({ code: 'WRITE_OUT_OF_ORDER', subject: 'b' });
    const second = await started();
    await second.writer.writeTensorChunk('a', new Uint8Array(8));
    await second.writer.writeTensorChunk('b', new Uint8Array(3));
    await expect(second.writer.finish()).rejects.toMatchObject({ code: 'WRITE_INCOMPLETE', subject: 'b' });
  });

  it('enforces start → chunks → finish', async () => {
    const writer = new SafetensorsStreamWriter(new MemorySink(), layout);
    await expect(writer.writeTensorChunk('a', new Uint8Array(8))).rejects.toMatchObject({ code: 'WRITE_STATE' });
    await expect(writer.finish()).rejects.toMatchObject({ code: 'WRITE_STATE' });
    await writer.start();
    await expect(writer.start()).rejects.toMatchObject({ code: 'WRITE_STATE' });
    await writer.writeTensorChunk('a', new Uint8Array(8));
    await writer.writeTensorChunk('b', new Uint8Array(4));
    await writer.finish();
    await expect(writer.writeTensorChunk('b', new Uint8Array(0))).rejects.toMatchObject({ code: 'WRITE_STATE' });
    await expect(writer.finish()).rejects.toMatchObject({ code: 'WRITE_STATE' });
  });

  it('writes a file with no tensors', async () => {
    const sink = new MemorySink();
    const writer = new SafetensorsStreamWriter(sink, layoutSafetensors([]));
    await writer.start();
    await writer.finish();
    expect(parseSafetensorsBytes(sink.bytes(), 'empty').tensors).toEqual([]);
  });
});

/** A positional sink over a growable byte array that records each write's offset. */
class PositionalMemorySink {
  bytes = new Uint8Array(0);
  readonly writes: Array<[number, number]> = [];
  async writeAt(offset: number, chunk: Uint8Array): Promise<void> {
    // Yield first, so writes of different tensors interleave as they would on a file.
    await new Promise((r) => setTimeout(r, 0));
    if (offset + chunk.byteLength > this.bytes.byteLength) {
      const grown = new Uint8Array(offset + chunk.byteLength);
      grown.set(this.bytes);
      this.bytes = grown;
    }
    this.bytes.set(chunk, offset);
    this.writes.push([offset, chunk.byteLength]);
  }
}

describe('SafetensorsPositionalWriter', () => {
  const specs: TensorSpec[] = [
    { name: 'a', dtype: 'F32', shape: [3] },
    { name: 'e', dtype: 'F16', shape: [0] },
    { name: 'b', dtype: 'F16', shape: [5] },
    { name: 'c', dtype: 'BF16', shape: [2, 2] },
  ];
  const layout = layoutSafetensors(specs);
  const data = new Map(layout.entries.map((e, i) => [e.name, Uint8Array.from({ length: e.end - e.begin }, (_, j) => (i * 31 + j * 7) & 0xff)]));

  it('writes tensors in reverse file order and concurrently, byte-identical to the stream writer', async () => {
    const expected = await writeAll(layout, data);
    const sink = new PositionalMemorySink();
    const writer = new SafetensorsPositionalWriter(sink, layout);
    await writer.start();
    const chunksOf = (bytes: Uint8Array) => [bytes.subarray(0, 3), bytes.subarray(3)];
    // Every tensor in two chunks, all tensors at once, last in the file first.
    await Promise.all(
      [...layout.entries].reverse().map(async (e) => {
        for (const chunk of chunksOf(data.get(e.name)!)) await writer.writeTensorChunk(e.name, chunk);
      }),
    );
    await writer.finish();
    expect(hex(sink.bytes)).toBe(hex(expected));
    expect(sink.writes[0]).toEqual([0, layout.dataStart]);
  });

  it('keeps one tensor\'s chunks in call order even when their writes overlap in time', async () => {
    const sink = new PositionalMemorySink();
    const writer = new SafetensorsPositionalWriter(sink, layout);
    await writer.start();
    const b = data.get('b')!;
    await Promise.all([writer.writeTensorChunk('b', b.subarray(0, 4)), writer.writeTensorChunk('b', b.subarray(4))]);
    const entry = layout.entries.find((e) => e.name === 'b')!;
    expect(hex(sink.bytes.subarray(layout.dataStart + entry.begin, layout.dataStart + entry.end))).toBe(hex(b));
  });

  it('rejects unknown tensors, too many bytes and an incomplete file', async () => {
    const sink = new PositionalMemorySink();
    const writer = new SafetensorsPositionalWriter(sink, layout);
    await writer.start();
    await expect(writer.writeTensorChunk('zzz', new Uint8Array(1))).rejects.toMatchObject({ code: 'WRITE_OUT_OF_ORDER', subject: 'zzz' });
    await writer.writeTensorChunk('a', new Uint8Array(10));
    await expect(writer.writeTensorChunk('a', new Uint8Array(3))).rejects.toMatchObject({ code: 'WRITE_TOO_MANY_BYTES', subject: 'a' });
    expect(sink.writes.map(([, n]) => n)).toEqual([layout.dataStart, 10]);
    await writer.writeTensorChunk('a', new Uint8Array(2));
    await writer.writeTensorChunk('b', new Uint8Array(10));
    await expect(writer.finish()).rejects.toMatchObject({ code: 'WRITE_INCOMPLETE', subject: 'c' });
  });

  it('places a tensor for the caller to write at its file offset; it then counts as written, and only an untouched one is placed', async () => {
    const expected = await writeAll(layout, data);
    const sink = new PositionalMemorySink();
    const writer = new SafetensorsPositionalWriter(sink, layout);
    await writer.start();
    const b = layout.entries.find((e) => e.name === 'b')!;
    const at = writer.placeTensor('b');
    expect(at).toBe(layout.dataStart + b.begin);
    await sink.writeAt(at, data.get('b')!);
    for (const e of layout.entries) if (e.name !== 'b') await writer.writeTensorChunk(e.name, data.get(e.name)!);
    await writer.finish();
    expect(hex(sink.bytes)).toBe(hex(expected));

    const again = new SafetensorsPositionalWriter(new PositionalMemorySink(), layout);
    expect(() => again.placeTensor('a')).toThrow(expect.objectContaining({ code: 'WRITE_STATE' }));
    await again.start();
    await again.writeTensorChunk('a', new Uint8Array(1));
    expect(() => again.placeTensor('a')).toThrow(expect.objectContaining({ code: 'WRITE_TOO_MANY_BYTES', subject: 'a' }));
    expect(() => again.placeTensor('zzz')).toThrow(expect.objectContaining({ code: 'WRITE_OUT_OF_ORDER' }));
    again.placeTensor('c');
    await expect(again.writeTensorChunk('c', new Uint8Array(1))).rejects.toMatchObject({ code: 'WRITE_TOO_MANY_BYTES', subject: 'c' });
  });

  it('writes a run of adjacent tensors in chunks that span tensor boundaries, one write per chunk', async () => {
    const expected = await writeAll(layout, data);
    const sink = new PositionalMemorySink();
    const writer = new SafetensorsPositionalWriter(sink, layout);
    await writer.start();
    const names = layout.entries.map((e) => e.name);
    const all = new Uint8Array(layout.entries.at(-1)!.end);
    for (const e of layout.entries) all.set(data.get(e.name)!, e.begin);
    // Chunks of 5 bytes: each crosses a tensor boundary somewhere (the empty tensor too).
    for (let at = 0; at < all.byteLength; at += 5) await writer.writeAdjacentChunk(names, all.subarray(at, at + 5));
    await writer.finish();
    expect(hex(sink.bytes)).toBe(hex(expected));
    expect(sink.writes.length).toBe(1 + Math.ceil(all.byteLength / 5));
    await expect(writer.writeAdjacentChunk(names, new Uint8Array(1))).rejects.toMatchObject({ code: 'WRITE_STATE' });
  });

  it('refuses a run that is not adjacent in the file, and bytes past its end', async () => {
    const writer = new SafetensorsPositionalWriter(new PositionalMemorySink(), layout);
    await writer.start();
    const [a, , b, c] = layout.entries.map((e) => e.name);
    await expect(writer.writeAdjacentChunk([a!, c!], new Uint8Array(1))).rejects.toMatchObject({ code: 'WRITE_OUT_OF_ORDER' });
    const runBytes = layout.entries.find((e) => e.name === c)!.end - layout.entries.find((e) => e.name === b)!.begin;
    await expect(writer.writeAdjacentChunk([b!, c!], new Uint8Array(runBytes + 1))).rejects.toMatchObject({ code: 'WRITE_TOO_MANY_BYTES' });
  });

  it('enforces start → chunks → finish', async () => {
    const writer = new SafetensorsPositionalWriter(new PositionalMemorySink(), layout);
    await expect(writer.writeTensorChunk('a', new Uint8Array(12))).rejects.toMatchObject({ code: 'WRITE_STATE' });
    await expect(writer.finish()).rejects.toMatchObject({ code: 'WRITE_STATE' });
    await writer.start();
    await expect(writer.start()).rejects.toMatchObject({ code: 'WRITE_STATE' });
    for (const e of layout.entries) await writer.writeTensorChunk(e.name, data.get(e.name)!);
    await writer.finish();
    await expect(writer.writeTensorChunk('a', new Uint8Array(0))).rejects.toMatchObject({ code: 'WRITE_STATE' });
    await expect(writer.finish()).rejects.toMatchObject({ code: 'WRITE_STATE' });
  });
});
