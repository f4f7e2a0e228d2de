import type { PlannedTensor, TensorSource } from '@lorafuse/core';

/** A planned tensor whose bytes are computed (base + LoRA deltas). */
export type MergeTensor = PlannedTensor & { readonly source: Extract<TensorSource, { kind: 'merge' }> };

/** Result of merging one tensor: its bytes in the tensor's dtype, and how many values were NaN/Inf. */
export interface MergedBytes {
  readonly bytes: Uint8Array;
  readonly nonFinite: number;
}

/** Runs the merges of a plan on one device. */
export interface MergeExecutor {
  readonly device: 'cpu' | 'webgpu';
  /** What ran, for the report (e.g. the WebGPU adapter's description). */
  readonly description: string;
  merge(tensor: MergeTensor): Promise<MergedBytes>;
  close(): Promise<void>;
}
