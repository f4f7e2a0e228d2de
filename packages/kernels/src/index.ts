/**
 * `@lorafuse/kernels`: WGSL compute kernels with typed wrappers that take a `GPUDevice` first, and a
 * CPU reference per kernel. No Node APIs, no file formats, no model knowledge.
 */
export { encodeLoraMerge, runLoraMerge, withLoraDelta, LORA_MERGE_WORKGROUP, LORA_MERGE_TILE } from './lora-merge/lora-merge.js';
export type { EncodeLoraMergeParams, EncodedLoraMerge, RunLoraMergeParams, LoraMergeLimits, LoraDeltaParams, LoraDeltaTerm } from './lora-merge/lora-merge.js';
export { loraMergeRef, type LoraMergeRefParams } from './lora-merge/lora-merge.ref.js';
export { doraScaleRef, doraFeatureCount, type DoraScaleRefParams, type DoraFeatureAxis } from './dora-scale/dora-scale.ref.js';
export { loraMergeSizes, type LoraMergeOrientation, type LoraMergeShape, type LoraMergeSizes } from './lora-merge/lora-merge.shape.js';
export { requestLorafuseDevice, isSoftwareAdapter, LORAFUSE_RAISED_LIMITS, LORAFUSE_OPTIONAL_FEATURES, type AdapterIdentity } from './device.js';
export {
  encodeCompare,
  readCompareStats,
  reduceCompareRecords,
  runCompare,
  planCompareChunks,
  COMPARE_GPU_SHAPE,
  COMPARE_SOFTWARE_SHAPE,
  compareWorkShape,
  COMPARE_ELEMENTS_PER_WORKGROUP,
} from './compare/compare.js';
export type { CompareWorkShape, CompareLimits, CompareBufferInput, EncodeCompareParams, EncodedCompare, CompareChunk, RunCompareParams, ReducedCompareRecords } from './compare/compare.js';
export { compareRef, type CompareRefParams } from './compare/compare.ref.js';
export {
  COMPARE_ELEMENT_BYTES,
  COMPARE_TOP_K,
  finishCompareStats,
  checkCompareTolerance,
  pairScore,
  type CompareElementType,
  type CompareTolerance,
  type CompareWorstElement,
  type CompareStats,
  type CompareAccumulators,
  type CompareInput,
} from './compare/compare.types.js';
export { ForwardKernels, ATTENTION_MAX_POSITIONS, type GpuMatrix, type GpuMatrixChunk } from './forward/forward-kernels.js';
export type { Activation, WeightOrder } from './forward/index.js';
