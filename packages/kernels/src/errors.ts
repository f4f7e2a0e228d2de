/**
 * The one error class of the app-facing kernel API. Apps branch on `code`; the message names the
 * argument and, where a device limit is the cause, the limit and its value.
 */

/** Why a call was refused before anything was recorded on the GPU. */
export type KernelErrorCode =
  /** rows/cols/rank not non-negative integers, or an unknown layout or element type. */
  | 'WEIGHT_SHAPE_INVALID'
  /** A binding's offset is not a multiple of `minStorageBufferOffsetAlignment`. */
  | 'BINDING_MISALIGNED'
  /** A binding holds fewer bytes than its shape needs, or runs past the end of its buffer. */
  | 'BINDING_TOO_SMALL'
  /** A binding the kernel cannot split (A, B) is larger than `maxStorageBufferBindingSize`. */
  | 'BINDING_TOO_LARGE'
  /** A buffer was created without `GPUBufferUsage.STORAGE` (or `COPY_SRC` where it is read back). */
  | 'BUFFER_USAGE'
  /** Two bindings that the kernel reads and writes at once share bytes of one buffer. */
  | 'BINDING_OVERLAP'
  /** A buffer the dispatch reads is the buffer it writes (WebGPU forbids it even for disjoint ranges). */
  | 'BUFFER_CONFLICT'
  /** A DoRA magnitude binding whose explicit size is not 4 bytes (one f32) per output feature. */
  | 'MAGNITUDE_SIZE'
  /** More terms than one call takes (DoRA adds at most `DORA_TERMS_PER_PASS` before its norm). */
  | 'TOO_MANY_TERMS'
  /** A scale that is NaN or infinite. */
  | 'SCALE_INVALID'
  /** The device lacks a limit the kernels need (see `WEIGHT_KERNEL_REQUIREMENTS`). */
  | 'DEVICE_LIMIT'
  /** The GPU rejected the work (validation or out-of-memory); the message is the device's. */
  | 'GPU_ERROR';

/** A refused call of the kernel API; nothing was recorded on the GPU. */
export class KernelError extends Error {
  override readonly name = 'KernelError';
  constructor(
    readonly code: KernelErrorCode,
    message: string,
  ) {
    super(message);
  }
}
