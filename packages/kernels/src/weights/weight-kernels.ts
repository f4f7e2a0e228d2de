/**
 * LoRA merge, unmerge and swap on weights that live in the app's own GPU buffers, changed in place;
 * a drift-free rebuild from a pristine copy; DoRA's merge (per-feature norms and scaling) in both
 * modes; and an on-GPU inspection (NaN/Inf, max |ΔW|, cosine)
 * that reads back a few kilobytes instead of W.
 *
 * One lifecycle: {@link WeightKernels.prepare} compiles the pipelines ahead with
 * `createComputePipelineAsync` (rarer combinations of the band entries on their first call); each
 * call creates its own small GPU objects (a uniform, bind groups, a readback buffer) and releases
 * them; nothing the app owns is kept.
 */
import { foldDispatch } from '../dispatch.js';
import { KernelError } from '../errors.js';
import weightsSource from './weights.wgsl';
import bandSlotSource from './band-slot.wgsl';
import {
  bindingsOverlap,
  checkBinding,
  checkMagnitude,
  checkTerm,
  checkWeightView,
  doraFeatures,
  DORA_TERMS_PER_PASS,
  planWordChunks,
  TERMS_PER_PASS,
  finishWeightStats,
  type WeightSums,
  weightWords,
  type BindingLimits,
  type LoraFactors,
  type WeightElement,
  type WeightView,
} from './weight-view.js';
import { popCallScopes, pushCallScopes } from '../error-scopes.js';

/** What a device needs for these kernels; request at least this when creating the app's device. */
export const WEIGHT_KERNEL_REQUIREMENTS: { readonly limits: Readonly<Record<string, number>>; readonly features: readonly GPUFeatureName[] } = {
  // W, a pristine copy and three terms' A and B in one dispatch (WebGPU's default is 8).
  limits: { maxStorageBuffersPerShaderStage: 8 },
  features: [],
};

const WG = 64;
const INSPECT_GROUPS = 256;
const RECORD_WORDS = 8;
// The WGSL Params struct (32 words).
const PARAMS_BYTES = 32 * 4;
/** The band entries' three term slots, instantiated from one template (see band-slot.wgsl). */
const shaderSource = weightsSource + [0, 1, 2].map((slot) => bandSlotSource.replaceAll('SLOT', String(slot))).join('\n');
// DoRA: elements one invocation sums along the other axis (the shader's DORA_SEGMENT).
const DORA_SEGMENT = 256;
/** Rows and columns of the tile one invocation of the tiled entry owns (the shader's TR, TC). */
const TILE_ROWS = 8;
const TILE_COLS = 8;
const SLOTS = TERMS_PER_PASS * 2;
/** Rows one invocation of the band entries walks (their BAND_ROWS), and its columns. */
const BAND_ROWS = 32;
const BAND_COLS = 8;
/** k's per slot of the band entries, and their slots per pass. */
const BAND_SLOT_K = 8;
const BAND_SLOTS = 3;

/** What {@link WeightKernels.inspect} measured on the GPU. */
export interface WeightStats {
  readonly elements: number;
  /** NaN or ±Inf elements of W. */
  readonly nonFinite: number;
  /** NaN or ±Inf elements of the reference (0 without one). */
  readonly referenceNonFinite: number;
  /** Largest |W − reference| over pairs where both are finite (0 without a reference). */
  readonly maxAbsDiff: number;
  /** W·ref / (‖W‖‖ref‖) over finite pairs; NaN without a reference or when a norm is 0. */
  readonly cosine: number;
  /** ‖W‖ over finite elements (over pairs with both finite, with a reference). */
  readonly norm: number;
}

/** Options of {@link WeightKernels.prepare}. */
export interface WeightKernelOptions {
  /** Lower limits than the device's, to exercise chunking in tests. */
  readonly limits?: Partial<BindingLimits>;
  /**
   * The element types whose pipelines {@link WeightKernels.prepare} compiles ahead (default: all
   * three); the others compile on their first call.
   */
  readonly elements?: readonly WeightElement[];
}

