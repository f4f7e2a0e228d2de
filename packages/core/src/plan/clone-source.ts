/**
 * Which input file, if any, an output weight file can start as a copy of. A merge that keeps the
 * base's tensor set (LoRA on some modules, the tie kept) lays the output out exactly as the base
 * was laid out by safetensors' own `save_file` (or by lorafuse): same header length, same order, so
 * every unchanged tensor already lies at its output offset in the base file. The OS then copies
 * the file (in the kernel, or as a reflink), and only the changed tensors and the header are
 * written over it, instead of every byte passing through the process twice.
 */
import type { SafetensorsLayout } from '../safetensors/writer.js';
import type { TensorRef } from '../safetensors/tensor-ref.js';
import { copiedFrom } from './tensor-source.js';
import type { PlannedTensor } from './types.js';

/** An input file to copy as an output file's starting point, and what of it is already in place. */
export interface CloneSource {
  /** The input file's label (its path). */
  readonly file: string;
  /** Output tensors whose bytes the copy puts at their offsets: nothing more is written for them. */
  readonly inPlace: ReadonlyMap<string, TensorRef>;
  /** Their bytes. */
  readonly inPlaceBytes: number;
}

/**
 * The input file holding the most tensors of `layout` at the very offsets the layout gives them,
 * when that file is exactly as long as the output and they make up at least half of its tensor
 * bytes (below that, copying the file and writing most of it again costs more than writing it).
 * `tensors` are the planned tensors by output name; those for which `exclude` holds are never
 * counted in place (their bytes come from elsewhere). `sizeOf` gives an input file's size.
 */
export function cloneSourceFor(layout: SafetensorsLayout, tensors: ReadonlyMap<string, PlannedTensor>, sizeOf: (file: string) => number, exclude: (name: string) => boolean = () => false): CloneSource | undefined {
  const byFile = new Map<string, { inPlace: Map<string, TensorRef>; bytes: number }>();
  for (const e of layout.entries) {
    const t = tensors.get(e.name);
    const from = t && !exclude(e.name) ? copiedFrom(t) : undefined;
    if (!from || from.dtype !== e.dtype || from.byteLength !== e.end - e.begin || from.fileOffset !== layout.dataStart + e.begin || from.byteLength === 0) continue;
    const f = byFile.get(from.file) ?? { inPlace: new Map<string, TensorRef>(), bytes: 0 };
    f.inPlace.set(e.name, from);
    f.bytes += from.byteLength;
    byFile.set(from.file, f);
  }
  let best: CloneSource | undefined;
  for (const [file, f] of byFile) {
    if (sizeOf(file) !== layout.totalSize || 2 * f.bytes < layout.totalSize - layout.dataStart) continue;
    if (!best || f.bytes > best.inPlaceBytes) best = { file, inPlace: f.inPlace, inPlaceBytes: f.bytes };
  }
  return best;
}
