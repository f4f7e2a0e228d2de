/// <reference types="@webgpu/types" preserve="true" />
/**
 * `@lorafuse/kernels/testing`: the seeded PRNG and f32 arrays that tests, fixtures and benchmarks
 * share. Pure TypeScript (no Node or DOM APIs), so pages can use it too.
 */
export { SeededRandom } from './seeded-random.js';
export { seededUniform } from './float-arrays.js';
export { runForwardChecks, type CheckResult } from './forward-checks.js';
export { runWeightChecks } from './weight-checks.js';
export { storageBufferOf, readBufferBytes } from './gpu-buffers.js';
