/// <reference types="@webgpu/types" preserve="true" />
/**
 * `@lorafuse/kernels/reference`: the CPU twin of every kernel, for tests and for apps that need the
 * same numbers without a GPU. Plain TypeScript over typed arrays.
 */
export * from './forward/index.js';
export { loraMergeRef, type LoraMergeRefParams } from './lora-merge/lora-merge.ref.js';
export { doraScaleRef, doraFactorsRef, scaleFeaturesRef, doraFeatureCount, type DoraScaleRefParams, type DoraFeatureAxis } from './dora-scale/dora-scale.ref.js';
export { compareRef, type CompareRefParams } from './compare/compare.ref.js';
export { f16BitsToF32Bits, f32BitsToF16Bits, f32BitsToBf16Bits, f32Bits, f32FromBits } from './float-bits.js';
export { applyTermsRef, applyDoraRef, inspectRef, type ApplyTermsRefParams, type ApplyDoraRefParams, type RefFactors } from './weights/weights.ref.js';
export { magnitudeGridRef, type MagnitudeGridRefParams, type MagnitudeGridRef } from './matrix-view/magnitude-grid.ref.js';
export { heatmapRef, heatmapColorRef, HEATMAP_STOPS, HEATMAP_BACKGROUND, HEATMAP_NAN, type HeatmapRefParams } from './matrix-view/heatmap.ref.js';
