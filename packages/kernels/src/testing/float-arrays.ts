/** Seeded f32 arrays, the inputs kernel tests and benchmarks build their tensors from. */
import { SeededRandom } from './seeded-random.js';

/** `n` f32 values uniform in [-amplitude, amplitude), from a generator seeded with `seed`. */
export function seededUniform(seed: number, n: number, amplitude = 1): Float32Array<ArrayBuffer> {
  return new SeededRandom(seed).uniformArray(n, amplitude);
}
