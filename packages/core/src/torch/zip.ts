/**
 * Reading the directory of the zip archive `torch.save` writes (torch ≥ 1.6, `PyTorchStreamWriter`):
 * every record is stored uncompressed, its data padded to a 64-byte boundary by the local header's
 * extra field, and the archive always ends with a ZIP64 end record, its locator and the classic end
 * record. Only what such an archive needs is accepted: one disk, stored entries, no encryption; the
 * counts and sizes the end records claim are checked against the file before anything is allocated.
 */
import type { ByteSource } from '../io.js';
import { TorchFormatError } from './errors.js';

/** One record of the archive, as its central-directory entry describes it. Sizes and offsets in bytes. */
export interface ZipEntry {
  /** The record's name, e.g. `archive/data.pkl`. */
  readonly name: string;
  /** Compression method: 0 (stored) is the only one accepted. */
  readonly method: number;
  /** Size of the record's data. Stored, so also its size in the file. */
  readonly size: number;
  /** File offset of the record's local header (its data follows that header). */
  readonly localHeaderOffset: number;
}

/** The archive's records, in central-directory order and by name. */
export interface ZipDirectory {
  readonly entries: readonly ZipEntry[];
  readonly byName: ReadonlyMap<string, ZipEntry>;
}

/** The most records an archive may hold: a state dict has one per storage, a few hundred for GPT-2 XL. */
export const MAX_ZIP_ENTRIES = 200_000;
/** The largest central directory read, in bytes (each record costs 46 bytes plus its name and extra field). */
export const MAX_CENTRAL_DIRECTORY_BYTES = 64 * 1024 * 1024;

const EOCD_SIG = 0x06054b50;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_LOCATOR_SIZE = 20;
const ZIP64_EOCD_SIG = 0x06064b50;
const ZIP64_EOCD_SIZE = 56;
const CENTRAL_SIG = 0x02014b50;
const CENTRAL_SIZE = 46;
const LOCAL_SIG = 0x04034b50;
const LOCAL_SIZE = 30;
const ZIP64_EXTRA_ID = 0x0001;
const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;

const utf8 = new TextDecoder('utf-8', { fatal: false });

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A u64 field as a number, refused when above 2^53 − 1 (no real file is that large). */
function u64(dv: DataView, at: number, label: string, what: string): number {
  const v = dv.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid(label, `${what} ${v} is beyond any real file`);
  return Number(v);
}

function invalid(label: string, detail: string, subject?: string): TorchFormatError {
  return new TorchFormatError('TORCH_ZIP_INVALID', label, `not a valid torch.save zip archive: ${detail}`, subject);
}

/** Why a file without a zip end record is refused: the legacy torch format, or not torch at all. */
async function notAZip(source: ByteSource): Promise<TorchFormatError> {
  const head = source.size > 0 ? await source.read(0, Math.min(4, source.size)) : new Uint8Array(0);
  if (head[0] === 0x50 && head[1] === 0x4b) return invalid(source.label, 'it starts like a zip archive but has no end-of-central-directory record (truncated?)');
  if (head[0] === 0x80) {
    return new TorchFormatError('TORCH_LEGACY_FORMAT', source.label, 'this is the legacy (pre-1.6) torch.save format, a bare pickle stream; lorafuse reads only the zip format and does not unpickle it');
  }
  return new TorchFormatError('TORCH_LEGACY_FORMAT', source.label, 'not a zip archive as torch.save writes (since torch 1.6), nor anything else lorafuse reads; nothing in it was run');
}

interface DirectoryLocation {
  readonly count: number;
  readonly size: number;
  readonly offset: number;
  /** Where the end records begin: no record data may reach past it. */
  readonly end: number;
}

