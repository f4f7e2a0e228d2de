/// <reference types="@webgpu/types" preserve="true" />
/**
 * `@lorafuse/kernels`: WGSL compute kernels behind a typed API that takes a `GPUDevice` first. No
 * Node APIs, no file formats, no model knowledge. The main entry is what an app embeds:
 *
 * - {@link WeightKernels}: merge, unmerge, swap and drift-free rebuild of LoRA adapters (and DoRA's
 *   merge: per-feature norms and scaling) on weights in the app's own buffers, and an on-GPU
 *   inspection (NaN/Inf, max |ΔW|, cosine);
 * - {@link runCompare}: statistics of two tensors (max |a − b|, cosine, worst elements);
 * - {@link ForwardKernels}: the GPT-2 forward-pass building blocks;
 * - {@link requestLorafuseDevice}: a device with the limits real model tensors need.
 *
 * CPU twins of every kernel are in `@lorafuse/kernels/reference`; lower-level encoders in
 * `@lorafuse/kernels/internal` (no stability promise).
 */
export { WeightKernels, WEIGHT_KERNEL_REQUIREMENTS, type WeightStats, type WeightKernelOptions } from './weights/weight-kernels.js';
export { TERMS_PER_PASS, DORA_TERMS_PER_PASS, type WeightView, type WeightLayout, type WeightElement, type LoraFactors } from './weights/weight-view.js';
export { KernelError, type KernelErrorCode } from './errors.js';
export { requestLorafuseDevice, isSoftwareAdapter, type AdapterIdentity } from './device.js';
export { runCompare, type RunCompareParams } from './compare/compare.js';
export type { CompareElementType, CompareTolerance, CompareWorstElement, CompareStats, CompareInput } from './compare/compare.types.js';
export { ForwardKernels, type GpuMatrix, type GpuMatrixChunk } from './forward/forward-kernels.js';
export type { Activation, WeightOrder } from './forward/index.js';
