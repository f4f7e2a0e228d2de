import { describe, expect, it } from 'vitest';
import { layoutSafetensors, type TensorSpec } from '../safetensors/writer.js';
import type { TensorRef } from '../safetensors/tensor-ref.js';
import { cloneSourceFor } from './clone-source.js';
import type { PlannedTensor } from './types.js';

const specs: TensorSpec[] = [
  { name: 'h.0.w', dtype: 'F32', shape: [4, 4] },
  { name: 'h.1.w', dtype: 'F32', shape: [4, 4] },
  { name: 'h.2.w', dtype: 'F32', shape: [4, 4] },
  { name: 'ln.b', dtype: 'F32', shape: [4] },
];
const layout = layoutSafetensors(specs);

/** Where each tensor lies in a file laid out as `layout`. */
function refIn(file: string, name: string, shift = 0): TensorRef {
  const e = layout.entries.find((x) => x.name === name)!;
  return { file, name, dtype: e.dtype, shape: e.shape, fileOffset: layout.dataStart + e.begin + shift, byteLength: e.end - e.begin };
}
const copy = (name: string, from: TensorRef): PlannedTensor => ({ name, dtype: from.dtype, shape: from.shape, source: { kind: 'copy', from } });
const merge = (name: string, base: TensorRef): PlannedTensor => ({ name, dtype: base.dtype, shape: base.shape, source: { kind: 'merge', base, deltas: [] } });
const byName = (ts: PlannedTensor[]) => new Map(ts.map((t) => [t.name, t] as const));
const sizes = (m: Record<string, number>) => (f: string) => m[f] ?? -1;

describe('cloneSourceFor', () => {
  it('takes the base file when its unchanged tensors lie at their output offsets', () => {
    const tensors = byName([merge('h.0.w', refIn('base', 'h.0.w')), copy('h.1.w', refIn('base', 'h.1.w')), copy('h.2.w', refIn('base', 'h.2.w')), copy('ln.b', refIn('base', 'ln.b'))]);
    const c = cloneSourceFor(layout, tensors, sizes({ base: layout.totalSize }));
    expect(c?.file).toBe('base');
    // The merged tensor is written over the copy; only copied ones count as in place.
    expect([...c!.inPlace.keys()].sort()).toEqual(['h.1.w', 'h.2.w', 'ln.b']);
    expect(c!.inPlaceBytes).toBe(64 + 64 + 16);
  });

  it('refuses a file of another size, and tensors at other offsets or of another dtype', () => {
    const tensors = byName(specs.map((s) => copy(s.name, refIn('base', s.name))));
    expect(cloneSourceFor(layout, tensors, sizes({ base: layout.totalSize + 8 }))).toBeUndefined();
    // A longer header in the input (more metadata) shifts every tensor.
    const shifted = byName(specs.map((s) => copy(s.name, refIn('base', s.name, 8))));
    expect(cloneSourceFor(layout, shifted, sizes({ base: layout.totalSize }))).toBeUndefined();
    const otherType = byName(specs.map((s) => copy(s.name, { ...refIn('base', s.name), dtype: 'I32' })));
    expect(cloneSourceFor(layout, otherType, sizes({ base: layout.totalSize }))).toBeUndefined();
  });

  it('needs at least half of the tensor bytes in place, and skips excluded tensors', () => {
    // 64 of 208 bytes in place: copying the file would mostly be written over again.
    const little = byName([copy('h.0.w', refIn('base', 'h.0.w')), copy('h.1.w', refIn('other', 'h.1.w')), copy('h.2.w', refIn('other', 'h.2.w')), copy('ln.b', refIn('other', 'ln.b', 4))]);
    const c = cloneSourceFor(layout, little, sizes({ base: layout.totalSize, other: layout.totalSize }));
    // 'other' holds 128 bytes in place (ln.b is elsewhere in it): enough, and more than 'base'.
    expect(c?.file).toBe('other');
    expect([...c!.inPlace.keys()].sort()).toEqual(['h.1.w', 'h.2.w']);
    expect(cloneSourceFor(layout, little, sizes({ base: layout.totalSize, other: layout.totalSize }), (n) => n !== 'h.0.w')).toBeUndefined();
  });

  it('finds nothing for a layout of computed tensors only, or an empty one', () => {
    const tensors = byName(specs.map((s) => merge(s.name, refIn('base', s.name))));
    expect(cloneSourceFor(layout, tensors, sizes({ base: layout.totalSize }))).toBeUndefined();
    expect(cloneSourceFor(layoutSafetensors([]), new Map(), () => 0)).toBeUndefined();
  });
});
