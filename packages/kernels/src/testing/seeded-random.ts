/**
 * The one seeded PRNG of lorafuse's tests, fixtures and benchmarks: the same seed gives the same
 * values on every machine and run, in Node and in a page alike.
 */

/** A small seeded PRNG (SplitMix32-style): cheap, deterministic, and pure JavaScript. */
export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Next uniform u32. */
  nextU32(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform in [-amplitude, amplitude). */
  uniform(amplitude = 1): number {
    return (this.next() * 2 - 1) * amplitude;
  }

  /** Approximately normal(0, std) (sum of 4 uniforms: cheap, deterministic, bounded). */
  normal(std: number): number {
    const s = this.next() + this.next() + this.next() + this.next() - 2;
    return s * std * Math.sqrt(3);
  }

  /** `n` values drawn from `uniform(amplitude)` as f32. */
  uniformArray(n: number, amplitude = 1): Float32Array<ArrayBuffer> {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uniform(amplitude);
    return out;
  }

  /** `n` values drawn from `normal(std)` as f32. */
  normalArray(n: number, std: number): Float32Array<ArrayBuffer> {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal(std);
    return out;
  }
}
