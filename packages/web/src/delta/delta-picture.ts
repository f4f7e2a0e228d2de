/**
 * What the page keeps of each ΔW for its pictures: the magnitude grid (max |ΔW| per block, at most
 * DISPLAY_MAX_SIDE cells a side) and the Frobenius norm, reduced on the merge's device while ΔW is
 * there. The full ΔW is never kept: a 124M merge has ~50 of them, up to 154 MB each.
 */
import { readMagnitudeGrid, type MagnitudeGridShape } from '@lorafuse/kernels/view';

/**
 * Cells per side of a kept grid. 1024 is more than a canvas of the page shows across, and keeps a
 * grid at most 4 MiB (f32): ~50 of them stay well under the size of the merged model itself.
 */
export const DISPLAY_MAX_SIDE = 1024;

/** One merged tensor's ΔW, as the page draws it. */
export interface DeltaPicture {
  /** The merged tensor (`transformer.h.0.attn.c_attn.weight`). */
  readonly tensor: string;
  /** ΔW's shape as W is stored (GPT-2's Conv1D: `[in, out]`). */
  readonly rows: number;
  readonly cols: number;
  readonly shape: MagnitudeGridShape;
  /** Max |ΔW| per cell, row-major `[shape.gridRows, shape.gridCols]`. */
  readonly cells: Float32Array;
  /** Max |ΔW| of the whole tensor (the colour map's top). */
  readonly maxAbs: number;
  /** ‖ΔW‖_F: √ of the f64 sum of the grid's f32 block sums of squares. */
  readonly norm: number;
}

/** Reduces the ΔW on `device` (row-major f32 `[rows, cols]`; undefined when empty) to its picture. */
export async function captureDeltaPicture(device: GPUDevice, tensor: string, rows: number, cols: number, delta: GPUBuffer | undefined): Promise<DeltaPicture> {
  if (delta === undefined || rows * cols === 0) {
    return { tensor, rows, cols, shape: { rows, cols, blockRows: 1, blockCols: 1, gridRows: 0, gridCols: 0 }, cells: new Float32Array(0), maxAbs: 0, norm: 0 };
  }
  const grid = await readMagnitudeGrid(device, { matrix: delta, rows, cols, maxSide: DISPLAY_MAX_SIDE, label: `picture of ΔW ${tensor}` });
  // Indexed loops: iterating a grid of up to a million cells with for..of cost ~20 ms a tensor in
  // the page, a tenth of a merge's time.
  const { sumSquares, maxAbs: cells } = grid;
  let sum = 0;
  for (let i = 0; i < sumSquares.length; i++) sum += sumSquares[i]!;
  let maxAbs = 0;
  for (let i = 0; i < cells.length; i++) if (cells[i]! > maxAbs) maxAbs = cells[i]!;
  return { tensor, rows, cols, shape: grid.shape, cells: grid.maxAbs, maxAbs, norm: Math.sqrt(sum) };
}
