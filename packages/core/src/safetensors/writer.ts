/**
 * Writing safetensors files byte-for-byte the way the reference writer (`prepare` / `serialize`
 * in `safetensors/src/tensor.rs`) does, streaming tensor data so a checkpoint never has to sit in
 * memory whole.
 */
import type { ByteSink, PositionalByteSink } from '../io.js';
import { DTYPE_BITS, dtypeRank, type Dtype } from './dtype.js';
import { SafetensorsWriteError } from './errors.js';
import { MAX_HEADER_SIZE, METADATA_KEY } from './header.js';

/** What the writer needs to know about a tensor before its bytes exist. */
export interface TensorSpec {
  readonly name: string;
  readonly dtype: Dtype;
  /** Row-major (C order) dimensions; `[]` is a scalar. */
  readonly shape: readonly number[];
}

/** A tensor's place in a laid-out file. Offsets in bytes, relative to the data buffer start. */
export interface SafetensorsLayoutEntry {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: number[];
  readonly begin: number;
  /** Exclusive end: `end - begin` = numel × bits / 8. */
  readonly end: number;
}

/** A complete file plan: header bytes and where every tensor goes. */
export interface SafetensorsLayout {
  /** The first `dataStart` bytes of the file: u64 LE header length N, then N bytes of header JSON. */
  readonly prefixAndHeader: Uint8Array;
  /** Tensors in file order (dtype alignment descending, then name), back to back from offset 0. */
  readonly entries: SafetensorsLayoutEntry[];
  /** Absolute file offset of the data buffer: 8 + N, a multiple of 8. */
  readonly dataStart: number;
  /** Size of the whole file in bytes. */
  readonly totalSize: number;
}

/** True if `s` has no unpaired UTF-16 surrogates, i.e. it can be encoded as UTF-8 and JSON exactly. */
function isWellFormed(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c >= 0xdc00) return false;
    const next = s.charCodeAt(i + 1);
    if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
    i++;
  }
  return true;
}

/**
 * Orders strings by Unicode code point, which is the byte order of their UTF-8 encodings and so
 * the order of Rust's `String` `Ord`. Plain `<` compares UTF-16 code units and puts U+E000..U+FFFF
 * after astral characters.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

function tensorByteLength(spec: TensorSpec): number {
  let numel = 1n;
  for (const d of spec.shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new SafetensorsWriteError('INVALID_SHAPE', `tensor ${JSON.stringify(spec.name)}: shape [${spec.shape.join(', ')}] has a dimension that is not a non-negative integer`, spec.name);
    }
    numel *= BigInt(d);
  }
  const bits = DTYPE_BITS[spec.dtype];
  if (bits === undefined) throw new SafetensorsWriteError('INVALID_SHAPE', `tensor ${JSON.stringify(spec.name)}: unknown dtype ${JSON.stringify(spec.dtype)}`, spec.name);
  const nbits = numel * BigInt(bits);
  if (nbits % 8n !== 0n) {
    throw new SafetensorsWriteError('MISALIGNED_SLICE', `tensor ${JSON.stringify(spec.name)}: ${numel} ${spec.dtype} elements are ${nbits} bits, not a whole number of bytes`, spec.name);
  }
  const bytes = nbits / 8n;
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new SafetensorsWriteError('INVALID_SHAPE', `tensor ${JSON.stringify(spec.name)}: ${bytes} bytes is above 2^53 − 1`, spec.name);
  }
  return Number(bytes);
}

/**
 * Plans a safetensors file as the reference writer lays it out:
 * tensors sorted by dtype alignment descending (F64/I64/U64 … F32 … BF16/F16 … I8/U8 … BOOL), then
 * by name (code point order), with no gaps; header JSON `{"__metadata__":{…},"name":{"dtype":…,
 * "shape":[…],"data_offsets":[b,e]},…}` in offset order, padded with spaces to a multiple of 8
 * bytes, after the u64 LE header length.
 *
 * `metadata` defaults to `{"format":"pt"}` as PEFT and transformers write; `null` omits
 * `__metadata__` (as `save_file(..., metadata=None)` does). Keys are written in the object's own
 * order; the reference's order for several keys is a Rust `HashMap`'s, i.e. unspecified.
 *
 * Throws {@link SafetensorsWriteError}: DUPLICATE_TENSOR_NAME, INVALID_TENSOR_NAME, INVALID_SHAPE,
 * MISALIGNED_SLICE, INVALID_METADATA, HEADER_TOO_LARGE (N above 100,000,000 bytes).
 */
