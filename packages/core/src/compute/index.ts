export * from './cpu-merge.js';
export { loraMergeColumnFactor, loraMergeRowsInPlace, type LoraMergeInPlaceParams } from './merge-rows.js';
export { loraMergeRowsSimd, simdMergeAvailable } from './simd/merge-rows.js';
export * from './token-rows.js';
export * from './non-finite.js';
export * from './lora-bias.js';
export * from './add-delta.js';
