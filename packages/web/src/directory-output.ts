/**
 * The chosen-directory output (File System Access API, Chromium): model.safetensors is written in
 * place with positional writes of a FileSystemWritableFileStream. Such a stream writes to a swap
 * file that replaces the target only on close(), so a merge that fails mid-write aborts it and the
 * target never holds a partial file; the entries this output created are removed again. Files
 * already there are never replaced: the directory might be the base's own.
 */
import { EnvironmentError, UsageError } from '@lorafuse/errors';
import { OUTPUT_CONFIG, OUTPUT_WEIGHTS, type CarriedFile, type MergeOutput, type WeightsFile, type WrittenFiles } from './merge-output.js';

/** `window.showDirectoryPicker`, where the browser has it (not in TypeScript's DOM library yet). */
type DirectoryPicker = (options?: { id?: string; mode?: 'read' | 'readwrite' }) => Promise<FileSystemDirectoryHandle>;

function directoryPicker(): DirectoryPicker | undefined {
  const picker = (window as unknown as { showDirectoryPicker?: DirectoryPicker }).showDirectoryPicker;
  return typeof picker === 'function' ? picker.bind(window) : undefined;
}

/** Whether this browser lets the page write into a directory the person chooses. */
export function canChooseDirectory(): boolean {
  return directoryPicker() !== undefined;
}

/** Asks for an output directory (read-write); undefined when the person cancels the picker, an `EnvironmentError` when the browser refuses one. */
export async function chooseDirectory(): Promise<FileSystemDirectoryHandle | undefined> {
  const picker = directoryPicker();
  if (!picker) return undefined;
  try {
    return await picker({ id: 'lorafuse-output', mode: 'readwrite' });
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') return undefined;
    // The browser refused (a system directory, a denied permission): say so, and what else there is.
    throw new EnvironmentError('OUTPUT_DIR_REFUSED', `the browser gave no output directory (${e instanceof Error ? `${e.name}: ${e.message}` : String(e)})`, {
      hint: 'Choose another directory, or none: the merged files are then offered as downloads.',
      cause: e,
    });
  }
}

async function exists(dir: FileSystemDirectoryHandle, name: string): Promise<boolean> {
  try {
    await dir.getFileHandle(name);
    return true;
  } catch (e) {
    if (e instanceof DOMException && e.name === 'NotFoundError') return false;
    // A directory of that name is in the way as much as a file.
    if (e instanceof DOMException && e.name === 'TypeMismatchError') return true;
    throw e;
  }
}

/** A browser's write failure as a lorafuse error naming the file. */
function writeError(e: unknown, path: string): EnvironmentError {
  const name = e instanceof DOMException ? e.name : '';
  if (name === 'QuotaExceededError') return new EnvironmentError('DISK_FULL', `no space left writing ${path}`, { subject: path, hint: 'Free some space or choose an output directory on another disk; nothing was left there.', cause: e });
  if (name === 'NotAllowedError' || name === 'NoModificationAllowedError' || name === 'SecurityError') {
    return new EnvironmentError('OUTPUT_NOT_WRITABLE', `cannot write ${path} (${name})`, { subject: path, hint: 'Choose an output directory the browser may write to, and allow it when asked.', cause: e });
  }
  return new EnvironmentError('OUTPUT_WRITE_FAILED', `writing ${path} failed: ${e instanceof Error ? e.message : String(e)}`, { subject: path, hint: 'Try again, or choose another output directory (or none, to download the files); nothing was left there.', cause: e });
}

/** A {@link MergeOutput} writing model.safetensors and config.json into `dir`. */
export function directoryOutput(dir: FileSystemDirectoryHandle): MergeOutput {
  const created: string[] = [];
  let open: FileSystemWritableFileStream | undefined;
  let model: File | undefined;
  const pathOf = (name: string) => `${dir.name}/${name}`;

  const createFile = async (name: string): Promise<{ handle: FileSystemFileHandle; writable: FileSystemWritableFileStream }> => {
    try {
      const handle = await dir.getFileHandle(name, { create: true });
      created.push(name);
      // A fresh swap file: nothing of an earlier file shows through the parts not yet written.
      const writable = await handle.createWritable({ keepExistingData: false });
      return { handle, writable };
    } catch (e) {
      throw writeError(e, pathOf(name));
    }
  };

  return {
    async openWeights(_size: number, carried: readonly string[] = []): Promise<WeightsFile> {
      const there = [];
      for (const name of [OUTPUT_WEIGHTS, OUTPUT_CONFIG, ...carried]) if (await exists(dir, name)) there.push(name);
      if (there.length > 0) {
        throw new UsageError('OUT_DIR_NOT_EMPTY', `output directory ${dir.name} already holds ${there.join(' and ')}`, {
          subject: dir.name,
          hint: 'Choose an empty directory for the merged files, or move those files elsewhere first: the app never replaces files.',
        });
      }
      const { handle, writable } = await createFile(OUTPUT_WEIGHTS);
      open = writable;
      return {
        async writeAt(offset: number, chunk: Uint8Array): Promise<void> {
          try {
            await writable.write({ type: 'write', position: offset, data: chunk as Uint8Array<ArrayBuffer> });
          } catch (e) {
            throw writeError(e, pathOf(OUTPUT_WEIGHTS));
          }
        },
        async writeBlobAt(offset: number, blob: Blob): Promise<void> {
          try {
            await writable.write({ type: 'write', position: offset, data: blob });
          } catch (e) {
            throw writeError(e, pathOf(OUTPUT_WEIGHTS));
          }
        },
        async close(): Promise<Blob> {
          try {
            await writable.close();
            open = undefined;
            model = await handle.getFile();
            return model;
          } catch (e) {
            throw writeError(e, pathOf(OUTPUT_WEIGHTS));
          }
        },
      };
    },
    async commit(config: Uint8Array, carried: readonly CarriedFile[] = []): Promise<WrittenFiles> {
      if (!model) throw new Error('internal: config committed before the weights were closed');
      const writeWhole = async (name: string, bytes: Blob): Promise<File> => {
        const { handle, writable } = await createFile(name);
        open = writable;
        try {
          await writable.write(bytes);
          await writable.close();
          open = undefined;
          return await handle.getFile();
        } catch (e) {
          throw writeError(e, pathOf(name));
        }
      };
      const written: CarriedFile[] = [];
      for (const c of carried) written.push({ name: c.name, file: await writeWhole(c.name, c.file) });
      // config.json last: it is what makes the directory a checkpoint.
      const configFile = await writeWhole(OUTPUT_CONFIG, new Blob([config as Uint8Array<ArrayBuffer>]));
      return { model, config: configFile, carried: written, directory: dir.name };
    },
    async discard(): Promise<void> {
      // The swap file goes with the abort; then the entries this output created (empty or whole).
      await open?.abort().catch(() => undefined);
      open = undefined;
      model = undefined;
      for (const name of created.splice(0)) await dir.removeEntry(name).catch(() => undefined);
    },
  };
}
