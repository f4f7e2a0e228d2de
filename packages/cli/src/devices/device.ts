/**
 * What every device implements: the merge role ({@link MergeExecutor}: W + Σ scale·BA for a plan's
 * merged tensors) and the compare role ({@link CompareExecutor}: statistics of two tensors for
 * `diff`), and the helpers that map safetensors dtypes to the kernels' element types.
 */
import type { MergeTensor, TensorRef } from '@lorafuse/core';
import type { CompareElementType, CompareStats, CompareTolerance } from '@lorafuse/kernels';

/** Where merges and comparisons run: the CPU in Node, WebGPU in headless Chromium, or Dawn in Node. */
export type DeviceKind = 'cpu' | 'webgpu' | 'dawn';

/** A `--device` value of `merge`: a {@link DeviceKind}, or `auto` to let the machine decide. */
export type DeviceChoice = 'auto' | DeviceKind;

/** A planned tensor whose bytes are computed (base + LoRA deltas); core's plan vocabulary names it. */
export type { MergeTensor };

/** Result of merging one tensor: its bytes in the tensor's dtype, and how many values were NaN/Inf. */
export interface MergedBytes {
  readonly bytes: Uint8Array;
  /** NaN/Inf among the f32 results, before rounding to the tensor's dtype (for F32, what `bytes` holds). */
  readonly nonFinite: number;
  /** SHA-256 (hex) of `bytes`, when the executor computed it off the main thread. */
  readonly digest?: string;
  /**
   * Lets the executor reuse the memory behind `bytes` (which must not be read afterwards). A caller
   * that keeps the bytes simply never calls it.
   */
  readonly release?: () => void;
}

/** Runs the merges of a plan on one device. */
export interface MergeExecutor {
  readonly device: DeviceKind;
  /** What ran, for the report (e.g. the WebGPU adapter's description). */
  readonly description: string;
  /** Merges one tensor (or returns the result of its {@link prefetch}ed merge). */
  merge(tensor: MergeTensor): Promise<MergedBytes>;
  /**
   * Optional look-ahead: `tensors` are the merges the caller will request with {@link merge}, in
   * that order. The executor may start the next few while the caller writes earlier results (at most
   * a small fixed number in flight or waiting, so memory stays bounded by a few tensors). Calling it
   * again replaces the list. Merges never requested are dropped on {@link close}.
   */
  prefetch?(tensors: readonly MergeTensor[]): void;
  /** Waits for merges in flight, then releases the device. */
  close(): Promise<void>;
}

/** Compares two F32/F16/BF16 tensors of the same element count on one device. */
export interface CompareExecutor {
  readonly device: DeviceKind;
  /** What ran, for the report (e.g. the WebGPU adapter's description). */
  readonly description: string;
  compare(a: TensorRef, b: TensorRef, tolerance: CompareTolerance): Promise<CompareStats>;
  close(): Promise<void>;
}

/** The kernel's element type of a safetensors float dtype. */
export function elementTypeOf(ref: { readonly name: string; readonly dtype: string }): CompareElementType {
  switch (ref.dtype) {
    case 'F32':
      return 'f32';
    case 'F16':
      return 'f16';
    case 'BF16':
      return 'bf16';
    default:
      throw new Error(`internal: ${ref.name} (${ref.dtype}) is not a float tensor the compare kernel reads`);
  }
}

/** Elements of a tensor. */
export function elementCount(ref: TensorRef): number {
  return ref.shape.reduce((n, d) => n * d, 1);
}
