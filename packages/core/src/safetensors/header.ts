/**
 * Reading and validating safetensors headers.
 *
 * File layout: 8 bytes u64 LE header length N; N bytes of UTF-8 JSON; the data buffer, whose
 * tensors' `data_offsets` are relative to file offset 8 + N. Validation follows the reference reader
 * (`SafeTensors::read_metadata`, `Metadata::validate`) step by step, in its order, so the first
 * rule a file breaks decides the error code.
 */
import type { ByteSource } from '../io.js';
import { DTYPE_BITS, isDtype, type Dtype } from './dtype.js';
import { SafetensorsFormatError } from './errors.js';
import { describeJson, firstDuplicateKey, isPlainUnsignedInteger, JsonSyntaxError, parseJsonStrict, type JsonValue } from './json.js';

/** Largest header length N the reference accepts (`MAX_HEADER_SIZE`), in bytes. */
export const MAX_HEADER_SIZE = 100_000_000;

/** The key that holds the string→string metadata map instead of a tensor. */
export const METADATA_KEY = '__metadata__';

/** One tensor's entry in a safetensors header. All offsets and sizes are in bytes. */
export interface TensorInfo {
  readonly name: string;
  readonly dtype: Dtype;
  /** Row-major (C order) dimensions; `[]` is a scalar with one element. */
  readonly shape: number[];
  /** Start of the tensor's bytes, relative to the data buffer start (`dataStart`). */
  readonly begin: number;
  /** End (exclusive) of the tensor's bytes, relative to the data buffer start. */
  readonly end: number;
  /** `end - begin` = numel × bits / 8. */
  readonly byteLength: number;
  /** Absolute file offset of the first byte: `dataStart + begin`. */
  readonly fileOffset: number;
}

/** A validated safetensors header. */
export interface SafetensorsHeader {
  /** The file's label (path or URL), as used in error messages. */
  readonly label: string;
  /** N: the JSON header's length in bytes, padding included. */
  readonly headerLength: number;
  /** Absolute file offset of the data buffer: 8 + N. */
  readonly dataStart: number;
  /** `__metadata__`, or null if the header has none (or has `"__metadata__": null`). */
  readonly metadata: Record<string, string> | null;
  /** Every tensor, sorted by `begin` (file order); ties (empty tensors) by `end`, then name. */
  readonly tensors: TensorInfo[];
  /** The same tensors by name. */
  readonly byName: Map<string, TensorInfo>;
}

const U64_MAX = (1n << 64n) - 1n;
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

function checkFileSize(fileSize: number): void {
  if (!Number.isSafeInteger(fileSize) || fileSize < 0) throw new RangeError(`file size ${fileSize} is not a non-negative safe integer`);
}

// A hostile header can hold megabyte-long names; messages show the start (`tensor` has all of it).
function quote(name: string): string {
  return JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}…` : name);
}

function headerTooSmall(label: string, fileSize: number): SafetensorsFormatError {
  return new SafetensorsFormatError('HEADER_TOO_SMALL', label, `the file is ${fileSize} bytes, shorter than the 8-byte header length prefix`);
}

/**
 * Checks the 8-byte prefix of a file of `fileSize` bytes and returns the header length N.
 * Enforces, in order, HEADER_TOO_SMALL, HEADER_TOO_LARGE and INVALID_HEADER_LENGTH, so a caller can
 * read exactly N more bytes knowing they exist and are at most 100 MB.
 */
export function readHeaderLength(prefix: Uint8Array, fileSize: number, label: string): number {
  checkFileSize(fileSize);
  if (fileSize < 8) throw headerTooSmall(label, fileSize);
  if (prefix.byteLength < 8) throw new RangeError(`need the file's first 8 bytes, got ${prefix.byteLength}`);
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_SIZE)) {
    throw new SafetensorsFormatError('HEADER_TOO_LARGE', label, `the header length ${n} (first 8 bytes, u64 little-endian) is above the ${MAX_HEADER_SIZE}-byte limit`);
  }
  const length = Number(n);
  if (8 + length > fileSize) {
    throw new SafetensorsFormatError(
      'INVALID_HEADER_LENGTH',
      label,
      `the header length ${length} (first 8 bytes) runs past the end of the ${fileSize}-byte file`,
    );
  }
  return length;
}

