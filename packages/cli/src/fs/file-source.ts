import type { ByteSource } from '@lorafuse/core';
import { fromFsError } from './fs-error.js';
import { openInputFile } from './input-file.js';

/** A `ByteSource` over a file, read by positioned reads. Call `close()` when done. */
export interface FileByteSource extends ByteSource {
  readonly path: string;
  /** The open descriptor (-1 once closed): worker threads read through it too. */
  readonly fd: number;
  close(): Promise<void>;
}

/** Opens `path` read-only for range reads; anything but a regular file is refused before it is opened. */
export async function openFileSource(path: string): Promise<FileByteSource> {
  const { handle, size } = await openInputFile(path);
  const readInto = async (target: Uint8Array, offset: number): Promise<void> => {
    const length = target.byteLength;
    if (offset < 0 || offset + length > size) {
      throw new RangeError(`${path}: read of ${length} bytes at ${offset} is outside the ${size}-byte file`);
    }
    let done = 0;
    while (done < length) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await handle.read(target, done, length - done, offset + done));
      } catch (e) {
        throw fromFsError(e, path, 'read', 'input');
      }
      if (bytesRead === 0) throw new RangeError(`${path}: file ended early (changed while reading?)`);
      done += bytesRead;
    }
  };
  return {
    label: path,
    path,
    size,
    get fd() {
      return handle.fd;
    },
    async read(offset: number, length: number): Promise<Uint8Array> {
      const out = new Uint8Array(length);
      await readInto(out, offset);
      return out;
    },
    readInto,
    close: () => handle.close(),
  };
}
