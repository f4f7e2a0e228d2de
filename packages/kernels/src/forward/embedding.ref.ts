/** CPU reference of an embedding lookup: row `ids[i]` of a `[rows, dim]` table for each `i`. */

/** `[ids.length, dim]`; an id outside the table is the caller's error to report, here a RangeError. */
export function embeddingRef(table: Float32Array, dim: number, ids: readonly number[]): Float32Array {
  const rows = table.length / dim;
  const out = new Float32Array(ids.length * dim);
  ids.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id >= rows) throw new RangeError(`id ${id} is outside a table of ${rows} rows`);
    out.set(table.subarray(id * dim, id * dim + dim), i * dim);
  });
  return out;
}
