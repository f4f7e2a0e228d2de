/**
 * PyTorch `.bin` files for tests, laid out the way `torch.save` writes them: a pickle assembler
 * (for the state dict and for hand-made hostile pickles), a zip writer with torch's 64-byte data
 * alignment and ZIP64 end records, and `torchSaveBytes`, which pickles tensors as a state dict.
 * Pure: returns file bytes. Never used to read anything.
 */
import { encodeFromF32 } from '../safetensors/dtype.js';
import type { FixtureTensor } from './fixtures.js';

const enc = new TextEncoder();

/** Builds pickle bytes opcode by opcode. Methods append and return `this`. */
export class PickleAssembler {
  private readonly parts: number[] = [];

  /** Appends raw bytes (an opcode byte, or anything hand-crafted). */
  raw(...bytes: number[]): this {
    for (const b of bytes) this.parts.push(b & 0xff);
    return this;
  }
  private u32(n: number): this {
    return this.raw(n, n >>> 8, n >>> 16, n >>> 24);
  }
  proto(version = 2): this { return this.raw(0x80, version); }
  global(module: string, name: string): this { return this.raw(0x63, ...enc.encode(`${module}\n${name}\n`)); }
  mark(): this { return this.raw(0x28); }
  stop(): this { return this.raw(0x2e); }
  emptyTuple(): this { return this.raw(0x29); }
  tuple(): this { return this.raw(0x74); }
  tuple1(): this { return this.raw(0x85); }
  tuple2(): this { return this.raw(0x86); }
  emptyDict(): this { return this.raw(0x7d); }
  emptyList(): this { return this.raw(0x5d); }
  setItems(): this { return this.raw(0x75); }
  reduce(): this { return this.raw(0x52); }
  build(): this { return this.raw(0x62); }
  binPersId(): this { return this.raw(0x51); }
  none(): this { return this.raw(0x4e); }
  bool(v: boolean): this { return this.raw(v ? 0x88 : 0x89); }
  binput(i: number): this { return this.raw(0x71, i); }
  binget(i: number): this { return this.raw(0x68, i); }
  /** An int the way pickle protocol 2 writes it: BININT1, BININT2, BININT or LONG1. */
  int(n: number): this {
    if (Number.isInteger(n) && n >= 0 && n < 256) return this.raw(0x4b, n);
    if (Number.isInteger(n) && n >= 0 && n < 65536) return this.raw(0x4d, n, n >>> 8);
    if (Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31) return this.raw(0x4a).u32(n >>> 0);
    let v = BigInt(n);
    const bytes: number[] = [];
    while (v !== 0n && v !== -1n) {
      bytes.push(Number(v & 0xffn));
      v >>= 8n;
    }
    if (((bytes[bytes.length - 1] ?? 0) & 0x80) !== (n < 0 ? 0x80 : 0)) bytes.push(n < 0 ? 0xff : 0);
    return this.raw(0x8a, bytes.length, ...bytes);
  }
  /** A str as BINUNICODE. */
  str(s: string): this {
    const b = enc.encode(s);
    return this.raw(0x58).u32(b.byteLength).raw(...b);
  }
  /** A tuple of ints (TUPLE1/TUPLE2 for one or two, as pickle writes them). */
  ints(values: readonly number[]): this {
    if (values.length === 0) return this.emptyTuple();
    if (values.length <= 2) {
      for (const v of values) this.int(v);
      return values.length === 1 ? this.tuple1() : this.tuple2();
    }
    this.mark();
    for (const v of values) this.int(v);
    return this.tuple();
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

/** A tensor of a {@link torchSaveBytes} state dict: a view of storage `storage` (default: its own). */
export interface TorchFixtureTensor extends FixtureTensor {
  /** Share the storage of an earlier tensor: this tensor is then a view of it and `values` is ignored. */
  readonly viewOf?: { readonly tensor: string; readonly offset: number; readonly stride?: readonly number[] };
}

/** How {@link torchSaveBytes} writes the file. */
export interface TorchSaveOptions {
  /** The archive's top folder (torch uses the file name without extension). */
  readonly archive?: string;
  /** Pickle the state dict as `collections.OrderedDict` (as `state_dict()` returns) or as a plain dict (as PEFT and transformers build it). */
  readonly ordered?: boolean;
  /** With `ordered`: BUILD the OrderedDict with a `_metadata` attribute, as `torch.save(model.state_dict())` does. */
  readonly withMetadataAttribute?: boolean;
  /** The `byteorder` record's text (default `little`); null leaves the record out. */
  readonly byteorder?: string | null;
  /** Write ZIP64 extra fields in every central-directory entry (as for records over 4 GiB). */
  readonly zip64Entries?: boolean;
}

const STORAGE_CLASS: Record<string, string> = { F32: 'FloatStorage', F16: 'HalfStorage', BF16: 'BFloat16Storage' };

/**
 * The bytes of `torch.save(state_dict)` for `tensors` (f32 values stored as their dtype): the pickle
 * torch writes (protocol 2, memoised globals and location strings), `data/<key>` storages, and the
 * small records, in a zip laid out like `PyTorchStreamWriter`'s.
 */
export function torchSaveBytes(tensors: readonly TorchFixtureTensor[], options: TorchSaveOptions = {}): Uint8Array {
  const archive = options.archive ?? 'archive';
  const p = new PickleAssembler().proto(2);
  const memo = new Map<string, number>();
  const remember = (key: string, write: () => void): void => {
    const slot = memo.get(key);
    if (slot !== undefined) {
      p.binget(slot);
      return;
    }
    write();
    const next = memo.size;
    memo.set(key, next);
    p.binput(next);
  };
  if (options.ordered) {
    remember('OrderedDict', () => p.global('collections', 'OrderedDict'));
    p.emptyTuple().reduce();
  } else {
    p.emptyDict();
  }
  const storages: Array<{ key: string; bytes: Uint8Array }> = [];
  const storageOf = new Map<string, { key: string; dtype: string; numel: number }>();
  p.mark();
  for (const t of tensors) {
    const dtype = t.dtype ?? 'F32';
    let storage = t.viewOf ? storageOf.get(t.viewOf.tensor) : undefined;
    if (!storage) {
      storage = { key: String(storages.length), dtype, numel: t.values.length };
      storages.push({ key: storage.key, bytes: encodeFromF32(dtype, t.values) });
    }
    storageOf.set(t.name, storage);
    const contiguous: number[] = [];
    for (let i = t.shape.length - 1, s = 1; i >= 0; i--) {
      contiguous.unshift(s);
      s *= t.shape[i]!;
    }
    p.str(t.name);
    remember('rebuild', () => p.global('torch._utils', '_rebuild_tensor_v2'));
    p.mark();
    p.mark();
    remember('storage', () => p.str('storage'));
    remember(`class ${dtype}`, () => p.global('torch', STORAGE_CLASS[dtype]!));
    p.str(storage.key);
    remember('cpu', () => p.str('cpu'));
    p.int(storage.numel).tuple().binPersId();
    p.int(t.viewOf?.offset ?? 0).ints(t.shape).ints(t.viewOf?.stride ?? contiguous).bool(false);
    remember('OrderedDict', () => p.global('collections', 'OrderedDict'));
    p.emptyTuple().reduce().tuple().reduce();
  }
  p.setItems();
  if (options.ordered && options.withMetadataAttribute) {
    // {'_metadata': OrderedDict({'': {'version': 1}})}
    p.emptyDict().str('_metadata');
    remember('OrderedDict', () => p.global('collections', 'OrderedDict'));
    p.emptyTuple().reduce().str('').emptyDict().str('version').int(1).raw(0x73).raw(0x73).raw(0x73).build();
  }
  p.stop();
  const records: Array<{ name: string; data: Uint8Array }> = [
    { name: 'data.pkl', data: p.bytes() },
    { name: '.format_version', data: enc.encode('1') },
    { name: '.storage_alignment', data: enc.encode('64') },
  ];
  if (options.byteorder !== null) records.push({ name: 'byteorder', data: enc.encode(options.byteorder ?? 'little') });
  for (const s of storages) records.push({ name: `data/${s.key}`, data: s.bytes });
  records.push({ name: 'version', data: enc.encode('3\n') });
  return torchZipBytes(records.map((r) => ({ name: `${archive}/${r.name}`, data: r.data })), { zip64Entries: options.zip64Entries });
}

let crcTable: Uint32Array | undefined;
function crc32(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (const b of data) c = crcTable[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** How {@link torchZipBytes} lays out the archive. */
export interface TorchZipOptions {
  /** Write ZIP64 extra fields (sizes and offset saturated to 0xFFFFFFFF in the fixed fields). */
  readonly zip64Entries?: boolean;
  /** Leave out the ZIP64 end record and locator (torch always writes them). */
  readonly classicEnd?: boolean;
  /** Compression method written in the headers (the data stay as given); torch writes 0. */
  readonly method?: number;
}

/** A zip archive of stored records, data aligned to 64 bytes by a local extra field, as torch writes. */
export function torchZipBytes(records: ReadonlyArray<{ name: string; data: Uint8Array }>, options: TorchZipOptions = {}): Uint8Array {
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const put = (b: Uint8Array) => {
    chunks.push(b);
    offset += b.byteLength;
  };
  const central: Uint8Array[] = [];
  const method = options.method ?? 0;
  for (const r of records) {
    const name = enc.encode(r.name);
    const localAt = offset;
    const fixed = 30 + name.byteLength + 4;
    const pad = (64 - ((localAt + fixed) % 64)) % 64;
    const local = new Uint8Array(fixed + pad);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint16(6, 0x0800, true);
    lv.setUint16(8, method, true);
    lv.setUint32(14, crc32(r.data), true);
    lv.setUint32(18, r.data.byteLength, true);
    lv.setUint32(22, r.data.byteLength, true);
    lv.setUint16(26, name.byteLength, true);
    lv.setUint16(28, 4 + pad, true);
    local.set(name, 30);
    lv.setUint16(30 + name.byteLength, 0x4246, true); // "FB": torch's padding extra field id
    lv.setUint16(32 + name.byteLength, pad, true);
    put(local);
    put(r.data);
    const extra = options.zip64Entries ? 4 + 24 : 0;
    const c = new Uint8Array(46 + name.byteLength + extra);
    const cv = new DataView(c.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 45, true);
    cv.setUint16(6, 45, true);
    cv.setUint16(8, 0x0800, true);
    cv.setUint16(10, method, true);
    cv.setUint32(16, crc32(r.data), true);
    const sat = options.zip64Entries ? 0xffffffff : undefined;
    cv.setUint32(20, sat ?? r.data.byteLength, true);
    cv.setUint32(24, sat ?? r.data.byteLength, true);
    cv.setUint16(28, name.byteLength, true);
    cv.setUint16(30, extra, true);
    cv.setUint32(42, sat ?? localAt, true);
    c.set(name, 46);
    if (options.zip64Entries) {
      const x = 46 + name.byteLength;
      cv.setUint16(x, 0x0001, true);
      cv.setUint16(x + 2, 24, true);
      cv.setBigUint64(x + 4, BigInt(r.data.byteLength), true);
      cv.setBigUint64(x + 12, BigInt(r.data.byteLength), true);
      cv.setBigUint64(x + 20, BigInt(localAt), true);
    }
    central.push(c);
  }
  const cdAt = offset;
  for (const c of central) put(c);
  const cdSize = offset - cdAt;
  if (!options.classicEnd) {
    const z = new Uint8Array(56);
    const zv = new DataView(z.buffer);
    const zAt = offset;
    zv.setUint32(0, 0x06064b50, true);
    zv.setBigUint64(4, 44n, true);
    zv.setUint16(12, 45, true);
    zv.setUint16(14, 45, true);
    zv.setBigUint64(24, BigInt(records.length), true);
    zv.setBigUint64(32, BigInt(records.length), true);
    zv.setBigUint64(40, BigInt(cdSize), true);
    zv.setBigUint64(48, BigInt(cdAt), true);
    put(z);
    const l = new Uint8Array(20);
    const lv = new DataView(l.buffer);
    lv.setUint32(0, 0x07064b50, true);
    lv.setBigUint64(8, BigInt(zAt), true);
    lv.setUint32(16, 1, true);
    put(l);
  }
  const e = new Uint8Array(22);
  const ev = new DataView(e.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, records.length, true);
  ev.setUint16(10, records.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, cdAt, true);
  put(e);
  const out = new Uint8Array(offset);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
