/**
 * Where the values of a diff are compared: the compare kernel in headless Chromium (WebGPU) or on
 * Dawn in Node, or its CPU reference in Node. Byte identity is settled before either is asked (see `createTensorComparer`).
 */
import type { TensorComparer, TensorRef } from '@lorafuse/core';
import type { CompareElementType, CompareStats, CompareTolerance } from '@lorafuse/kernels';
import type { OpenFiles } from '../fs/inputs.js';
import { byteRangesEqual } from '../fs/byte-ranges.js';

/** Compares two F32/F16/BF16 tensors of the same element count on one device. */
export interface CompareExecutor {
  readonly device: 'cpu' | 'webgpu' | 'dawn';
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

/**
 * Starts the executor on first use, so a diff of byte-identical inputs never launches Chromium.
 * `started()` tells whether it ran.
 */
export class LazyExecutor {
  private pending: Promise<CompareExecutor> | undefined;
  private executor: CompareExecutor | undefined;

  constructor(readonly device: 'cpu' | 'webgpu' | 'dawn', private readonly start: () => Promise<CompareExecutor>) {}

  get(): Promise<CompareExecutor> {
    this.pending ??= this.start().then((e) => (this.executor = e));
    return this.pending;
  }

  /** The started executor's description, or undefined when it never started. */
  get description(): string | undefined {
    return this.executor?.description;
  }

  async close(): Promise<void> {
    if (this.pending === undefined) return;
    const e = await this.pending.catch(() => undefined);
    await e?.close();
  }
}

/** The `TensorComparer` of core's diff over opened files: byte identity in Node, values on the executor. */
export function createTensorComparer(files: OpenFiles, executor: LazyExecutor): TensorComparer {
  return {
    bytesEqual: (a, b) => byteRangesEqual(files.get(a.file), a.fileOffset, files.get(b.file), b.fileOffset, a.byteLength),
    compare: async (a, b, tolerance) => (await executor.get()).compare(a, b, tolerance),
  };
}