export function layoutSafetensors(tensors: readonly TensorSpec[], metadata: Readonly<Record<string, string>> | null = { format: 'pt' }): SafetensorsLayout {
  const seen = new Set<string>();
  const sized = tensors.map((spec) => {
    if (spec.name === METADATA_KEY || !isWellFormed(spec.name)) {
      throw new SafetensorsWriteError(
        'INVALID_TENSOR_NAME',
        spec.name === METADATA_KEY ? `"${METADATA_KEY}" cannot be a tensor name` : `tensor name ${JSON.stringify(spec.name)} contains an unpaired UTF-16 surrogate`,
        spec.name,
      );
    }
    if (seen.has(spec.name)) throw new SafetensorsWriteError('DUPLICATE_TENSOR_NAME', `tensor ${JSON.stringify(spec.name)} is given twice`, spec.name);
    seen.add(spec.name);
    return { spec, size: tensorByteLength(spec) };
  });
  sized.sort((a, b) => dtypeRank(b.spec.dtype) - dtypeRank(a.spec.dtype) || compareCodePoints(a.spec.name, b.spec.name));

  let offset = 0;
  const entries: SafetensorsLayoutEntry[] = sized.map(({ spec, size }) => {
    const entry = { name: spec.name, dtype: spec.dtype, shape: [...spec.shape], begin: offset, end: offset + size };
    offset += size;
    return entry;
  });

  // JSON.stringify escapes strings exactly as serde_json does for well-formed strings:
  // `"` `\\` and control characters (\b \f \n \r \t, else \u00xx lowercase), nothing else.
  const parts: string[] = [];
  if (metadata !== null) {
    const fields = Object.entries(metadata).map(([k, v]) => {
      if (typeof v !== 'string' || !isWellFormed(k) || !isWellFormed(v)) {
        throw new SafetensorsWriteError('INVALID_METADATA', `__metadata__ entry ${JSON.stringify(k)} must map a well-formed string to a well-formed string`, k);
      }
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    parts.push(`"${METADATA_KEY}":{${fields.join(',')}}`);
  }
  for (const e of entries) {
    parts.push(`${JSON.stringify(e.name)}:{"dtype":"${e.dtype}","shape":[${e.shape.join(',')}],"data_offsets":[${e.begin},${e.end}]}`);
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerLength = json.byteLength + ((8 - (json.byteLength % 8)) % 8);
  if (headerLength > MAX_HEADER_SIZE) {
    throw new SafetensorsWriteError('HEADER_TOO_LARGE', `the safetensors header would be ${headerLength} bytes, above the ${MAX_HEADER_SIZE}-byte limit`);
  }
  const prefixAndHeader = new Uint8Array(8 + headerLength);
  new DataView(prefixAndHeader.buffer).setBigUint64(0, BigInt(headerLength), true);
  prefixAndHeader.set(json, 8);
  prefixAndHeader.fill(0x20, 8 + json.byteLength);
  const dataStart = 8 + headerLength;
  return { prefixAndHeader, entries, dataStart, totalSize: dataStart + offset };
}

/**
 * Writes a file planned by {@link layoutSafetensors} to a sink: `start()` writes the header, then
 * each tensor's bytes (little-endian, row-major) are passed in file order via
 * `writeTensorChunk(name, bytes)`, in one or more chunks, then `finish()`. Enforces order and exact
 * sizes, so what reaches the sink is always a prefix of the planned file; throws
 * {@link SafetensorsWriteError} (WRITE_STATE, WRITE_OUT_OF_ORDER, WRITE_TOO_MANY_BYTES,
 * WRITE_INCOMPLETE). Empty tensors need no call. Await each call before the next.
 */
export class SafetensorsStreamWriter {
  private readonly sink: ByteSink;
  private readonly layout: SafetensorsLayout;
  private readonly indexByName: Map<string, number>;
  private state: 'new' | 'writing' | 'finished' = 'new';
  /** Index of the tensor now receiving bytes. */
  private current = 0;
  /** Bytes of `entries[current]` written so far. */
  private written = 0;
  private total = 0;

  constructor(sink: ByteSink, layout: SafetensorsLayout) {
    this.sink = sink;
    this.layout = layout;
    this.indexByName = new Map(layout.entries.map((e, i) => [e.name, i]));
  }

  /** Bytes handed to the sink so far, header included. */
  get bytesWritten(): number {
    return this.total;
  }

  /** Writes the length prefix and header. Must be called once, first. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new SafetensorsWriteError('WRITE_STATE', 'start() was already called on this safetensors writer');
    this.state = 'writing';
    this.total += this.layout.prefixAndHeader.byteLength;
    await this.sink.write(this.layout.prefixAndHeader);
  }

  private size(index: number): number {
    const e = this.layout.entries[index]!;
    return e.end - e.begin;
  }

  private name(index: number): string {
    return this.layout.entries[index]!.name;
  }

  /** Throws unless every tensor in [current, upTo) is complete (those after `current` must be empty). */
  private requireCompleteBefore(upTo: number, next: string): void {
    for (let i = this.current; i < upTo; i++) {
      const done = i === this.current ? this.written : 0;
      if (done === this.size(i)) continue;
      const name = this.name(i);
      if (done > 0) {
        throw new SafetensorsWriteError('WRITE_INCOMPLETE', `tensor ${JSON.stringify(name)} got ${done} of its ${this.size(i)} bytes before ${next}`, name);
      }
      throw new SafetensorsWriteError('WRITE_OUT_OF_ORDER', `tensor ${JSON.stringify(name)} (${this.size(i)} bytes) must be written before ${next}`, name);
    }
  }

  /** Appends `bytes` to tensor `name`, which must be the current tensor or the next non-skipped one in file order. */
  async writeTensorChunk(name: string, bytes: Uint8Array): Promise<void> {
    if (this.state !== 'writing') {
      throw new SafetensorsWriteError('WRITE_STATE', `tensor ${JSON.stringify(name)} written ${this.state === 'new' ? 'before start()' : 'after finish()'}`, name);
    }
    const index = this.indexByName.get(name);
    if (index === undefined) throw new SafetensorsWriteError('WRITE_OUT_OF_ORDER', `tensor ${JSON.stringify(name)} is not in this file's layout`, name);
    if (index < this.current) {
      throw new SafetensorsWriteError('WRITE_OUT_OF_ORDER', `tensor ${JSON.stringify(name)} written after ${JSON.stringify(this.name(this.current))}, which comes later in the file`, name);
    }
    if (index > this.current) {
      this.requireCompleteBefore(index, `tensor ${JSON.stringify(name)}`);
      this.current = index;
      this.written = 0;
    }
    const size = this.size(index);
    if (this.written + bytes.byteLength > size) {
      throw new SafetensorsWriteError('WRITE_TOO_MANY_BYTES', `tensor ${JSON.stringify(name)} is ${size} bytes, but ${this.written + bytes.byteLength} were written`, name);
    }
    // State is updated before awaiting so a misuse is caught at the call that makes it.
    this.written += bytes.byteLength;
    this.total += bytes.byteLength;
    if (bytes.byteLength > 0) await this.sink.write(bytes);
  }

  /** Checks that every tensor was written in full. Writes nothing. */
  async finish(): Promise<void> {
    if (this.state !== 'writing') throw new SafetensorsWriteError('WRITE_STATE', `finish() called ${this.state === 'new' ? 'before start()' : 'twice'}`);
    if (this.layout.entries.length > 0) this.requireCompleteBefore(this.layout.entries.length, 'finish()');
    this.state = 'finished';
  }
}

/**
 * Writes a file planned by {@link layoutSafetensors} to a positional sink with tensors in any order,
 * also several at once (each tensor's own chunks in order): a merge that finishes late need not hold
 * up the copies that follow it in the file. `finish()` requires every tensor complete. Throws
 * {@link SafetensorsWriteError} (WRITE_STATE, WRITE_OUT_OF_ORDER for a name not in the layout,
 * WRITE_TOO_MANY_BYTES, WRITE_INCOMPLETE). Empty tensors need no call.
 */
export class SafetensorsPositionalWriter {
  private readonly indexByName: Map<string, number>;
  /** Bytes of each entry handed to the sink so far. */
  private readonly written: number[];
  private state: 'new' | 'writing' | 'finished' = 'new';

  constructor(
    private readonly sink: PositionalByteSink,
    private readonly layout: SafetensorsLayout,
  ) {
    this.indexByName = new Map(layout.entries.map((e, i) => [e.name, i]));
    this.written = layout.entries.map(() => 0);
  }

  /** Writes the length prefix and header. Must be called once, first. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new SafetensorsWriteError('WRITE_STATE', 'start() was already called on this safetensors writer');
    this.state = 'writing';
    await this.sink.writeAt(0, this.layout.prefixAndHeader);
  }

  /** Appends `bytes` to tensor `name` (after its earlier chunks), wherever it lies in the file. */
  async writeTensorChunk(name: string, bytes: Uint8Array): Promise<void> {
    if (this.state !== 'writing') {
      throw new SafetensorsWriteError('WRITE_STATE', `tensor ${JSON.stringify(name)} written ${this.state === 'new' ? 'before start()' : 'after finish()'}`, name);
    }
    const index = this.indexByName.get(name);
    if (index === undefined) throw new SafetensorsWriteError('WRITE_OUT_OF_ORDER', `tensor ${JSON.stringify(name)} is not in this file's layout`, name);
    const entry = this.layout.entries[index]!;
    const at = this.written[index]!;
    if (at + bytes.byteLength > entry.end - entry.begin) {
      throw new SafetensorsWriteError('WRITE_TOO_MANY_BYTES', `tensor ${JSON.stringify(name)} is ${entry.end - entry.begin} bytes, but ${at + bytes.byteLength} were written`, name);
    }
    // Counted before awaiting, so a concurrent chunk of the same tensor lands after this one.
    this.written[index] = at + bytes.byteLength;
    if (bytes.byteLength > 0) await this.sink.writeAt(this.layout.dataStart + entry.begin + at, bytes);
  }

  /**
   * Appends `bytes` to a run of tensors that lie back to back in the file (`names` in file order):
   * the bytes continue the first tensor of the run that is not complete yet and may span several,
   * in one write. Copying many small tensors this way costs one write per chunk, not one per tensor.
   */
  async writeAdjacentChunk(names: readonly string[], bytes: Uint8Array): Promise<void> {
    if (this.state !== 'writing') throw new SafetensorsWriteError('WRITE_STATE', `tensors written ${this.state === 'new' ? 'before start()' : 'after finish()'}`);
    const indices = names.map((name) => {
      const index = this.indexByName.get(name);
      if (index === undefined) throw new SafetensorsWriteError('WRITE_OUT_OF_ORDER', `tensor ${JSON.stringify(name)} is not in this file's layout`, name);
      return index;
    });
    for (let k = 1; k < indices.length; k++) {
      if (this.layout.entries[indices[k]!]!.begin !== this.layout.entries[indices[k - 1]!]!.end) {
        throw new SafetensorsWriteError('WRITE_OUT_OF_ORDER', `tensors ${JSON.stringify(names[k - 1])} and ${JSON.stringify(names[k])} are not adjacent in the file`, names[k]!);
      }
    }
    let k = indices.findIndex((i) => this.written[i]! < this.layout.entries[i]!.end - this.layout.entries[i]!.begin);
    if (k < 0) {
      if (bytes.byteLength === 0) return;
      throw new SafetensorsWriteError('WRITE_TOO_MANY_BYTES', `tensors ${JSON.stringify(names[0])}..${JSON.stringify(names[names.length - 1])} are complete, but ${bytes.byteLength} more bytes were written`, names[names.length - 1]);
    }
    const first = this.layout.entries[indices[k]!]!;
    const position = this.layout.dataStart + first.begin + this.written[indices[k]!]!;
    // Counted before awaiting, as writeTensorChunk does.
    for (let left = bytes.byteLength; left > 0; k++) {
      if (k >= indices.length) throw new SafetensorsWriteError('WRITE_TOO_MANY_BYTES', `${bytes.byteLength} bytes run past the last tensor ${JSON.stringify(names[names.length - 1])}`, names[names.length - 1]);
      const i = indices[k]!;
      const e = this.layout.entries[i]!;
      const take = Math.min(left, e.end - e.begin - this.written[i]!);
      this.written[i] = this.written[i]! + take;
      left -= take;
    }
    if (bytes.byteLength > 0) await this.sink.writeAt(position, bytes);
  }

  /**
   * Hands tensor `name`, not written to yet, to the caller, who writes all of its bytes at the
   * returned file offset through its own means (a browser output that takes a slice of the input
   * file as it is, never read into memory); from here on it counts as written in full.
   */
  placeTensor(name: string): number {
    if (this.state !== 'writing') {
      throw new SafetensorsWriteError('WRITE_STATE', `tensor ${JSON.stringify(name)} placed ${this.state === 'new' ? 'before start()' : 'after finish()'}`, name);
    }
    const index = this.indexByName.get(name);
    if (index === undefined) throw new SafetensorsWriteError('WRITE_OUT_OF_ORDER', `tensor ${JSON.stringify(name)} is not in this file's layout`, name);
    const entry = this.layout.entries[index]!;
    if (this.written[index] !== 0) throw new SafetensorsWriteError('WRITE_TOO_MANY_BYTES', `tensor ${JSON.stringify(name)} is placed after ${this.written[index]} of its bytes were written`, name);
    this.written[index] = entry.end - entry.begin;
    return this.layout.dataStart + entry.begin;
  }

  /** Checks that every tensor was written in full. Writes nothing. */
  async finish(): Promise<void> {
    if (this.state !== 'writing') throw new SafetensorsWriteError('WRITE_STATE', `finish() called ${this.state === 'new' ? 'before start()' : 'twice'}`);
    const short = this.layout.entries.findIndex((e, i) => this.written[i] !== e.end - e.begin);
    if (short >= 0) {
      const e = this.layout.entries[short]!;
      throw new SafetensorsWriteError('WRITE_INCOMPLETE', `tensor ${JSON.stringify(e.name)} got ${this.written[short]} of its ${e.end - e.begin} bytes before finish()`, e.name);
    }
    this.state = 'finished';
  }
}
