/**
 * Where a merge's files go while they are produced: a directory the person chose (written in place
 * through the File System Access API) or a download assembled from per-tensor Blob parts. Either
 * way the page never holds the whole checkpoint in one buffer, and what it proves is read back from
 * what was written.
 */
import type { PositionalByteSink } from '@lorafuse/core';

/** The name the merged weights are saved under (one file: the app does not shard). */
export const OUTPUT_WEIGHTS = 'model.safetensors';
/** The name the merged config is saved under. */
export const OUTPUT_CONFIG = 'config.json';

/** model.safetensors opened for positional writes. */
export interface WeightsFile extends PositionalByteSink {
  /** Writes `blob`'s bytes at `offset` without the page reading them (a slice of a picked file goes in as it is). */
  writeBlobAt(offset: number, blob: Blob): Promise<void>;
  /** Ends the writing: the bytes as written, to read back (a Blob of the parts, or the file on disk). */
  close(): Promise<Blob>;
}

/** A file the output carries as picked (the base's tokenizer, generation_config.json, ...). */
export interface CarriedFile {
  readonly name: string;
  readonly file: Blob;
}

/** The merged files, settled. */
export interface WrittenFiles {
  readonly model: Blob;
  readonly config: Blob;
  /** The carried files, as written. */
  readonly carried: readonly CarriedFile[];
  /** The chosen directory's name when the files were written there; undefined for a download. */
  readonly directory?: string;
}

/** One merge's output: open the weights, write them, then commit the config, or discard everything. */
export interface MergeOutput {
  /**
   * Opens model.safetensors, `size` bytes long when written in full; throws if the output cannot take
   * it, or already holds one of the files or of `carried` (the names commit will write too).
   */
  openWeights(size: number, carried: readonly string[]): Promise<WeightsFile>;
  /** Writes config.json and the carried files next to the closed weights: after this, all are there. */
  commit(config: Uint8Array, carried: readonly CarriedFile[]): Promise<WrittenFiles>;
  /** Removes whatever this output wrote, if anything yet (a failed or unproven merge leaves nothing behind). Never throws. */
  discard(): Promise<void>;
}
