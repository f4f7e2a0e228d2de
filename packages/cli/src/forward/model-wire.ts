/**
 * A {@link Gpt2Model} split into a JSON manifest and its f32 arrays, and put back together: how the
 * model travels to the Chromium page (the arrays as bytes over the local server, the manifest through
 * DevTools). An array used twice (a tied lm_head) travels once. No Node APIs.
 */
import type { Gpt2Model } from '@lorafuse/core';

/** The model with every Float32Array replaced by `{ array: index }`. */
export type ModelManifest = unknown;

/** Splits `model` into a manifest and the arrays it points to. */
export function packModel(model: Gpt2Model): { manifest: ModelManifest; arrays: Float32Array[] } {
  const arrays: Float32Array[] = [];
  const index = new Map<Float32Array, number>();
  const walk = (v: unknown): unknown => {
    if (v instanceof Float32Array) {
      let i = index.get(v);
      if (i === undefined) {
        i = arrays.push(v) - 1;
        index.set(v, i);
      }
      return { array: i };
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return { manifest: walk(model), arrays };
}

/** Rebuilds the model from {@link packModel}'s manifest and the arrays, in order. */
export function unpackModel(manifest: ModelManifest, arrays: readonly Float32Array[]): Gpt2Model {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') {
      const keys = Object.keys(v);
      if (keys.length === 1 && keys[0] === 'array') return arrays[(v as { array: number }).array];
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    }
    return v;
  };
  return walk(manifest) as Gpt2Model;
}
