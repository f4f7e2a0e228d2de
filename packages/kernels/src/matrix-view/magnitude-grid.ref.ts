/**
 * CPU twin of the magnitude-grid kernel: plain loops, the maximum taken on the same bit patterns
 * (so NaN sorts above +Inf as on the GPU), the sums accumulated in f64.
 */
import { magnitudeGridShape, type MagnitudeGridShape } from './magnitude-grid.shape.js';

/** Parameters of {@link magnitudeGridRef}. */
export interface MagnitudeGridRefParams {
  /** The matrix, row-major f32 `[rows, cols]`. */
  m: Float32Array;
  rows: number;
  cols: number;
  /** Most cells per side of the grid. */
  maxSide: number;
}

/** What {@link magnitudeGridRef} gives: per cell, row-major `[gridRows, gridCols]`. */
export interface MagnitudeGridRef {
  shape: MagnitudeGridShape;
  /** Largest |m| of each cell's block (f32). */
  maxAbs: Float32Array;
  /** Σ m² over each cell's block (f64). */
  sumSquares: Float64Array;
}

/** Max pooling of |m| and Σ m² per block of {@link magnitudeGridShape}. */
export function magnitudeGridRef(params: MagnitudeGridRefParams): MagnitudeGridRef {
  const shape = magnitudeGridShape(params.rows, params.cols, params.maxSide);
  if (params.m.length !== params.rows * params.cols) throw new RangeError(`magnitudeGridRef: m has ${params.m.length} values, [${params.rows}, ${params.cols}] needs ${params.rows * params.cols}.`);
  const bits = new Uint32Array(params.m.buffer, params.m.byteOffset, params.m.length);
  const cells = shape.gridRows * shape.gridCols;
  const maxBits = new Uint32Array(cells);
  const sumSquares = new Float64Array(cells);
  for (let r = 0; r < shape.rows; r++) {
    const gr = Math.floor(r / shape.blockRows);
    for (let c = 0; c < shape.cols; c++) {
      const cell = gr * shape.gridCols + Math.floor(c / shape.blockCols);
      const abs = bits[r * shape.cols + c]! & 0x7fffffff;
      if (abs > maxBits[cell]!) maxBits[cell] = abs;
      const v = params.m[r * shape.cols + c]!;
      sumSquares[cell] = sumSquares[cell]! + v * v;
    }
  }
  return { shape, maxAbs: new Float32Array(maxBits.buffer), sumSquares };
}
