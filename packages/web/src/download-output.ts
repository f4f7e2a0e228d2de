/**
 * The download output: each write becomes its own Blob part and the file is `new Blob(parts)`, so
 * the browser may keep the bytes off the JS heap (large blobs go to its blob storage, on disk if
 * need be) instead of one checkpoint-sized Uint8Array.
 */
import type { CarriedFile, MergeOutput, WeightsFile, WrittenFiles } from './merge-output.js';

/** A {@link MergeOutput} whose files are Blobs, offered as downloads afterwards. */
export function downloadOutput(): MergeOutput {
  let model: Blob | undefined;
  return {
    async openWeights(size: number, _carried: readonly string[] = []): Promise<WeightsFile> {
      const parts: Array<{ offset: number; part: Blob }> = [];
      return {
        async writeAt(offset: number, chunk: Uint8Array): Promise<void> {
          // The Blob copies the chunk's bytes: the caller may drop or reuse its buffer at once.
          parts.push({ offset, part: new Blob([chunk as Uint8Array<ArrayBuffer>]) });
        },
        async writeBlobAt(offset: number, blob: Blob): Promise<void> {
          // A picked file's slice stays a reference to the file: its bytes are read when the download is saved.
          parts.push({ offset, part: blob });
        },
        async close(): Promise<Blob> {
          parts.sort((a, b) => a.offset - b.offset);
          let end = 0;
          for (const { offset, part } of parts) {
            if (offset !== end) throw new Error(`internal: the written parts of the weights ${offset < end ? 'overlap' : 'leave a gap'} at byte ${Math.min(offset, end)}`);
            end += part.size;
          }
          if (end !== size) throw new Error(`internal: ${end} of the weights' ${size} bytes were written`);
          model = new Blob(parts.map((p) => p.part), { type: 'application/octet-stream' });
          parts.length = 0;
          return model;
        },
      };
    },
    async commit(config: Uint8Array, carried: readonly CarriedFile[] = []): Promise<WrittenFiles> {
      if (!model) throw new Error('internal: config committed before the weights were closed');
      return { model, config: new Blob([config as Uint8Array<ArrayBuffer>], { type: 'application/json' }), carried };
    },
    async discard(): Promise<void> {
      model = undefined;
    },
  };
}
