/**
 * How an app describes the weights it owns to the kernels: a `GPUBufferBinding` (buffer, offset,
 * size) plus a layout, and the checks that refuse a binding the device would reject or that could
 * not hold the tensor, before anything is recorded. Pure functions over the device's limits.
 */
import { KernelError } from '../errors.js';

/** Element type of a weight matrix in the app's buffer (16-bit types are read and written as u32 words). */
export type WeightElement = 'f32' | 'f16' | 'bf16';

/**
 * `out-in`: W is `[out, in]` (PyTorch `nn.Linear`), delta = B·A.
 * `in-out`: W is `[in, out]` (GPT-2's Conv1D) or `[num_embeddings, dim]` (an Embedding), delta = (B·A)ᵀ.
 */
export type WeightLayout = 'out-in' | 'in-out';

/** A row-major weight matrix inside an app's buffer. */
export interface WeightView {
  /** Where W lives. `size` defaults to the rest of the buffer. Usage must include STORAGE. */
  readonly binding: GPUBufferBinding;
  readonly rows: number;
  readonly cols: number;
  readonly layout: WeightLayout;
  readonly element: WeightElement;
}

/**
 * One LoRA adapter's factors for one module, row-major f32 in the app's buffers: A `[rank, in]`,
 * B `[out, rank]` (for an Embedding: `lora_embedding_A [rank, num_embeddings]`, `lora_embedding_B
 * [dim, rank]`), and its scale (`lora_alpha / rank`, times any strength the app wants).
 */
export interface LoraFactors {
  readonly a: GPUBufferBinding;
  readonly b: GPUBufferBinding;
  readonly rank: number;
  readonly scale: number;
}

/** Terms applied in one read and one write of W (more go in further passes, each rounding once). */
export const TERMS_PER_PASS = 3;

/**
 * Terms a DoRA merge adds before its norm, all in one pass (W + ΔW is never rounded before the
 * scaling): two, because a third term's factor bindings would pass eight storage buffers.
 */
export const DORA_TERMS_PER_PASS = 2;

/**
 * DoRA's output features of W: rows of an `out-in` W (`nn.Linear`), columns of an `in-out` W
 * (Conv1D, and an Embedding, whose norm runs over the vocabulary).
 */
export function doraFeatures(view: Pick<WeightView, 'rows' | 'cols' | 'layout'>): number {
  return view.layout === 'out-in' ? view.rows : view.cols;
}

/**
 * Checks a DoRA magnitude vector's binding: f32 `[features]`; an explicit size must be exactly
 * that (a vector of the other axis's length is the usual mix-up), an omitted one at least that.
 */
export function checkMagnitude(what: string, view: WeightView, magnitude: GPUBufferBinding, limits: BindingLimits): void {
  const features = doraFeatures(view);
  const need = features * 4;
  if (magnitude.size !== undefined && magnitude.size !== need) {
    throw new KernelError(
      'MAGNITUDE_SIZE',
      `${what}: the binding has ${magnitude.size} bytes; W [${view.rows}, ${view.cols}] (${view.layout}) has ${features} output features (${view.layout === 'out-in' ? 'rows' : 'columns'}), so m needs ${need} bytes (f32 each).`,
    );
  }
  checkBinding(what, magnitude, need, limits);
  if (need > limits.maxStorageBufferBindingSize) {
    throw new KernelError('BINDING_TOO_LARGE', `${what}: ${need} bytes exceed the device's maxStorageBufferBindingSize (${limits.maxStorageBufferBindingSize}).`);
  }
}

/** Bytes per element. */
export function elementBytes(element: WeightElement): 2 | 4 {
  return element === 'f32' ? 4 : 2;
}

/** u32 words W occupies (a 16-bit W with an odd count shares its last word with what follows it). */
export function weightWords(view: Pick<WeightView, 'rows' | 'cols' | 'element'>): number {
  return Math.ceil((view.rows * view.cols * elementBytes(view.element)) / 4);
}

/** The limits the checks read (a `GPUSupportedLimits` has them all). */
export interface BindingLimits {
  readonly minStorageBufferOffsetAlignment: number;
  readonly maxStorageBufferBindingSize: number;
}

function isCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/** The binding's size, with `size` omitted meaning "to the end of the buffer" as in WebGPU. */
export function bindingSize(binding: GPUBufferBinding): number {
  return binding.size ?? binding.buffer.size - (binding.offset ?? 0);
}

/**
 * Checks one binding: STORAGE usage, an aligned offset, inside its buffer, at least `needBytes`.
 * @throws KernelError naming `what` and the limit.
 */
export function checkBinding(what: string, binding: GPUBufferBinding, needBytes: number, limits: BindingLimits): void {
  const offset = binding.offset ?? 0;
  const size = bindingSize(binding);
  if ((binding.buffer.usage & GPUBufferUsage.STORAGE) === 0) {
    throw new KernelError('BUFFER_USAGE', `${what}: buffer "${binding.buffer.label}" was created without GPUBufferUsage.STORAGE.`);
  }
  if (!isCount(offset) || offset % limits.minStorageBufferOffsetAlignment !== 0) {
    throw new KernelError(
      'BINDING_MISALIGNED',
      `${what}: offset ${offset} is not a multiple of the device's minStorageBufferOffsetAlignment (${limits.minStorageBufferOffsetAlignment}); place the tensor at an aligned offset.`,
    );
  }
  if (!isCount(size) || offset + size > binding.buffer.size) {
    throw new KernelError('BINDING_TOO_SMALL', `${what}: ${size} bytes at offset ${offset} run past the end of buffer "${binding.buffer.label}" (${binding.buffer.size} bytes).`);
  }
  if (size < needBytes) {
    throw new KernelError('BINDING_TOO_SMALL', `${what}: the binding has ${size} bytes; its shape needs ${needBytes} (whole 4-byte words).`);
  }
}

