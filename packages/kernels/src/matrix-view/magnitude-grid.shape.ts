/**
 * The geometry of a magnitude grid: how a matrix `[rows, cols]` is cut into blocks so that the grid
 * of blocks has at most `maxSide` cells on a side. Pure; shared by the kernel and its CPU twin.
 */

/** Blocks and grid of {@link magnitudeGridShape}. */
export interface MagnitudeGridShape {
  /** Rows and columns of the matrix. */
  readonly rows: number;
  readonly cols: number;
  /** Rows and columns of the matrix per cell (the last row or column of cells may cover fewer). */
  readonly blockRows: number;
  readonly blockCols: number;
  /** Cells of the grid: `ceil(rows / blockRows)` × `ceil(cols / blockCols)`, each at most `maxSide`. */
  readonly gridRows: number;
  readonly gridCols: number;
}

/**
 * The smallest blocks that bring `[rows, cols]` down to at most `maxSide` cells on each side (each
 * axis on its own: a 50257 × 768 embedding with `maxSide` 1024 becomes 1006 × 768 cells of 50 × 1).
 * An empty matrix has an empty grid.
 *
 * @throws RangeError for sizes that are not non-negative integers or `maxSide` < 1.
 */
export function magnitudeGridShape(rows: number, cols: number, maxSide: number): MagnitudeGridShape {
  for (const [name, v] of [['rows', rows], ['cols', cols]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`magnitude-grid: ${name} must be a non-negative integer, got ${v}.`);
  }
  if (!Number.isSafeInteger(maxSide) || maxSide < 1) throw new RangeError(`magnitude-grid: maxSide must be a positive integer, got ${maxSide}.`);
  const blockRows = Math.max(1, Math.ceil(rows / maxSide));
  const blockCols = Math.max(1, Math.ceil(cols / maxSide));
  return { rows, cols, blockRows, blockCols, gridRows: Math.ceil(rows / blockRows), gridCols: Math.ceil(cols / blockCols) };
}