/** Finds the end records and returns where the central directory is. */
async function locateDirectory(source: ByteSource): Promise<DirectoryLocation> {
  const label = source.label;
  const tailLength = Math.min(source.size, EOCD_SIZE + MAX_COMMENT);
  if (tailLength < EOCD_SIZE) throw await notAZip(source);
  const tailStart = source.size - tailLength;
  const tail = await source.read(tailStart, tailLength);
  const dv = view(tail);
  let eocd = -1;
  // The last signature whose comment ends exactly at the end of the file.
  for (let i = tailLength - EOCD_SIZE; i >= 0; i--) {
    if (dv.getUint32(i, true) === EOCD_SIG && i + EOCD_SIZE + dv.getUint16(i + 20, true) === tailLength) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw await notAZip(source);
  const disk = dv.getUint16(eocd + 4, true);
  const cdDisk = dv.getUint16(eocd + 6, true);
  let countOnDisk = dv.getUint16(eocd + 8, true);
  let count = dv.getUint16(eocd + 10, true);
  let size = dv.getUint32(eocd + 12, true);
  let offset = dv.getUint32(eocd + 16, true);
  let end = tailStart + eocd;

  const locatorAt = eocd - ZIP64_LOCATOR_SIZE;
  const hasLocator = locatorAt >= 0 && dv.getUint32(locatorAt, true) === ZIP64_LOCATOR_SIG;
  if (hasLocator) {
    if (dv.getUint32(locatorAt + 4, true) !== 0 || dv.getUint32(locatorAt + 16, true) > 1) throw invalid(label, 'the archive spans several disks');
    const recordAt = u64(dv, locatorAt + 8, label, 'the ZIP64 end record offset');
    if (recordAt + ZIP64_EOCD_SIZE > tailStart + locatorAt) throw invalid(label, `the ZIP64 end record offset ${recordAt} is outside the file`);
    const record = view(await source.read(recordAt, ZIP64_EOCD_SIZE));
    if (record.getUint32(0, true) !== ZIP64_EOCD_SIG) throw invalid(label, `no ZIP64 end record at offset ${recordAt}`);
    if (record.getUint32(16, true) !== 0 || record.getUint32(20, true) !== 0) throw invalid(label, 'the archive spans several disks');
    countOnDisk = u64(record, 24, label, 'the record count');
    count = u64(record, 32, label, 'the record count');
    size = u64(record, 40, label, 'the central directory size');
    offset = u64(record, 48, label, 'the central directory offset');
    end = recordAt;
  } else {
    if (disk !== 0 || cdDisk !== 0) throw invalid(label, 'the archive spans several disks');
    if (count === U16_MAX || size === U32_MAX || offset === U32_MAX) throw invalid(label, 'the end record points to ZIP64 fields, but there is no ZIP64 locator');
  }
  if (countOnDisk !== count) throw invalid(label, 'the archive spans several disks');
  if (count > MAX_ZIP_ENTRIES) {
    throw new TorchFormatError('TORCH_LIMIT', label, `the archive claims ${count} records; lorafuse reads at most ${MAX_ZIP_ENTRIES.toLocaleString('en-US')}`);
  }
  if (size > MAX_CENTRAL_DIRECTORY_BYTES) {
    throw new TorchFormatError('TORCH_LIMIT', label, `the archive's central directory claims ${size} bytes; lorafuse reads at most ${MAX_CENTRAL_DIRECTORY_BYTES}`);
  }
  if (offset + size > end) throw invalid(label, `the central directory (${size} bytes at offset ${offset}) runs past the end records at ${end}`);
  if (size < count * CENTRAL_SIZE) throw invalid(label, `the central directory is ${size} bytes, too small for ${count} records`);
  return { count, size, offset, end };
}

/** The ZIP64 extra field's values for the fields the fixed header saturated, in the format's order. */
function applyZip64Extra(extra: DataView, fields: { size: number; compressed: number; local: number }, label: string, name: string) {
  const need = [fields.size === U32_MAX, fields.compressed === U32_MAX, fields.local === U32_MAX];
  if (!need.some(Boolean)) return fields;
  for (let at = 0; at + 4 <= extra.byteLength; ) {
    const id = extra.getUint16(at, true);
    const length = extra.getUint16(at + 2, true);
    if (at + 4 + length > extra.byteLength) break;
    if (id === ZIP64_EXTRA_ID) {
      const out = { ...fields };
      let p = at + 4;
      const next = (what: string): number => {
        if (p + 8 > at + 4 + length) throw invalid(label, `record ${JSON.stringify(name)}: its ZIP64 extra field lacks the ${what}`, name);
        const v = u64(extra, p, label, `record ${JSON.stringify(name)}: the ${what}`);
        p += 8;
        return v;
      };
      if (need[0]) out.size = next('size');
      if (need[1]) out.compressed = next('compressed size');
      if (need[2]) out.local = next('local header offset');
      return out;
    }
    at += 4 + length;
  }
  throw invalid(label, `record ${JSON.stringify(name)} has 32-bit fields saturated but no ZIP64 extra field`, name);
}

/**
 * Reads the archive's central directory. Refuses, by name, anything `torch.save` never writes:
 * compressed or encrypted records, several disks, duplicate names, records outside the file.
 * A file that is not a zip archive gets `TORCH_LEGACY_FORMAT` (nothing of it is interpreted).
 */
export async function readZipDirectory(source: ByteSource): Promise<ZipDirectory> {
  const label = source.label;
  const { count, size, offset, end } = await locateDirectory(source);
  const dir = await source.read(offset, size);
  const dv = view(dir);
  const entries: ZipEntry[] = [];
  const byName = new Map<string, ZipEntry>();
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + CENTRAL_SIZE > size || dv.getUint32(at, true) !== CENTRAL_SIG) throw invalid(label, `central directory record ${i} is malformed`);
    const flags = dv.getUint16(at + 8, true);
    const method = dv.getUint16(at + 10, true);
    const nameLength = dv.getUint16(at + 28, true);
    const extraLength = dv.getUint16(at + 30, true);
    const commentLength = dv.getUint16(at + 32, true);
    const next = at + CENTRAL_SIZE + nameLength + extraLength + commentLength;
    if (next > size) throw invalid(label, `central directory record ${i} runs past the directory`);
    const name = utf8.decode(dir.subarray(at + CENTRAL_SIZE, at + CENTRAL_SIZE + nameLength));
    const extra = new DataView(dir.buffer, dir.byteOffset + at + CENTRAL_SIZE + nameLength, extraLength);
    const fields = applyZip64Extra(extra, { size: dv.getUint32(at + 24, true), compressed: dv.getUint32(at + 20, true), local: dv.getUint32(at + 42, true) }, label, name);
    if (flags & 0x1) throw invalid(label, `record ${JSON.stringify(name)} is encrypted`, name);
    if (method !== 0) throw invalid(label, `record ${JSON.stringify(name)} is compressed (method ${method}); torch.save stores records uncompressed`, name);
    if (fields.compressed !== fields.size) throw invalid(label, `record ${JSON.stringify(name)} is stored, yet its compressed size ${fields.compressed} differs from its size ${fields.size}`, name);
    if (fields.local + LOCAL_SIZE + fields.size > end) throw invalid(label, `record ${JSON.stringify(name)} (${fields.size} bytes at offset ${fields.local}) runs past the archive's data`, name);
    if (byName.has(name)) throw invalid(label, `record ${JSON.stringify(name)} appears twice`, name);
    const entry: ZipEntry = { name, method, size: fields.size, localHeaderOffset: fields.local };
    entries.push(entry);
    byName.set(name, entry);
    at = next;
  }
  return { entries, byName };
}

