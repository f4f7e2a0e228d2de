/** What a planned source produces. */
import type { Dtype } from '../safetensors/dtype.js';
import type { TensorSource } from './types.js';

/** dtype and shape of what a source produces: a computed tensor keeps its base's, a copy its input's. */
export function outputTypeOf(source: TensorSource): { dtype: Dtype; shape: readonly number[] } {
  const ref = source.kind === 'merge' || source.kind === 'rows' || source.kind === 'bias' ? source.base : source.from;
  return { dtype: ref.dtype, shape: ref.shape };
}
