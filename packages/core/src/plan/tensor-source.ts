/** What a planned source produces. */
import type { Dtype } from '../safetensors/dtype.js';
import type { TensorRef } from '../safetensors/tensor-ref.js';
import type { PlannedTensor, TensorSource } from './types.js';

/** dtype and shape of what a source produces: a computed tensor keeps its base's, a copy its input's. */
export function outputTypeOf(source: TensorSource): { dtype: Dtype; shape: readonly number[] } {
  const ref = source.kind === 'merge' || source.kind === 'rows' || source.kind === 'bias' ? source.base : source.from;
  return { dtype: ref.dtype, shape: ref.shape };
}

/** The input range a tensor's bytes are copied from unchanged, or undefined for a computed one. */
export function copiedFrom(t: PlannedTensor): TensorRef | undefined {
  return t.source.kind === 'copy' || t.source.kind === 'replace' ? t.source.from : undefined;
}
