/// <reference types="@webgpu/types" preserve="true" />
/**
 * `@lorafuse/kernels/view`: pictures of a matrix on WebGPU, for apps that show what an adapter
 * changed. {@link readMagnitudeGrid} / {@link encodeMagnitudeGrid} reduce a matrix already on the
 * GPU (ΔW, say) to a small grid — max |m| and Σ m² per block, at most `maxSide` cells a side — so a
 * 50257 × 768 embedding is drawn from ~1000 × 768 numbers and never read back whole;
 * {@link encodeHeatmap} draws such a grid as a heatmap under a pan/zoom transform (one uniform).
 * CPU twins: `magnitudeGridRef`, `heatmapRef` in `@lorafuse/kernels/reference`.
 */
export { encodeMagnitudeGrid, readMagnitudeGrid, MAGNITUDE_GRID_WORKGROUP, type EncodeMagnitudeGridParams, type EncodedMagnitudeGrid, type MagnitudeGrid, type MagnitudeGridLimits, type ReadMagnitudeGridParams } from './matrix-view/magnitude-grid.js';
export { magnitudeGridShape, type MagnitudeGridShape } from './matrix-view/magnitude-grid.shape.js';
export { encodeHeatmap, type EncodeHeatmapParams } from './matrix-view/heatmap.js';
