/**
 * The files a person picked or dropped, as the byte sources core reads: nothing is read until a
 * range is asked for (`File.slice`), so headers come first and a tensor's bytes only when needed.
 */
import { checkReadRange, type ByteSource } from '@lorafuse/core';

/** The files of one picked directory, by base name; `dir` prefixes every label (`base/config.json`). */
export interface PickedDir {
  readonly dir: string;
  readonly files: ReadonlyMap<string, File>;
}

/** Groups picked files by their base name (a directory pick gives `webkitRelativePath`s; only the top level counts). */
export function pickedDir(dir: string, files: Iterable<File>): PickedDir {
  const byName = new Map<string, File>();
  for (const f of files) {
    const rel = f.webkitRelativePath || f.name;
    const parts = rel.split('/');
    // A directory pick names the directory first; a file nested deeper is not part of the checkpoint.
    if (parts.length > 2) continue;
    byName.set(parts[parts.length - 1]!, f);
  }
  return { dir, files: byName };
}

/** The label a picked file is named by in messages and plans. */
export function labelOf(dir: PickedDir, name: string): string {
  return `${dir.dir}/${name}`;
}

/** A picked file's bytes: read as a `ByteSource`, or sliced as a Blob that an output takes as it is. */
export interface FileByteSource extends ByteSource {
  /** `length` bytes at `offset`, not read: a Blob backed by the file itself. */
  slice(offset: number, length: number): Blob;
}

/** A `ByteSource` over a picked file. */
export function fileSource(label: string, file: Blob): FileByteSource {
  return {
    label,
    size: file.size,
    slice(offset: number, length: number): Blob {
      checkReadRange(label, file.size, offset, length);
      return file.slice(offset, offset + length);
    },
    async read(offset: number, length: number): Promise<Uint8Array> {
      checkReadRange(label, file.size, offset, length);
      return new Uint8Array(await file.slice(offset, offset + length).arrayBuffer());
    },
  };
}
