import { computeLoraBias, computeTokenRows, copiedFrom, nonFiniteRefusal, type PlannedTensor, type TensorRef } from '@lorafuse/core';
import type { MergedBytes, MergeExecutor, MergeTensor } from '../devices/index.js';
import type { OpenFiles } from '../fs/inputs.js';
import { streamRange } from '../fs/stream-range.js';
import { digestBytes } from '../proof/digest.js';
import type { Intended } from '../proof/prove-loads.js';

/** Produces an output tensor's bytes: copied ranges streamed, merges run on the executor. */
export interface TensorProducer {
  /** The whole tensor in memory (for the tie comparison). */
  bytes(t: PlannedTensor): Promise<Uint8Array>;
  /**
   * Streams the tensor to `sink` and returns what verification must find: the input range for a
   * copied tensor, the SHA-256 of computed bytes otherwise.
   */
  stream(t: PlannedTensor, sink: (chunk: Uint8Array) => Promise<void>): Promise<Intended>;
  /**
   * Streams copied tensors whose input bytes lie back to back in one file (see {@link copyRuns}) as
   * one range, so many small tensors cost a few reads rather than one each; returns their intents.
   */
  streamRun(run: readonly PlannedTensor[], sink: (chunk: Uint8Array) => Promise<void>): Promise<Intended[]>;
}

/**
 * Splits tensors (all of a file's, in its order) into runs: consecutive copied tensors whose input
 * ranges are back to back in one file form one run; every other tensor, and any for which `alone`
 * holds, is a run of its own.
 */
export function copyRuns(tensors: readonly PlannedTensor[], alone: (t: PlannedTensor) => boolean): PlannedTensor[][] {
  const runs: PlannedTensor[][] = [];
  let previous: TensorRef | undefined;
  for (const t of tensors) {
    const from = alone(t) ? undefined : copiedFrom(t);
    const run = runs[runs.length - 1];
    if (from && previous && run && previous.file === from.file && previous.fileOffset + previous.byteLength === from.fileOffset) run.push(t);
    else runs.push([t]);
    previous = from;
  }
  return runs;
}

/** `executor` may still be starting: copies need none, so they need not wait for a browser. */
export function tensorProducer(files: OpenFiles, executor: Promise<MergeExecutor>, allowNonFinite: boolean): TensorProducer {
  const checkFinite = (t: PlannedTensor, merged: MergedBytes): MergedBytes => {
    const refusal = allowNonFinite ? undefined : nonFiniteRefusal(t, merged, 'pass --allow-nonfinite to write the tensor anyway');
    if (refusal) {
      merged.release?.();
      throw refusal;
    }
    return merged;
  };
  const read = (ref: TensorRef) => files.get(ref.file).read(ref.fileOffset, ref.byteLength);
  const computed = async (t: PlannedTensor): Promise<MergedBytes | undefined> => {
    const s = t.source;
    if (s.kind === 'merge') return checkFinite(t, await (await executor).merge(t as MergeTensor));
    if (s.kind === 'bias') return checkFinite(t, await computeLoraBias(s, read));
    if (s.kind === 'rows') return { bytes: await computeTokenRows(s, read), nonFinite: 0 };
    return undefined;
  };
  return {
    async bytes(t) {
      // Kept by the caller: never released back to the executor.
      const c = await computed(t);
      if (c) return c.bytes;
      if (t.source.kind !== 'copy' && t.source.kind !== 'replace') throw new Error('internal: unhandled tensor source');
      return read(t.source.from);
    },
    async stream(t, sink) {
      if (t.source.kind === 'copy' || t.source.kind === 'replace') {
        const from = t.source.from;
        await streamRange(files.get(from.file), from.fileOffset, from.byteLength, sink);
        return { kind: 'range', ref: from };
      }
      const c = (await computed(t))!;
      try {
        await sink(c.bytes);
        return { kind: 'digest', digest: c.digest ?? digestBytes(c.bytes) };
      } finally {
        c.release?.();
      }
    },
    async streamRun(run, sink) {
      const refs = run.map((t) => copiedFrom(t) ?? Promise.reject(new Error(`internal: ${t.name} is not a copied tensor`)));
      const first = refs[0] as TensorRef;
      const last = refs[refs.length - 1] as TensorRef;
      await streamRange(files.get(first.file), first.fileOffset, last.fileOffset + last.byteLength - first.fileOffset, sink);
      return (refs as TensorRef[]).map((ref) => ({ kind: 'range', ref }));
    },
  };
}
