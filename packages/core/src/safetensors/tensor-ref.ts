/**
 * A tensor in an input file, located well enough to read its bytes by range. Planning, loading and
 * comparison all speak of tensors this way, so it lives with the format that defines the offsets.
 */
import type { Dtype } from './dtype.js';
import type { SafetensorsHeader, TensorInfo } from './header.js';

/** A tensor in an input file: enough to read its bytes by range. */
export interface TensorRef {
  /** The file's label (its path). */
  readonly file: string;
  /** The key as stored in that file. */
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  /** Absolute byte offset of the tensor's data in the file. */
  readonly fileOffset: number;
  readonly byteLength: number;
}

/** The {@link TensorRef} of a tensor of a parsed header. */
export function tensorRefOf(header: SafetensorsHeader, t: TensorInfo): TensorRef {
  return { file: header.label, name: t.name, dtype: t.dtype, shape: t.shape, fileOffset: t.fileOffset, byteLength: t.byteLength };
}