/** The prepared kernels for one device. */
export class WeightKernels {
  private constructor(
    readonly device: GPUDevice,
    private readonly limits: BindingLimits,
    private readonly pipelines: {
      readonly inPlace: GPUComputePipeline;
      readonly fromPristine: GPUComputePipeline;
      /** The tiled entry per element type. */
      readonly tiled: (element: WeightElement) => Promise<GPUComputePipeline>;
      /**
       * The band entries by element type, slots and source, compiled on first use except those
       * {@link prepare} compiles ahead (see {@link BAND_AHEAD}).
       */
      readonly band: (key: BandKey) => Promise<GPUComputePipeline>;
      readonly inspect: GPUComputePipeline;
      readonly doraNorms: GPUComputePipeline;
      readonly doraFactors: GPUComputePipeline;
      readonly doraScale: GPUComputePipeline;
    },
    private readonly dummy: GPUBuffer,
  ) {}

  /**
   * Compiles the pipelines. @throws KernelError `DEVICE_LIMIT` when the device was created with
   * fewer than {@link WEIGHT_KERNEL_REQUIREMENTS}.
   */
  static async prepare(device: GPUDevice, options: WeightKernelOptions = {}): Promise<WeightKernels> {
    for (const [name, need] of Object.entries(WEIGHT_KERNEL_REQUIREMENTS.limits)) {
      const have = (device.limits as unknown as Record<string, number>)[name] ?? 0;
      if (have < need) throw new KernelError('DEVICE_LIMIT', `The device has ${name} = ${have}; the weight kernels need ${need}. Request it in requiredLimits when creating the device.`);
    }
    const limits: BindingLimits = {
      minStorageBufferOffsetAlignment: Math.max(device.limits.minStorageBufferOffsetAlignment, options.limits?.minStorageBufferOffsetAlignment ?? 0),
      maxStorageBufferBindingSize: Math.min(device.limits.maxStorageBufferBindingSize, options.limits?.maxStorageBufferBindingSize ?? Infinity),
    };
    const module = device.createShaderModule({ label: 'lorafuse weights shader', code: shaderSource });
    // The tiled and band entries are made once per element type (their ELEMENT constant), the
    // band entries also per number of slots and source.
    const compile = (entryPoint: string, constants: Record<string, number> = {}) =>
      device.createComputePipelineAsync({
        label: `lorafuse weights ${entryPoint}${Object.entries(constants).map(([k, v]) => ` ${k}=${v}`).join('')}`,
        layout: 'auto',
        compute: { module, entryPoint, constants: { WG, INSPECT_GROUPS, DORA_SEGMENT, ...constants } },
      });
    // Compiled once each, on first use or ahead by the Promise.all below.
    const cached = <K>(name: (key: K) => string, make: (key: K) => Promise<GPUComputePipeline>) => {
      const pipelines = new Map<string, Promise<GPUComputePipeline>>();
      return (key: K) => {
        let pipeline = pipelines.get(name(key));
        if (pipeline === undefined) pipelines.set(name(key), (pipeline = make(key)));
        return pipeline;
      };
    };
    const band = cached(bandKeyName, (key: BandKey) =>
      compile(key.element === 'f32' ? 'apply_band_f32' : 'apply_band_half', { ELEMENT: ELEMENT_CODES[key.element], BAND_ROWS, BAND_TERMS: key.slots, BAND_PRISTINE: key.pristine ? 1 : 0 }),
    );
    const tiled = cached(String, (element: WeightElement) => compile('apply_tiled', { ELEMENT: ELEMENT_CODES[element] }));
    const elements = options.elements ?? (['f32', 'f16', 'bf16'] as const);
    const [[inPlace, fromPristine, inspect, doraNorms, doraFactors, doraScale]] = await Promise.all([
      Promise.all(['apply_in_place', 'apply_from_pristine', 'inspect', 'dora_norms', 'dora_factors_of_norms', 'dora_scale'].map((entry) => compile(entry))),
      Promise.all(elements.flatMap((element) => [tiled(element), ...BAND_AHEAD.map((ahead) => band({ element, ...ahead }))])),
    ]);
    const dummy = device.createBuffer({ label: 'lorafuse weights unused term', size: 16, usage: GPUBufferUsage.STORAGE });
    return new WeightKernels(device, limits, { inPlace: inPlace!, fromPristine: fromPristine!, tiled, band, inspect: inspect!, doraNorms: doraNorms!, doraFactors: doraFactors!, doraScale: doraScale! }, dummy);
  }