/** Checks a weight view's shape and binding. */
export function checkWeightView(what: string, view: WeightView, limits: BindingLimits): void {
  if (!isCount(view.rows) || !isCount(view.cols) || view.rows * view.cols >= 2 ** 32) {
    throw new KernelError('WEIGHT_SHAPE_INVALID', `${what}: rows (${view.rows}) and cols (${view.cols}) must be non-negative integers with fewer than 2³² elements.`);
  }
  if (view.layout !== 'out-in' && view.layout !== 'in-out') throw new KernelError('WEIGHT_SHAPE_INVALID', `${what}: layout must be "out-in" or "in-out", got ${String(view.layout)}.`);
  if (view.element !== 'f32' && view.element !== 'f16' && view.element !== 'bf16') {
    throw new KernelError('WEIGHT_SHAPE_INVALID', `${what}: element must be "f32", "f16" or "bf16", got ${String(view.element)}.`);
  }
  checkBinding(what, view.binding, weightWords(view) * 4, limits);
}

/** A and B shapes of a term on W: `[A rows, A cols]`, `[B rows, B cols]`. */
export function termShapes(view: Pick<WeightView, 'rows' | 'cols' | 'layout'>, rank: number): { a: [number, number]; b: [number, number] } {
  return view.layout === 'out-in' ? { a: [rank, view.cols], b: [view.rows, rank] } : { a: [rank, view.rows], b: [view.cols, rank] };
}

/** Checks a term's rank, scale and both bindings (which must each fit one storage binding). */
export function checkTerm(what: string, view: WeightView, term: LoraFactors, limits: BindingLimits): void {
  if (!isCount(term.rank) || term.rank < 1) throw new KernelError('WEIGHT_SHAPE_INVALID', `${what}: rank must be a positive integer, got ${term.rank}.`);
  if (typeof term.scale !== 'number' || !Number.isFinite(term.scale)) throw new KernelError('SCALE_INVALID', `${what}: scale must be a finite number, got ${term.scale}.`);
  const shapes = termShapes(view, term.rank);
  for (const [name, binding, [r, c]] of [['A', term.a, shapes.a], ['B', term.b, shapes.b]] as const) {
    const bytes = r * c * 4;
    checkBinding(`${what} ${name} [${r}, ${c}]`, binding, bytes, limits);
    if (bytes > limits.maxStorageBufferBindingSize) {
      throw new KernelError('BINDING_TOO_LARGE', `${what} ${name} [${r}, ${c}]: ${bytes} bytes exceed the device's maxStorageBufferBindingSize (${limits.maxStorageBufferBindingSize}).`);
    }
  }
}

/** True when the two bindings share at least one byte of one buffer. */
export function bindingsOverlap(x: GPUBufferBinding, y: GPUBufferBinding): boolean {
  if (x.buffer !== y.buffer) return false;
  const xs = x.offset ?? 0;
  const ys = y.offset ?? 0;
  return xs < ys + bindingSize(y) && ys < xs + bindingSize(x);
}

/** A run of W's words bound at once. */
export interface WordChunk {
  /** First word, counted from W's first word. */
  readonly wordStart: number;
  readonly wordCount: number;
  /** Byte offset of the binding in the buffer (aligned, since W's offset is). */
  readonly offset: number;
}

/**
 * Splits W's words into runs that each fit one storage binding; every run but the last is a whole
 * number of alignment units long, so each binding starts at an aligned offset and no word is in two
 * runs. One run when W fits.
 */
export function planWordChunks(view: WeightView, limits: BindingLimits): WordChunk[] {
  const words = weightWords(view);
  const align = limits.minStorageBufferOffsetAlignment;
  const perChunk = Math.max(1, Math.floor(limits.maxStorageBufferBindingSize / align)) * (align / 4);
  const base = view.binding.offset ?? 0;
  const chunks: WordChunk[] = [];
  for (let start = 0; start < words; start += perChunk) {
    chunks.push({ wordStart: start, wordCount: Math.min(perChunk, words - start), offset: base + start * 4 });
  }
  return chunks;
}

/** What an inspection adds up over W (and a reference): counts, the largest |difference|, sums. */
export interface WeightSums {
  nonFinite: number;
  referenceNonFinite: number;
  maxAbsDiff: number;
  dot: number;
  ww: number;
  rr: number;
}

/** The statistics an inspection reports from its sums (the kernel's and the CPU twin's alike). */
export function finishWeightStats(sums: WeightSums, hasReference: boolean): { nonFinite: number; referenceNonFinite: number; maxAbsDiff: number; cosine: number; norm: number } {
  const cosine = hasReference && sums.ww > 0 && sums.rr > 0 ? sums.dot / Math.sqrt(sums.ww * sums.rr) : Number.NaN;
  return { nonFinite: sums.nonFinite, referenceNonFinite: sums.referenceNonFinite, maxAbsDiff: hasReference ? sums.maxAbsDiff : 0, cosine, norm: Math.sqrt(sums.ww) };
}
