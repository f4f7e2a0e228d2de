/**
 * The proof's two reads of files — are these ranges equal, what is this range's SHA-256 — on the
 * run's worker threads when it has them: each worker reads through the descriptors this thread
 * holds open, with blocking reads into buffers that stay in its core's cache, and a large range is
 * split over all of them. On this thread, every read is a round trip to libuv's pool and every
 * comparison and hash waits its turn behind the others (the proof of a 124M merge took 2.5× as long
 * there). Without workers, or with a source that is not an open file, they run here as before.
 */
import { checkReadRange, type ByteSource } from '@lorafuse/core';
import type { CpuMergePool } from '../devices/index.js';
import { byteRangesEqual } from '../fs/byte-ranges.js';
import { fromFsError, osErrorCode } from '../fs/fs-error.js';
import { digestRange as digestRangeHere } from './digest.js';

/** The reads the proof makes, by source and range. */
export interface FileChecks {
  rangesEqual(a: ByteSource, offsetA: number, b: ByteSource, offsetB: number, length: number): Promise<boolean>;
  digestRange(source: ByteSource, offset: number, length: number): Promise<string>;
}

/** A source the workers can read: an open file with its descriptor. */
const fdOf = (s: ByteSource): number | undefined => {
  const fd = (s as { fd?: unknown }).fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
};

/** On this thread only. */
export const checksHere: FileChecks = { rangesEqual: byteRangesEqual, digestRange: digestRangeHere };

/** The proof's file checks on `pool`'s workers (on this thread where they cannot run). */
export function fileChecks(pool: CpuMergePool | undefined): FileChecks {
  if (pool === undefined) return checksHere;
  /** Runs `job` on the workers; a worker's failure that is not the file's (the pool died) is redone here. */
  const onWorkers = async <T>(sources: readonly ByteSource[], job: (fds: number[]) => Promise<T>, here: () => Promise<T>): Promise<T> => {
    const fds = sources.map(fdOf);
    if (pool.threads === 0 || fds.some((fd) => fd === undefined)) return here();
    try {
      return await job(fds as number[]);
    } catch (e) {
      // The worker says which descriptor it was reading.
      const failed = sources[fds.indexOf((e as { fd?: number }).fd)];
      if (failed && osErrorCode(e) !== undefined) throw fromFsError(e, failed.label, 'read', 'input');
      // A read past the end: the file shrank after it was opened (its range was checked first).
      if (failed) throw new RangeError(`${failed.label}: ${(e as Error).message}`);
      if (pool.threads === 0) return here();
      throw e;
    }
  };
  return {
    async rangesEqual(a, offsetA, b, offsetB, length) {
      if (a === b && offsetA === offsetB) return true;
      checkReadRange(a.label, a.size, offsetA, length);
      checkReadRange(b.label, b.size, offsetB, length);
      return onWorkers([a, b], ([fdA, fdB]) => pool.filesEqual({ fd: fdA!, offset: offsetA, length }, { fd: fdB!, offset: offsetB, length }), () => byteRangesEqual(a, offsetA, b, offsetB, length));
    },
    async digestRange(source, offset, length) {
      checkReadRange(source.label, source.size, offset, length);
      return onWorkers([source], ([fd]) => pool.digestFile({ fd: fd!, offset, length }), () => digestRangeHere(source, offset, length));
    },
  };
}