  /** W += Σ scaleᵢ · deltaᵢ. */
  merge(target: WeightView, terms: readonly LoraFactors[]): Promise<void> {
    return this.apply('merge', target, null, terms);
  }

  /** W −= Σ scaleᵢ · deltaᵢ (the inverse of {@link merge} up to rounding; see {@link rebuild}). */
  unmerge(target: WeightView, terms: readonly LoraFactors[]): Promise<void> {
    return this.apply('unmerge', target, null, terms.map(negated));
  }

  /** W += Σ add − Σ remove, in one read and one write of W for up to three terms in all. */
  swap(target: WeightView, change: { readonly remove: readonly LoraFactors[]; readonly add: readonly LoraFactors[] }): Promise<void> {
    return this.apply('swap', target, null, [...change.remove.map(negated), ...change.add]);
  }

  /**
   * W = pristine + Σ terms: the drift-free way to change adapters, from a copy of the base weight
   * that the app keeps (same layout and element type as W, in another buffer). Repeating it any
   * number of times gives the same bytes; repeated {@link swap}s in f16/bf16 round each time.
   */
  rebuild(target: WeightView, pristine: GPUBufferBinding, terms: readonly LoraFactors[]): Promise<void> {
    return this.apply('rebuild', target, pristine, terms);
  }

  /**
   * DoRA's merge: W = m / ‖W + ΔW‖ ⊙ (W + ΔW) with ΔW = Σ scaleᵢ · deltaᵢ, one L2 norm per output
   * feature (each row of an `out-in` W, each column of an `in-out` W: for an Embedding, over the
   * vocabulary). `magnitude` is m, f32 `[features]` (PEFT's `lora_magnitude_vector`, decoded to
   * f32 by the app). In f32 throughout: the norms are summed from W + ΔW as it would be before any
   * rounding, and pass 2 recomputes W + ΔW, so the result is rounded once to W's element type. A
   * feature whose sum of squares is 0 comes out NaN, as PEFT's `m / 0 · 0` does; `inspect` counts
   * it. DoRA has no exact inverse on rounded weights: change adapters with {@link rebuildDora}.
   * @throws KernelError `TOO_MANY_TERMS` past {@link DORA_TERMS_PER_PASS} terms, `MAGNITUDE_SIZE`
   * for a magnitude binding of the wrong size, and the codes of {@link merge}.
   */
  mergeDora(target: WeightView, terms: readonly LoraFactors[], magnitude: GPUBufferBinding): Promise<void> {
    return this.applyDora('mergeDora', target, null, terms, magnitude);
  }

  /**
   * {@link mergeDora} from a pristine copy of the base weight: W = m / ‖P + ΔW‖ ⊙ (P + ΔW). The same
   * bytes however often it is repeated; the drift-free way to switch DoRA adapters or strengths.
   */
  rebuildDora(target: WeightView, pristine: GPUBufferBinding, terms: readonly LoraFactors[], magnitude: GPUBufferBinding): Promise<void> {
    return this.applyDora('rebuildDora', target, pristine, terms, magnitude);
  }

