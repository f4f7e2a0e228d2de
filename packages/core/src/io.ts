/**
 * Byte sources and sinks: how `core` reads and writes files without touching `fs`, so the same code
 * runs in Node and in a page. Node implementations live in the CLI.
 */

/** Random-access read-only bytes (a file, a fetched buffer). Offsets and lengths are in bytes. */
export interface ByteSource {
  /** Shown in error messages: a path or URL. */
  readonly label: string;
  /** Total size in bytes. */
  readonly size: number;
  /** Reads exactly `length` bytes at `offset`; rejects if the range is outside `[0, size)`. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /**
   * Optional fast path: fills `target` with the bytes at `offset` (exactly `target.byteLength` of
   * them) into memory the caller reuses, so streaming a large file does not allocate per chunk.
   */
  readInto?(target: Uint8Array, offset: number): Promise<void>;
}

/** Append-only byte sink. */
export interface ByteSink {
  write(chunk: Uint8Array): Promise<void>;
}

/** A sink written at byte offsets (a file opened for positional writes). */
export interface PositionalByteSink {
  writeAt(offset: number, chunk: Uint8Array): Promise<void>;
}

/** Throws `RangeError` unless `[offset, offset + length)` lies inside a source of `size` bytes. */
export function checkReadRange(label: string, size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
    throw new RangeError(`${label}: read of ${length} bytes at ${offset} is outside the ${size}-byte source`);
  }
}

/** A `ByteSource` over bytes already in memory. */
export function memorySource(label: string, bytes: Uint8Array): ByteSource {
  return {
    label,
    size: bytes.byteLength,
    async read(offset: number, length: number): Promise<Uint8Array> {
      checkReadRange(label, bytes.byteLength, offset, length);
      return bytes.subarray(offset, offset + length);
    },
  };
}

/** A `ByteSink` that collects everything written, for tests and small outputs. */
export class MemorySink implements ByteSink {
  private readonly chunks: Uint8Array[] = [];
  private length = 0;

  async write(chunk: Uint8Array): Promise<void> {
    this.chunks.push(chunk.slice());
    this.length += chunk.byteLength;
  }

  /** Everything written so far, concatenated. */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.byteLength;
    }
    return out;
  }
}
