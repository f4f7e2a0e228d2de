/**
 * Shapes and index rules of the LoRA merge, shared by the GPU wrapper and the CPU reference.
 */

/**
 * How W relates to the LoRA factors A `[r, in]` and B `[out, r]` (both row-major f32):
 * - `'linear'`: W is `[out, in]` (torch `nn.Linear`): `W[o, i] += s · Σ_k B[o, k] · A[k, i]`.
 * - `'transposed'`: W is `[in, out]` (GPT-2 `Conv1D`), or `[num_embeddings, dim]` for `nn.Embedding`
 *   (PEFT stores A `[r, num_embeddings]`, B `[dim, r]`): `W[i, o] += s · Σ_k B[o, k] · A[k, i]`.
 */
export type LoraMergeOrientation = 'linear' | 'transposed';

/** Shape of one merge. `rows` × `cols` is W's row-major shape as stored, whatever the orientation. */
export interface LoraMergeShape {
  /** Rows of W: `out` for `'linear'`, `in` for `'transposed'`. */
  rows: number;
  /** Columns of W: `in` for `'linear'`, `out` for `'transposed'`. */
  cols: number;
  /** LoRA rank r (>= 1). */
  rank: number;
  orientation: LoraMergeOrientation;
}

/** Element counts (f32) that W, A and B must hold for a shape. */
export interface LoraMergeSizes {
  /** `rows * cols`. */
  w: number;
  /** A is `[rank, in]`. */
  a: number;
  /** B is `[out, rank]`. */
  b: number;
  /** `in` of the layer. */
  inFeatures: number;
  /** `out` of the layer. */
  outFeatures: number;
}

function checkCount(name: string, value: unknown, min: number): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`lora-merge: ${name} must be an integer >= ${min}, got ${String(value)}.`);
  }
}

/**
 * Validates a merge shape and returns the element counts of W, A and B.
 *
 * @throws RangeError for non-integer or negative sizes, rank < 1, or an unknown orientation.
 */
export function loraMergeSizes(shape: LoraMergeShape): LoraMergeSizes {
  checkCount('rows', shape.rows, 0);
  checkCount('cols', shape.cols, 0);
  checkCount('rank', shape.rank, 1);
  if (shape.orientation !== 'linear' && shape.orientation !== 'transposed') {
    throw new RangeError(`lora-merge: orientation must be 'linear' or 'transposed', got ${JSON.stringify(shape.orientation)}.`);
  }
  const [outFeatures, inFeatures] = shape.orientation === 'linear' ? [shape.rows, shape.cols] : [shape.cols, shape.rows];
  return { w: shape.rows * shape.cols, a: shape.rank * inFeatures, b: outFeatures * shape.rank, inFeatures, outFeatures };
}