/** A tensor entry after the JSON stage, with offsets still exact (u64 as bigint). */
interface RawTensor {
  readonly name: string;
  readonly dtypeText: string;
  readonly shape: bigint[];
  readonly begin: bigint;
  readonly end: bigint;
}

function u64Field(value: JsonValue, label: string, what: string, tensor: string): bigint {
  if (value.kind !== 'number' || !isPlainUnsignedInteger(value.text)) {
    throw new SafetensorsFormatError('INVALID_HEADER_JSON', label, `tensor ${quote(tensor)}: ${what} must be a non-negative integer, got ${describeJson(value)}`, tensor);
  }
  const v = BigInt(value.text);
  if (v > U64_MAX) {
    throw new SafetensorsFormatError('INVALID_HEADER_JSON', label, `tensor ${quote(tensor)}: ${what} ${value.text} does not fit in u64`, tensor);
  }
  return v;
}

/** Structure of one tensor entry (serde's `TensorInfo`): dtype string, shape `usize[]`, data_offsets `(usize, usize)`. */
function readTensorEntry(name: string, value: JsonValue, label: string): RawTensor {
  const bad = (detail: string): never => {
    throw new SafetensorsFormatError('INVALID_HEADER_JSON', label, `tensor ${quote(name)}: ${detail}`, name);
  };
  if (value.kind !== 'object') return bad(`the entry must be an object, got ${describeJson(value)}`);
  const duplicate = firstDuplicateKey(value.entries);
  if (duplicate !== undefined) bad(`field ${quote(duplicate)} appears twice`);
  // Unknown extra fields are ignored, as serde does for TensorInfo.
  const fields = new Map(value.entries);
  const dtype = fields.get('dtype');
  const shape = fields.get('shape');
  const offsets = fields.get('data_offsets');
  if (dtype === undefined) return bad('missing field "dtype"');
  if (shape === undefined) return bad('missing field "shape"');
  if (offsets === undefined) return bad('missing field "data_offsets"');
  if (dtype.kind !== 'string') return bad(`"dtype" must be a string, got ${describeJson(dtype)}`);
  if (shape.kind !== 'array') return bad(`"shape" must be an array of non-negative integers, got ${describeJson(shape)}`);
  if (offsets.kind !== 'array' || offsets.items.length !== 2) {
    return bad(`"data_offsets" must be a pair [begin, end] of non-negative integers, got ${describeJson(offsets)}${offsets.kind === 'array' ? ` of length ${offsets.items.length}` : ''}`);
  }
  const dims = shape.items.map((d, i) => u64Field(d, label, `shape[${i}]`, name));
  const begin = u64Field(offsets.items[0]!, label, 'data_offsets[0]', name);
  const end = u64Field(offsets.items[1]!, label, 'data_offsets[1]', name);
  return { name, dtypeText: dtype.value, shape: dims, begin, end };
}