  /** Counts NaN/Inf in W and, with a reference of the same layout, max |W − ref| and the cosine. */
  async inspect(target: WeightView, reference?: GPUBufferBinding): Promise<WeightStats> {
    checkWeightView('inspect: W', target, this.limits);
    if (reference !== undefined) checkBinding('inspect: reference', reference, weightWords(target) * 4, this.limits);
    const elements = target.rows * target.cols;
    const chunks = planWordChunks(target, this.limits);
    const empty: WeightStats = { elements, nonFinite: 0, referenceNonFinite: 0, maxAbsDiff: 0, cosine: Number.NaN, norm: 0 };
    if (chunks.length === 0) return empty;
    const device = this.device;
    const recordBytes = INSPECT_GROUPS * RECORD_WORDS * 4;
    const { make, release } = callBuffers(device);
    try {
      const records = make({ label: 'lorafuse inspect records', size: recordBytes * chunks.length, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
      const staging = make({ label: 'lorafuse inspect readback', size: recordBytes * chunks.length, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      const uniforms = this.uniforms(make, target, chunks, [], reference !== undefined);
      await this.submit('inspect', (encoder) => {
        const pass = encoder.beginComputePass({ label: 'lorafuse inspect' });
        pass.setPipeline(this.pipelines.inspect);
        const layout = this.pipelines.inspect.getBindGroupLayout(0);
        chunks.forEach((chunk, c) => {
          const bytes = chunk.wordCount * 4;
          const refOffset = (reference?.offset ?? 0) + chunk.wordStart * 4;
          pass.setBindGroup(
            0,
            device.createBindGroup({
              layout,
              entries: [
                { binding: 0, resource: { buffer: uniforms.buffer, offset: c * uniforms.stride, size: PARAMS_BYTES } },
                { binding: 1, resource: { buffer: target.binding.buffer, offset: chunk.offset, size: bytes } },
                { binding: 2, resource: reference === undefined ? { buffer: this.dummy } : { buffer: reference.buffer, offset: refOffset, size: bytes } },
                { binding: 3, resource: { buffer: records, offset: c * recordBytes, size: recordBytes } },
              ],
            }),
          );
          pass.dispatchWorkgroups(INSPECT_GROUPS);
        });
        pass.end();
        encoder.copyBufferToBuffer(records, 0, staging, 0, recordBytes * chunks.length);
      });
      await staging.mapAsync(GPUMapMode.READ);
      const words = new Uint32Array(staging.getMappedRange().slice(0));
      staging.unmap();
      return reduceRecords(words, elements, reference !== undefined);
    } finally {
      release();
    }
  }

  /** Releases what {@link prepare} created. The pipelines are garbage-collected with this object. */
  destroy(): void {
    this.dummy.destroy();
  }

  private async apply(op: string, target: WeightView, pristine: GPUBufferBinding | null, terms: readonly LoraFactors[]): Promise<void> {
    this.checkApply(op, target, pristine, terms);
    const chunks = planWordChunks(target, this.limits);
    // With nothing to add, a rebuild still copies the pristine weight; a merge has nothing to do.
    const groups: LoraFactors[][] = [];
    for (let i = 0; i < terms.length; i += TERMS_PER_PASS) groups.push(terms.slice(i, i + TERMS_PER_PASS));
    if (groups.length === 0 && pristine !== null) groups.push([]);
    if (chunks.length === 0 || groups.length === 0) return;
    // Each pass takes the band entries when W's columns come in eights and its terms fit three
    // slots of 8 k's (every GPT-2 weight; a merge of rank up to 24, a swap of two of rank 8), else
    // the tiled entry when W's rows start on a word, else the word entries (16-bit rows of an odd length).
    const device = this.device;
    const { make, release } = callBuffers(device);
    try {
      const passes = await Promise.all(
        groups.map(async (group, g) => {
          const fromPristine = g === 0 && pristine !== null;
          const slots = bandSlots(target, group, this.limits);
          const entry: ApplyEntry = slots !== null ? 'band' : tilesRows(target) ? 'tiled' : 'word';
          const pipeline =
            slots !== null
              ? await this.pipelines.band({ element: target.element, slots: slots.length, pristine: fromPristine })
              : entry === 'tiled'
                ? await this.pipelines.tiled(target.element)
                : fromPristine
                  ? this.pipelines.fromPristine
                  : this.pipelines.inPlace;
          const bindings = slots === null ? this.termSlots(group, SLOTS) : this.bandSlotBindings(target, slots);
          return { fromPristine, entry, pipeline, bindings, uniforms: this.uniforms(make, target, chunks, slots ?? group, false, undefined, fromPristine, entry) };
        }),
      );
      await this.submit(op, (encoder) => {
        const pass = encoder.beginComputePass({ label: `lorafuse ${op}` });
        for (const { fromPristine, entry, pipeline, bindings, uniforms } of passes) {
          pass.setPipeline(pipeline);
          const layout = pipeline.getBindGroupLayout(0);
          chunks.forEach((chunk, c) => {
            const bytes = chunk.wordCount * 4;
            const entries: GPUBindGroupEntry[] = [
              { binding: 0, resource: { buffer: uniforms.buffer, offset: c * uniforms.stride, size: PARAMS_BYTES } },
              { binding: 1, resource: { buffer: target.binding.buffer, offset: chunk.offset, size: bytes } },
              ...bindings,
            ];
            // The tiled and band entries always bind a source; they read it only on a rebuild's first pass.
            if (fromPristine) entries.push({ binding: 8, resource: { buffer: pristine!.buffer, offset: (pristine!.offset ?? 0) + chunk.wordStart * 4, size: bytes } });
            else if (entry !== 'word') entries.push({ binding: 8, resource: { buffer: this.dummy } });
            pass.setBindGroup(0, device.createBindGroup({ layout, entries }));
            const invocations = entry === 'word' ? chunk.wordCount : chunkGrid(target, chunk, entry).count;
            const [x, y] = foldDispatch(Math.ceil(invocations / WG), device.limits.maxComputeWorkgroupsPerDimension);
            pass.dispatchWorkgroups(x, y);
          });
        }
        pass.end();
      });
    } finally {
      release();
    }
  }

  /**
   * Bind-group entries 2.. of the band slots: each slot's L and R (A and B, or B and A for an out-in
   * W); every pipeline binds all three slots, the unused ones on a small placeholder.
   */
  private bandSlotBindings(target: WeightView, slots: readonly BandSlot[]): GPUBindGroupEntry[] {
    const entries: GPUBindGroupEntry[] = [];
    for (let s = 0; s < BAND_SLOTS; s++) {
      const term = slots[s]?.term;
      const [l, r] = term === undefined ? [{ buffer: this.dummy }, { buffer: this.dummy }] : target.layout === 'in-out' ? [term.a, term.b] : [term.b, term.a];
      entries.push({ binding: 2 + 2 * s, resource: l }, { binding: 3 + 2 * s, resource: r });
    }
    return entries;
  }

  /**
   * DoRA in three kinds of dispatch in one pass: per chunk the segments' sums of squares, then
   * per feature the factor m / ‖·‖, then per chunk the scaled words. WebGPU orders the dispatches,
   * so the sums carry across chunks.
   */
  private async applyDora(op: string, target: WeightView, pristine: GPUBufferBinding | null, terms: readonly LoraFactors[], magnitude: GPUBufferBinding): Promise<void> {
    if (terms.length > DORA_TERMS_PER_PASS) {
      throw new KernelError('TOO_MANY_TERMS', `${op}: ${terms.length} terms; DoRA adds at most ${DORA_TERMS_PER_PASS} before its norm in one pass. Merge DoRA adapters one call each, as PEFT does (each with its own magnitude).`);
    }
    this.checkApply(op, target, pristine, terms);
    checkMagnitude(`${op}: magnitude`, target, magnitude, this.limits);
    const chunks = planWordChunks(target, this.limits);
    if (chunks.length === 0) return;
    const device = this.device;
    const features = doraFeatures(target);
    const other = target.layout === 'out-in' ? target.cols : target.rows;
    const segments = Math.ceil(other / DORA_SEGMENT);
    const { make, release } = callBuffers(device);
    try {
      // New buffers start zeroed, which the first chunk's sums build on.
      const sums = make({ label: 'lorafuse dora sums', size: segments * features * 4, usage: GPUBufferUsage.STORAGE });
      const factors = make({ label: 'lorafuse dora factors', size: features * 4, usage: GPUBufferUsage.STORAGE });
      const params = this.uniforms(make, target, chunks, terms, false, { features, segments, fromPristine: pristine !== null });
      const uniform = (c: number): GPUBindGroupEntry => ({ binding: 0, resource: { buffer: params.buffer, offset: c * params.stride, size: PARAMS_BYTES } });
      const source = (chunk: (typeof chunks)[number]): GPUBindGroupEntry => ({
        binding: 8,
        resource: pristine === null ? { buffer: this.dummy } : { buffer: pristine.buffer, offset: (pristine.offset ?? 0) + chunk.wordStart * 4, size: chunk.wordCount * 4 },
      });
      const slots = this.termSlots(terms, DORA_TERMS_PER_PASS * 2);
      const dispatch = (pass: GPUComputePassEncoder, invocations: number) => {
        const [x, y] = foldDispatch(Math.ceil(invocations / WG), device.limits.maxComputeWorkgroupsPerDimension);
        pass.dispatchWorkgroups(x, y);
      };
      await this.submit(op, (encoder) => {
        const pass = encoder.beginComputePass({ label: `lorafuse ${op}` });
        const { doraNorms, doraFactors, doraScale } = this.pipelines;
        pass.setPipeline(doraNorms);
        chunks.forEach((chunk, c) => {
          const entries = [uniform(c), { binding: 1, resource: { buffer: target.binding.buffer, offset: chunk.offset, size: chunk.wordCount * 4 } }, ...slots, source(chunk), { binding: 9, resource: { buffer: sums } }];
          pass.setBindGroup(0, device.createBindGroup({ layout: doraNorms.getBindGroupLayout(0), entries }));
          dispatch(pass, segments * features);
        });
        pass.setPipeline(doraFactors);
        pass.setBindGroup(0, device.createBindGroup({ layout: doraFactors.getBindGroupLayout(0), entries: [uniform(0), { binding: 9, resource: { buffer: sums } }, { binding: 10, resource: magnitude }, { binding: 11, resource: { buffer: factors } }] }));
        dispatch(pass, features);
        pass.setPipeline(doraScale);
        chunks.forEach((chunk, c) => {
          const entries = [uniform(c), { binding: 1, resource: { buffer: target.binding.buffer, offset: chunk.offset, size: chunk.wordCount * 4 } }, ...slots, source(chunk), { binding: 11, resource: { buffer: factors } }];
          pass.setBindGroup(0, device.createBindGroup({ layout: doraScale.getBindGroupLayout(0), entries }));
          dispatch(pass, chunk.wordCount);
        });
        pass.end();
      });
    } finally {
      release();
    }
  }

  /** Bind-group entries 2.. of the terms' A and B, the unused slots on a small placeholder. */
  private termSlots(terms: readonly LoraFactors[], slots: number): GPUBindGroupEntry[] {
    const entries: GPUBindGroupEntry[] = [];
    for (let s = 0; s < slots; s++) {
      const term = terms[s >> 1];
      const binding = term === undefined ? { buffer: this.dummy } : s % 2 === 0 ? term.a : term.b;
      entries.push({ binding: 2 + s, resource: binding });
    }
    return entries;
  }

  /** The checks every merge-like call makes before recording anything. */
  private checkApply(op: string, target: WeightView, pristine: GPUBufferBinding | null, terms: readonly LoraFactors[]): void {
    checkWeightView(`${op}: W`, target, this.limits);
    terms.forEach((term, i) => {
      checkTerm(`${op}: term ${i}`, target, term, this.limits);
      for (const [name, binding] of [['A', term.a], ['B', term.b]] as const) {
        if (binding.buffer === target.binding.buffer) {
          throw new KernelError('BUFFER_CONFLICT', `${op}: term ${i} ${name} is in the same GPUBuffer as W; WebGPU does not let a dispatch read a buffer it writes. Keep LoRA factors in another buffer.`);
        }
      }
    });
    if (pristine !== null) {
      checkBinding(`${op}: pristine`, pristine, weightWords(target) * 4, this.limits);
      if (pristine.buffer === target.binding.buffer) {
        throw new KernelError(
          bindingsOverlap(pristine, target.binding) ? 'BINDING_OVERLAP' : 'BUFFER_CONFLICT',
          `${op}: the pristine copy is in the same GPUBuffer as W; keep it in another buffer (WebGPU does not let a dispatch read a buffer it writes).`,
        );
      }
    }
  }

  /** One uniform per chunk (the scales live here: changing a strength re-uploads only this). */
  private uniforms(
    make: (d: GPUBufferDescriptor) => GPUBuffer,
    target: WeightView,
    chunks: ReturnType<typeof planWordChunks>,
    terms: readonly (LoraFactors | BandSlot)[],
    hasReference: boolean,
    dora?: { readonly features: number; readonly segments: number; readonly fromPristine: boolean },
    fromPristine = false,
    entry: ApplyEntry = 'word',
  ) {
    const align = this.device.limits.minUniformBufferOffsetAlignment;
    const stride = Math.ceil(PARAMS_BYTES / align) * align;
    const buffer = make({ label: 'lorafuse weights params', size: stride * chunks.length, usage: GPUBufferUsage.UNIFORM, mappedAtCreation: true });
    const mapped = buffer.getMappedRange();
    const element = ELEMENT_CODES[target.element];
    chunks.forEach((chunk, c) => {
      const u32 = new Uint32Array(mapped, c * stride, PARAMS_BYTES / 4);
      const f32 = new Float32Array(mapped, c * stride, PARAMS_BYTES / 4);
      const tiles = entry === 'word' ? { row0: 0, count: 0 } : chunkGrid(target, chunk, entry);
      // groups_x of a dispatch over the chunk's words (the tiled entry reads its grid from num_workgroups).
      const groupsX = foldDispatch(Math.ceil(chunk.wordCount / WG), this.device.limits.maxComputeWorkgroupsPerDimension)[0];
      u32.set([target.rows, target.cols, target.layout === 'in-out' ? 1 : 0, element, chunk.wordStart, chunk.wordCount, target.rows * target.cols, groupsX, terms.length, hasReference ? 1 : 0]);
      u32[20] = tiles.row0;
      u32[21] = tiles.count;
      terms.forEach((item, t) => {
        const term = 'term' in item ? item.term : item;
        u32[10 + t] = term.rank;
        f32[13 + t] = term.scale;
        if ('term' in item) {
          u32[22 + t] = item.first;
          u32[25 + t] = item.count;
          u32[28 + t] = item.first + item.count === term.rank ? 1 : 0;
        }
      });
      if (dora) u32.set([dora.features, dora.segments, dora.fromPristine ? 1 : 0], 16);
      else u32[18] = fromPristine ? 1 : 0;
    });
    buffer.unmap();
    return { buffer, stride };
  }

  private async submit(op: string, record: (encoder: GPUCommandEncoder) => void): Promise<void> {
    const device = this.device;
    pushCallScopes(device);
    const encoder = device.createCommandEncoder({ label: `lorafuse ${op}` });
    record(encoder);
    device.queue.submit([encoder.finish()]);
    const { validation, outOfMemory: memory } = await popCallScopes(device);
    const error = validation ?? memory;
    if (error) throw new KernelError('GPU_ERROR', `${op}: the GPU rejected the work: ${error.message}`);
  }
}

/** True when every row of W starts on a word, which the tiled entry needs (f32, or an even row length). */
function tilesRows(target: WeightView): boolean {
  return target.element === 'f32' || target.cols % 2 === 0;
}

/** Which entry a pass of merge/unmerge/swap/rebuild takes. */
type ApplyEntry = 'band' | 'tiled' | 'word';

/** k's first .. first + count − 1 of a term, one slot of the band entries. */
interface BandSlot {
  readonly term: LoraFactors;
  readonly first: number;
  readonly count: number;
}

/** Which band pipeline: element type, number of slots, source. */
interface BandKey {
  readonly element: WeightElement;
  readonly slots: number;
  readonly pristine: boolean;
}

function bandKeyName(key: BandKey): string {
  return `${key.element}/${key.slots}/${key.pristine ? 'pristine' : 'w'}`;
}

/**
 * The band pipelines {@link WeightKernels.prepare} compiles ahead for each element type: merge and
 * unmerge of an adapter of rank up to 8, a swap of two such, a rebuild from the pristine copy.
 * Other combinations (higher ranks, three terms, a rebuild with two) compile on their first call.
 */
const BAND_AHEAD: readonly Omit<BandKey, 'element'>[] = [
  { slots: 1, pristine: false },
  { slots: 2, pristine: false },
  { slots: 1, pristine: true },
];

const ELEMENT_CODES: Readonly<Record<WeightElement, number>> = { f32: 0, f16: 1, bf16: 2 };

/**
 * A pass's terms as slots of the band entries (none for a rebuild to the pristine weight), or null
 * when the pass cannot take them: W's columns must come in eights, W and every chunk must start on
 * a 32-byte boundary (so no chunk cuts an invocation's 8 columns), and the terms must fit
 * {@link BAND_SLOTS} slots of {@link BAND_SLOT_K} k's.
 */
function bandSlots(target: WeightView, terms: readonly LoraFactors[], limits: BindingLimits): BandSlot[] | null {
  if (target.cols % BAND_COLS !== 0 || (target.binding.offset ?? 0) % 32 !== 0 || limits.minStorageBufferOffsetAlignment % 32 !== 0) return null;
  const slots: BandSlot[] = [];
  for (const term of terms) {
    for (let first = 0; first < term.rank; first += BAND_SLOT_K) slots.push({ term, first, count: Math.min(BAND_SLOT_K, term.rank - first) });
  }
  return slots.length <= BAND_SLOTS ? slots : null;
}

/**
 * The invocations of the tiled or band entry that touch a chunk's words, from the chunk's first
 * row: 8-row bands of 8-column tiles, or BAND_ROWS-row bands of 4-column groups.
 */
function chunkGrid(target: WeightView, chunk: { readonly wordStart: number; readonly wordCount: number }, entry: 'band' | 'tiled'): { row0: number; count: number } {
  const perWord = target.element === 'f32' ? 1 : 2;
  const n = target.rows * target.cols;
  const first = chunk.wordStart * perWord;
  const end = Math.min(n, (chunk.wordStart + chunk.wordCount) * perWord);
  if (end <= first || target.cols === 0) return { row0: 0, count: 0 };
  const row0 = Math.floor(first / target.cols);
  const rowEnd = Math.ceil(end / target.cols);
  const [bandRows, bandCols] = entry === 'band' ? [BAND_ROWS, BAND_COLS] : [TILE_ROWS, TILE_COLS];
  return { row0, count: Math.ceil((rowEnd - row0) / bandRows) * Math.ceil(target.cols / bandCols) };
}

/**
 * The GPU buffers one call creates (uniforms, scratch, readback): `make` creates and records one,
 * `release` destroys them all once the work is submitted (WebGPU frees them after it completes).
 */
function callBuffers(device: GPUDevice): { make: (descriptor: GPUBufferDescriptor) => GPUBuffer; release: () => void } {
  const created: GPUBuffer[] = [];
  return {
    make(descriptor) {
      const buffer = device.createBuffer(descriptor);
      created.push(buffer);
      return buffer;
    },
    release() {
      for (const buffer of created.splice(0)) buffer.destroy();
    },
  };
}

function negated(term: LoraFactors): LoraFactors {
  return { ...term, scale: -term.scale };
}

/** Adds up the per-workgroup records (f64 on the host). */
function reduceRecords(words: Uint32Array, elements: number, hasReference: boolean): WeightStats {
  const floats = new Float32Array(words.buffer, words.byteOffset, words.length);
  const sums: WeightSums = { nonFinite: 0, referenceNonFinite: 0, maxAbsDiff: 0, dot: 0, ww: 0, rr: 0 };
  for (let i = 0; i < words.length; i += RECORD_WORDS) {
    sums.nonFinite += words[i]!;
    sums.referenceNonFinite += words[i + 1]!;
    sums.maxAbsDiff = Math.max(sums.maxAbsDiff, floats[i + 2]!);
    sums.dot += floats[i + 3]!;
    sums.ww += floats[i + 4]!;
    sums.rr += floats[i + 5]!;
  }
  return { elements, ...finishWeightStats(sums, hasReference) };
}
