/**
 * Reading a PyTorch `.bin` state dict (`torch.save`'s zip format) into the tensor table every
 * lorafuse stage speaks: a {@link SafetensorsHeader} whose tensors are byte ranges of the `.bin`
 * file, so they are planned, streamed and compared exactly like safetensors tensors.
 *
 * The archive is `<archive>/data.pkl` (the pickled state dict), `<archive>/data/<key>` (one record
 * per storage, its raw little-endian elements), `<archive>/byteorder`, `<archive>/version` and a
 * few other small records. A tensor is a view (offset, size, stride) of a storage; lorafuse maps
 * contiguous views to the bytes they cover and refuses strided ones by name (a transposed or
 * sliced view saved as such), since its readers take one byte range per tensor. Several tensors
 * may view one storage.
 */
import type { ByteSource } from '../io.js';
import { DTYPE_BITS } from '../safetensors/dtype.js';
import type { SafetensorsHeader, TensorInfo } from '../safetensors/header.js';
import { TorchFormatError } from './errors.js';
import { readStateDictPickle, type TorchTensorView } from './state-dict-pickle.js';
import { readZipDirectory, zipEntryDataOffset, type ZipDirectory, type ZipEntry } from './zip.js';

/** The largest `data.pkl` read, in bytes: a GPT-2 XL state dict pickles to about 100 KB. */
export const MAX_PICKLE_BYTES = 64 * 1024 * 1024;

/** The records of one archive, found under the archive's top folder. */
function recordOf(dir: ZipDirectory, prefix: string, name: string): ZipEntry | undefined {
  return dir.byName.get(`${prefix}/${name}`);
}

/** The archive's top folder: torch names every record `<archive>/...`, the first one included. */
function archivePrefix(dir: ZipDirectory, label: string): string {
  const first = dir.entries[0]?.name ?? '';
  const slash = first.indexOf('/');
  if (slash <= 0 || !dir.byName.has(`${first.slice(0, slash)}/data.pkl`)) {
    throw new TorchFormatError('TORCH_RECORD_MISSING', label, 'the zip archive has no <archive>/data.pkl record: it is a zip file, but not one torch.save wrote');
  }
  return first.slice(0, slash);
}

async function readRecord(source: ByteSource, entry: ZipEntry): Promise<Uint8Array> {
  const at = await zipEntryDataOffset(source, entry);
  return entry.size === 0 ? new Uint8Array(0) : source.read(at, entry.size);
}

async function checkByteOrder(source: ByteSource, dir: ZipDirectory, prefix: string): Promise<void> {
  // Archives from before the record existed were written little-endian, as torch assumes on load.
  const entry = recordOf(dir, prefix, 'byteorder');
  if (!entry) return;
  if (entry.size > 16) throw new TorchFormatError('TORCH_ZIP_INVALID', source.label, `the byteorder record is ${entry.size} bytes; torch writes "little" or "big"`);
  const order = new TextDecoder('latin1').decode(await readRecord(source, entry));
  if (order === 'little') return;
  if (order === 'big') throw new TorchFormatError('TORCH_BIG_ENDIAN', source.label, 'the byteorder record says "big": the tensors are big-endian, and lorafuse reads little-endian data only');
  throw new TorchFormatError('TORCH_ZIP_INVALID', source.label, `the byteorder record says ${JSON.stringify(order)}; torch writes "little" or "big"`);
}

/** The number of elements of `shape`, refused above 2^53 − 1. */
function elementCount(shape: readonly number[], label: string, name: string): number {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) throw new TorchFormatError('TORCH_LIMIT', label, `tensor ${JSON.stringify(name)} has shape [${shape.join(', ')}], too large to be real`, name);
  }
  return n;
}

/** Whether a view is row-major contiguous: dimensions of size 1 may have any stride, as in torch. */
function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] === 1) continue;
    if (stride[i] !== expected) return false;
    expected *= shape[i]!;
  }
  return true;
}

/** One tensor's byte range in the file, or the reason it cannot be one. */
function tensorInfo(name: string, view: TorchTensorView, storageStart: number, label: string): TensorInfo {
  const { storage, shape, stride, storageOffset } = view;
  const numel = elementCount(shape, label, name);
  const bytesPerElement = DTYPE_BITS[storage.dtype] / 8;
  if (numel > 0 && !isContiguous(shape, stride)) {
    throw new TorchFormatError('TORCH_TENSOR_UNSUPPORTED', label, `tensor ${JSON.stringify(name)} is a non-contiguous view (shape [${shape.join(', ')}], stride [${stride.join(', ')}]) of storage ${storage.key}; lorafuse reads contiguous tensors only`, name);
  }
  if (numel > 0 && storageOffset + numel > storage.numel) {
    throw new TorchFormatError('TORCH_TENSOR_UNSUPPORTED', label, `tensor ${JSON.stringify(name)} (${numel} elements from offset ${storageOffset}) runs past the end of storage ${storage.key} (${storage.numel} elements)`, name);
  }
  const begin = storageStart + (numel > 0 ? storageOffset * bytesPerElement : 0);
  const byteLength = numel * bytesPerElement;
  return { name, dtype: storage.dtype, shape: [...shape], begin, end: begin + byteLength, byteLength, fileOffset: begin };
}

/**
 * Reads the tensor table of the `torch.save` archive in `source` without running any of it.
 * The result has the shape of a safetensors header with `dataStart` 0, so `begin`, `end` and
 * `fileOffset` are absolute offsets in the `.bin` file; `headerLength` is 0 and `metadata` null.
 * Tensors are sorted by file offset (then end, then name); ranges may overlap when tensors share
 * a storage. Throws `TorchFormatError` for anything lorafuse does not read, naming the cause.
 */
export async function readTorchCheckpoint(source: ByteSource): Promise<SafetensorsHeader> {
  const label = source.label;
  const dir = await readZipDirectory(source);
  const prefix = archivePrefix(dir, label);
  await checkByteOrder(source, dir, prefix);
  const pickleEntry = recordOf(dir, prefix, 'data.pkl')!;
  if (pickleEntry.size > MAX_PICKLE_BYTES) {
    throw new TorchFormatError('TORCH_LIMIT', label, `data.pkl is ${pickleEntry.size} bytes; lorafuse reads a state dict pickle of at most ${MAX_PICKLE_BYTES} bytes`);
  }
  const stateDict = readStateDictPickle(await readRecord(source, pickleEntry), label);

  const storageStarts = new Map<string, number>();
  const tensors: TensorInfo[] = [];
  for (const [name, view] of stateDict) {
    const { storage } = view;
    let start = storageStarts.get(storage.key);
    if (start === undefined) {
      const entry = recordOf(dir, prefix, `data/${storage.key}`);
      if (!entry) throw new TorchFormatError('TORCH_RECORD_MISSING', label, `tensor ${JSON.stringify(name)} lives in storage ${storage.key}, but the archive has no record ${prefix}/data/${storage.key}`, name);
      const bytes = storage.numel * (DTYPE_BITS[storage.dtype] / 8);
      if (entry.size !== bytes) {
        throw new TorchFormatError('TORCH_ZIP_INVALID', label, `record ${entry.name} is ${entry.size} bytes, but its storage holds ${storage.numel} ${storage.dtype} elements (${bytes} bytes)`, name);
      }
      start = await zipEntryDataOffset(source, entry);
      storageStarts.set(storage.key, start);
    }
    tensors.push(tensorInfo(name, view, start, label));
  }
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { label, headerLength: 0, dataStart: 0, metadata: null, tensors, byName: new Map(tensors.map((t) => [t.name, t])) };
}