/**
 * The file offset of a record's data: just past its local header, whose name and extra field
 * (torch's alignment padding) have lengths of their own. The local header must name the same record.
 */
export async function zipEntryDataOffset(source: ByteSource, entry: ZipEntry): Promise<number> {
  const label = source.label;
  const header = await source.read(entry.localHeaderOffset, LOCAL_SIZE);
  const dv = view(header);
  if (dv.getUint32(0, true) !== LOCAL_SIG) throw invalid(label, `no local header for record ${JSON.stringify(entry.name)} at offset ${entry.localHeaderOffset}`, entry.name);
  if (dv.getUint16(8, true) !== entry.method) throw invalid(label, `record ${JSON.stringify(entry.name)}: local header and central directory disagree on the method`, entry.name);
  const nameLength = dv.getUint16(26, true);
  const extraLength = dv.getUint16(28, true);
  const name = utf8.decode(await source.read(entry.localHeaderOffset + LOCAL_SIZE, nameLength));
  if (name !== entry.name) throw invalid(label, `the local header at offset ${entry.localHeaderOffset} names ${JSON.stringify(name)}, not ${JSON.stringify(entry.name)}`, entry.name);
  const dataStart = entry.localHeaderOffset + LOCAL_SIZE + nameLength + extraLength;
  if (dataStart + entry.size > source.size) throw invalid(label, `record ${JSON.stringify(entry.name)} runs past the end of the ${source.size}-byte file`, entry.name);
  return dataStart;
}
