/**
 * Dispatch-size helpers shared by the kernels. Pure functions (no GPU), unit-tested in Node.
 */

/** WebGPU's default `maxComputeWorkgroupsPerDimension`. */
export const DEFAULT_MAX_WORKGROUPS_PER_DIMENSION = 65_535;

/**
 * Folds a 1-D count of workgroups into a 2-D grid `[x, y]` with `x, y <= maxPerDimension` and
 * `x * y >= count`. The shader recovers the linear index as `wid.y * x + wid.x` and must skip
 * indices `>= count` (the last row of the grid may be partly empty).
 *
 * @throws RangeError when `count` exceeds `maxPerDimension²`.
 */
export function foldDispatch(count: number, maxPerDimension = DEFAULT_MAX_WORKGROUPS_PER_DIMENSION): [x: number, y: number] {
  if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`Workgroup count must be a non-negative integer, got ${count}.`);
  if (count <= maxPerDimension) return [count, 1];
  const y = Math.ceil(count / maxPerDimension);
  if (y > maxPerDimension) {
    throw new RangeError(`${count} workgroups exceed maxComputeWorkgroupsPerDimension² (${maxPerDimension}²).`);
  }
  // Spread evenly over the y rows so that at most y - 1 workgroups are idle.
  return [Math.ceil(count / y), y];
}

/** One slice of rows of a row-major matrix bound at an offset the device accepts. */
export interface RowChunk {
  /** First row of the chunk. */
  rowStart: number;
  /** Number of rows in the chunk (>= 1). */
  rowCount: number;
  /** Byte offset of the binding; a multiple of the offset alignment. */
  bindingOffset: number;
  /** Byte size of the binding (>= the chunk's rows; a multiple of 4). */
  bindingSize: number;
  /** Element (f32) offset of the chunk's first row inside the binding. */
  elementOffset: number;
}

/**
 * Splits a row-major f32 matrix `[rows, cols]` into row chunks that each fit one storage binding of
 * at most `maxBindingSize` bytes whose offset is a multiple of `offsetAlignment`. A chunk's binding
 * may start up to `offsetAlignment - 4` bytes before its first row (see `elementOffset`), so any row
 * length works. One chunk when the whole matrix fits.
 *
 * @throws RangeError naming `maxStorageBufferBindingSize` when a row cannot be bound.
 */
export function planRowChunks(rows: number, cols: number, maxBindingSize: number, offsetAlignment: number): RowChunk[] {
  const rowBytes = cols * 4;
  const chunks: RowChunk[] = [];
  if (rows === 0 || cols === 0) return chunks;
  if (rowBytes > maxBindingSize) {
    throw new RangeError(
      `One row of ${cols} f32 values (${rowBytes} bytes) is larger than the device's maxStorageBufferBindingSize (${maxBindingSize} bytes); ` +
        'it cannot be bound even in chunks. Use an adapter with a larger maxStorageBufferBindingSize.',
    );
  }
  let rowStart = 0;
  while (rowStart < rows) {
    const byteStart = rowStart * rowBytes;
    const headroom = byteStart % offsetAlignment;
    let rowCount = Math.min(rows - rowStart, Math.floor((maxBindingSize - headroom) / rowBytes));
    // Prefer a chunk end after which the next row can still be bound (its start rounds down to an
    // aligned offset); this only matters for limits close to the alignment.
    for (let n = rowCount; n >= 1 && rowStart + n < rows; n--) {
      if (maxBindingSize - (((rowStart + n) * rowBytes) % offsetAlignment) >= rowBytes) {
        rowCount = n;
        break;
      }
    }
    if (rowCount < 1) {
      throw new RangeError(
        `Row ${rowStart} (${rowBytes} bytes) does not fit maxStorageBufferBindingSize (${maxBindingSize} bytes) at an offset aligned to ` +
          `minStorageBufferOffsetAlignment (${offsetAlignment}).`,
      );
    }
    chunks.push({
      rowStart,
      rowCount,
      bindingOffset: byteStart - headroom,
      bindingSize: headroom + rowCount * rowBytes,
      elementOffset: headroom / 4,
    });
    rowStart += rowCount;
  }
  return chunks;
}
