/// <reference types="@webgpu/types" preserve="true" />
/**
 * `@lorafuse/kernels/internal`: the lower-level encoders, chunk planners and tuning constants that
 * lorafuse's own executors, benchmarks and tests drive. Not a stable API: an app uses the main entry.
 */
export { encodeLoraMerge, runLoraMerge, withLoraDelta, LORA_MERGE_WORKGROUP, LORA_MERGE_TILE } from './lora-merge/lora-merge.js';
export type { EncodeLoraMergeParams, EncodedLoraMerge, RunLoraMergeParams, LoraMergeLimits, LoraDeltaParams, LoraDeltaTerm } from './lora-merge/lora-merge.js';
export { loraMergeSizes, type LoraMergeOrientation, type LoraMergeShape, type LoraMergeSizes } from './lora-merge/lora-merge.shape.js';
export { LORAFUSE_RAISED_LIMITS, LORAFUSE_OPTIONAL_FEATURES } from './device.js';
export {
  encodeCompare,
  readCompareStats,
  reduceCompareRecords,
  planCompareChunks,
  COMPARE_GPU_SHAPE,
  COMPARE_SOFTWARE_SHAPE,
  compareWorkShape,
  COMPARE_ELEMENTS_PER_WORKGROUP,
} from './compare/compare.js';
export type { CompareWorkShape, CompareLimits, CompareBufferInput, EncodeCompareParams, EncodedCompare, CompareChunk, ReducedCompareRecords } from './compare/compare.js';
export { COMPARE_ELEMENT_BYTES, COMPARE_TOP_K, finishCompareStats, checkCompareTolerance, pairScore, type CompareAccumulators } from './compare/compare.types.js';
export { planWordChunks, weightWords, type WordChunk, type BindingLimits } from './weights/weight-view.js';