/** Validates the JSON stage (steps 5 of the reference: deserialization) and returns the raw entries. */
function readHeaderJson(text: string, label: string): { metadata: Record<string, string> | null; tensors: RawTensor[] } {
  let root: JsonValue;
  try {
    root = parseJsonStrict(text);
  } catch (error) {
    if (error instanceof JsonSyntaxError) {
      throw new SafetensorsFormatError('INVALID_HEADER_JSON', label, `the header is not valid JSON (${error.message})`);
    }
    throw error;
  }
  if (root.kind !== 'object') {
    throw new SafetensorsFormatError('INVALID_HEADER_JSON', label, `the header must be a JSON object, got ${describeJson(root)}`);
  }

  // Checks run as passes over all entries so that the error code depends only on which rules the
  // file breaks, not on where in the header it breaks them: structure, metadata, dtype, duplicates.
  const tensors: RawTensor[] = [];
  const metadataValues: JsonValue[] = [];
  for (const [key, value] of root.entries) {
    if (key === METADATA_KEY) metadataValues.push(value);
    else tensors.push(readTensorEntry(key, value, label));
  }

  let metadata: Record<string, string> | null = null;
  for (const value of metadataValues) {
    if (value.kind === 'null') {
      metadata = null;
      continue;
    }
    if (value.kind !== 'object') {
      throw new SafetensorsFormatError('INVALID_METADATA', label, `"__metadata__" must be an object of string values, got ${describeJson(value)}`);
    }
    const pairs: Array<[string, string]> = [];
    for (const [k, v] of value.entries) {
      if (v.kind !== 'string') {
        throw new SafetensorsFormatError('INVALID_METADATA', label, `"__metadata__" value for ${quote(k)} must be a string, got ${describeJson(v)}`);
      }
      pairs.push([k, v.value]);
    }
    // fromEntries defines own properties, so a "__proto__" key stays an ordinary key.
    metadata = Object.fromEntries(pairs);
  }

  for (const t of tensors) {
    if (!isDtype(t.dtypeText)) {
      throw new SafetensorsFormatError('UNKNOWN_DTYPE', label, `tensor ${quote(t.name)} has unknown dtype ${quote(t.dtypeText)}`, t.name);
    }
  }

  const duplicate = firstDuplicateKey(root.entries);
  if (duplicate !== undefined) {
    throw new SafetensorsFormatError(
      'DUPLICATE_KEY',
      label,
      duplicate === '__metadata__' ? '"__metadata__" appears twice in the header' : `tensor ${quote(duplicate)} appears twice in the header`,
      duplicate === '__metadata__' ? undefined : duplicate,
    );
  }
  for (const value of metadataValues) {
    if (value.kind !== 'object') continue;
    const dupMeta = firstDuplicateKey(value.entries);
    if (dupMeta !== undefined) {
      throw new SafetensorsFormatError('DUPLICATE_KEY', label, `"__metadata__" key ${quote(dupMeta)} appears twice`);
    }
  }
  return { metadata, tensors };
}

