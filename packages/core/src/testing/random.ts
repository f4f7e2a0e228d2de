/** The seeded PRNG of the fixtures; it lives in `@lorafuse/kernels/testing`, shared with the kernel tests and benchmarks. */
export { SeededRandom } from '@lorafuse/kernels/testing';
