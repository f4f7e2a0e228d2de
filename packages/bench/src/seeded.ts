/** Deterministic f32 data for benchmarks (an LCG: cheap, identical in Node and in the page). */
export function seededF32(n: number, seed: number, magnitude: number): Float32Array<ArrayBuffer> {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 4294967296 - 0.5) * 2 * magnitude;
  }
  return out;
}