function compareRaw(a: RawTensor, b: RawTensor): number {
  if (a.begin !== b.begin) return a.begin < b.begin ? -1 : 1;
  if (a.end !== b.end) return a.end < b.end ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/**
 * Validates a header from its parts: `prefix` is the file's first 8 bytes, `headerBytes` the N
 * bytes after them, `fileSize` the whole file's size in bytes, `label` the path or URL used in
 * messages. Throws {@link SafetensorsFormatError} naming the first rule broken (see its codes),
 * or `RangeError` if `headerBytes` is not exactly N bytes (a caller bug).
 */
export function parseSafetensorsHeader(prefix: Uint8Array, headerBytes: Uint8Array, fileSize: number, label: string): SafetensorsHeader {
  const n = readHeaderLength(prefix, fileSize, label);
  if (headerBytes.byteLength !== n) throw new RangeError(`${label}: need the ${n} header bytes, got ${headerBytes.byteLength}`);

  let text: string;
  try {
    // ignoreBOM keeps a leading U+FEFF in the text, so it fails as JSON, as it does in the reference.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    throw new SafetensorsFormatError('INVALID_HEADER_UTF8', label, 'the header is not valid UTF-8');
  }

  const { metadata, tensors: raw } = readHeaderJson(text, label);
  raw.sort(compareRaw);

  // Metadata::validate: contiguity, then per-tensor size, with u64 checked arithmetic.
  let start = 0n;
  for (const t of raw) {
    if (t.begin !== start || t.end < t.begin) {
      const detail =
        t.end < t.begin
          ? `its data_offsets [${t.begin}, ${t.end}] end before they begin`
          : t.begin > start
            ? `its data starts at ${t.begin}, leaving a gap after the previous tensor's end at ${start}`
            : `its data starts at ${t.begin}, overlapping data that ends at ${start}`;
      throw new SafetensorsFormatError('INVALID_OFFSET', label, `tensor ${quote(t.name)}: ${detail}`, t.name);
    }
    start = t.end;
    let numel = 1n;
    for (const d of t.shape) {
      numel *= d;
      if (numel > U64_MAX) {
        throw new SafetensorsFormatError('VALIDATION_OVERFLOW', label, `tensor ${quote(t.name)}: the element count of shape [${t.shape.join(', ')}] overflows u64`, t.name);
      }
    }
    const dtype = t.dtypeText as Dtype;
    const nbits = numel * BigInt(DTYPE_BITS[dtype]);
    if (nbits > U64_MAX) {
      throw new SafetensorsFormatError('VALIDATION_OVERFLOW', label, `tensor ${quote(t.name)}: the bit size of shape [${t.shape.join(', ')}] × ${dtype} overflows u64`, t.name);
    }
    if (nbits % 8n !== 0n) {
      throw new SafetensorsFormatError('MISALIGNED_SLICE', label, `tensor ${quote(t.name)}: ${numel} ${dtype} elements are ${nbits} bits, not a whole number of bytes`, t.name);
    }
    if (t.end - t.begin !== nbits / 8n) {
      throw new SafetensorsFormatError(
        'TENSOR_INVALID_INFO',
        label,
        `tensor ${quote(t.name)}: data_offsets [${t.begin}, ${t.end}] span ${t.end - t.begin} bytes, but shape [${t.shape.join(', ')}] × ${dtype} needs ${nbits / 8n}`,
        t.name,
      );
    }
  }

  const dataStart = 8 + n;
  const expected = BigInt(dataStart) + start;
  if (expected !== BigInt(fileSize)) {
    const detail =
      expected < BigInt(fileSize)
        ? `the tensors' data ends at file offset ${expected}, but the file has ${BigInt(fileSize) - expected} more bytes after it`
        : `the tensors' data ends at file offset ${expected}, past the end of the ${fileSize}-byte file (truncated by ${expected - BigInt(fileSize)} bytes)`;
    throw new SafetensorsFormatError('METADATA_INCOMPLETE_BUFFER', label, detail);
  }

  // Offsets are now all within the file, hence safe integers. Dimensions are not necessarily: a
  // tensor with a zero dimension may declare any other dimension. The reference accepts that; we
  // refuse it rather than hand out a rounded shape.
  const tensors: TensorInfo[] = raw.map((t) => {
    const big = t.shape.find((d) => d > SAFE_MAX);
    if (big !== undefined) {
      throw new SafetensorsFormatError('VALIDATION_OVERFLOW', label, `tensor ${quote(t.name)}: dimension ${big} of shape [${t.shape.join(', ')}] is above 2^53 − 1`, t.name);
    }
    const begin = Number(t.begin);
    const end = Number(t.end);
    return { name: t.name, dtype: t.dtypeText as Dtype, shape: t.shape.map(Number), begin, end, byteLength: end - begin, fileOffset: dataStart + begin };
  });
  return { label, headerLength: n, dataStart, metadata, tensors, byName: new Map(tensors.map((t) => [t.name, t])) };
}

/** Validates the header of a whole file already in memory (see {@link parseSafetensorsHeader}). */
export function parseSafetensorsBytes(bytes: Uint8Array, label: string): SafetensorsHeader {
  const n = readHeaderLength(bytes.subarray(0, 8), bytes.byteLength, label);
  return parseSafetensorsHeader(bytes.subarray(0, 8), bytes.subarray(8, 8 + n), bytes.byteLength, label);
}

/**
 * Reads and validates the header of `source`. Reads 8 bytes, checks N against the 100 MB limit and
 * the file size, and only then reads the N header bytes, so a hostile length never makes it
 * allocate more than the file holds. Throws {@link SafetensorsFormatError}.
 */
export async function readSafetensorsHeader(source: ByteSource): Promise<SafetensorsHeader> {
  checkFileSize(source.size);
  if (source.size < 8) throw headerTooSmall(source.label, source.size);
  const prefix = await source.read(0, 8);
  const n = readHeaderLength(prefix, source.size, source.label);
  const headerBytes = n === 0 ? new Uint8Array(0) : await source.read(8, n);
  return parseSafetensorsHeader(prefix, headerBytes, source.size, source.label);
}

/**
 * Reads one tensor's raw little-endian bytes (`info.byteLength` bytes at `info.fileOffset`).
 * Throws {@link SafetensorsFormatError} (METADATA_INCOMPLETE_BUFFER) if `source` is shorter than
 * the header said, e.g. the file changed since its header was read.
 */
export async function readTensorBytes(source: ByteSource, info: TensorInfo): Promise<Uint8Array> {
  if (info.fileOffset + info.byteLength > source.size) {
    throw new SafetensorsFormatError(
      'METADATA_INCOMPLETE_BUFFER',
      source.label,
      `tensor ${quote(info.name)} ends at file offset ${info.fileOffset + info.byteLength}, past the end of the ${source.size}-byte file`,
      info.name,
    );
  }
  if (info.byteLength === 0) return new Uint8Array(0);
  return source.read(info.fileOffset, info.byteLength);
}
