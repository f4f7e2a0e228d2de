import { isSoftwareAdapter } from '../device.js';
import { kernelPipeline } from '../pipeline-cache.js';
import { foldDispatch } from '../dispatch.js';
import {
  checkCompareInput,
  checkCompareTolerance,
  COMPARE_ELEMENT_BYTES,
  COMPARE_TOP_K,
  f32FromBits,
  elementBits,
  finishCompareStats,
  pairScore,
  WorstList,
  type CompareElementType,
  type CompareInput,
  type CompareStats,
  type CompareTolerance,
  type CompareWorstElement,
} from './compare.types.js';
import shaderSource from './compare.wgsl';
import { popCallScopes, pushCallScopes } from '../error-scopes.js';

/** Elements covered by one workgroup (one record) on every device: chunks start at multiples of it. */
export const COMPARE_ELEMENTS_PER_WORKGROUP = 4096;

/**
 * How the kernel splits a workgroup's {@link COMPARE_ELEMENTS_PER_WORKGROUP} elements (override
 * constants `WG`, `PER_THREAD`, `BLOCK`), and what that means for the f32 sums.
 */
export interface CompareWorkShape {
  /** Invocations per workgroup. */
  readonly workgroupSize: number;
  /** Elements per invocation. */
  readonly perThread: number;
  /** Terms summed in a block before the block joins the invocation's running sum. */
  readonly block: number;
  /**
   * Most f32 roundings a summed term meets on the GPU: its product, BLOCK - 1 in its block,
   * PER_THREAD / BLOCK - 1 in the running sum, log2(WG) in the workgroup's pairwise tree.
   */
  readonly sumRoundings: number;
}

function workShape(workgroupSize: number, block: number): CompareWorkShape {
  const perThread = COMPARE_ELEMENTS_PER_WORKGROUP / workgroupSize;
  return { workgroupSize, perThread, block, sumRoundings: 1 + (block - 1) + (perThread / block - 1) + Math.log2(workgroupSize) };
}

/** GPUs: 64 invocations of 64 elements each, neighbours reading neighbouring words. */
export const COMPARE_GPU_SHAPE = workShape(64, 8);
/**
 * Software adapters (SwiftShader): a workgroup barrier there switches between all of the
 * workgroup's SIMD groups, so one SIMD group (4 invocations) of 1024 elements each does the same
 * work 2x faster (packages/bench). Blocks of 32 keep the sums' roundings at 65.
 */
export const COMPARE_SOFTWARE_SHAPE = workShape(4, 32);

/** The work shape the compare kernel uses on `device`. */
export function compareWorkShape(device: GPUDevice): CompareWorkShape {
  // `adapterInfo` is missing on older implementations: assume hardware there.
  const info = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  return info !== undefined && isSoftwareAdapter(info) ? COMPARE_SOFTWARE_SHAPE : COMPARE_GPU_SHAPE;
}
/** u32 words per workgroup record (`RECORD` in the WGSL). */
const RECORD_WORDS = 16;
const RECORD_BYTES = RECORD_WORDS * 4;
/** Size in bytes of the WGSL `Params` uniform (6 u32 + 2 f32). */
const PARAMS_BYTES = 8 * 4;
const TYPE_CODE: Readonly<Record<CompareElementType, number>> = { f32: 0, f16: 1, bf16: 2 };
/** Largest element count: element indices and workgroup bases stay far from u32 overflow. */
const MAX_COUNT = 2 ** 31;

/**
 * Lower limits to use instead of the device's, to exercise chunking and dispatch folding in tests
 * without huge buffers. Values above the device's limits are ignored.
 */
export interface CompareLimits {
  /** Bytes; both tensors are bound in element chunks that fit. */
  maxStorageBufferBindingSize?: number;
  /** Workgroups per dispatch dimension; more fold into a 2-D dispatch. */
  maxComputeWorkgroupsPerDimension?: number;
}

/** A tensor in a GPU buffer, from byte offset 0. */
export interface CompareBufferInput {
  /** `count` elements of `type`, little-endian, padded to a multiple of 4 bytes. Usage must include STORAGE (and COPY_SRC for {@link readCompareStats} without host values). */
  buffer: GPUBuffer;
  type: CompareElementType;
}

/** Parameters of {@link encodeCompare}. */
export interface EncodeCompareParams extends CompareTolerance {
  /** Elements in each tensor (at most 2³¹). */
  count: number;
  a: CompareBufferInput;
  b: CompareBufferInput;
  /** Prefix of the labels of the GPU objects created (default `'compare'`). */
  label?: string;
  limits?: CompareLimits;
  /** How workgroups split their elements (default: {@link compareWorkShape} of the device); for tests and tuning. */
  workShape?: CompareWorkShape;
}

/** One chunk of elements bound at once. */
export interface CompareChunk {
  /** First element of the chunk (a multiple of {@link COMPARE_ELEMENTS_PER_WORKGROUP}). */
  elemStart: number;
  /** Elements in the chunk (>= 1). */
  elemCount: number;
  /** Index of the chunk's first workgroup record. */
  recordStart: number;
  /** Workgroups (records) of the chunk. */
  records: number;
}

/**
 * What {@link encodeCompare} recorded. Pass it to {@link readCompareStats} after submitting the
 * encoder; that also destroys the buffers listed in `created`.
 */
export interface EncodedCompare {
  readonly count: number;
  readonly params: EncodeCompareParams;
  /** Element chunks (one per bind group and dispatch); none for an empty comparison. */
  readonly chunks: readonly CompareChunk[];
  /** Workgroups dispatched over all chunks (including idle ones of folded dispatches). */
  readonly workgroups: number;
  /** Workgroup records, read back after the pass; undefined when nothing was dispatched. */
  readonly readback: GPUBuffer | undefined;
  /** Buffers this comparison created (uniforms, partials, readback). */
  readonly created: readonly GPUBuffer[];
}

function getPipeline(device: GPUDevice, typeA: CompareElementType, typeB: CompareElementType, shape: CompareWorkShape): GPUComputePipeline {
  return kernelPipeline(device, {
    kernel: 'compare',
    code: shaderSource,
    entryPoint: 'main',
    constants: { WG: shape.workgroupSize, PER_THREAD: shape.perThread, BLOCK: shape.block, TYPE_A: TYPE_CODE[typeA], TYPE_B: TYPE_CODE[typeB] },
    paramsBytes: PARAMS_BYTES,
    storage: ['read-only-storage', 'read-only-storage', 'storage'],
  });
}

/** Bytes a binding of `count` elements of `type` needs (rounded up to whole u32 words). */
function paddedBytes(type: CompareElementType, count: number): number {
  return Math.ceil((count * COMPARE_ELEMENT_BYTES[type]) / 4) * 4;
}

/**
 * Splits `count` elements into chunks whose bindings (at most 4 bytes per element) each fit
 * `maxBindingSize` bytes. Chunks start at multiples of {@link COMPARE_ELEMENTS_PER_WORKGROUP} (4096)
 * elements, so every binding offset is a multiple of 8 KiB, hence of any
 * `minStorageBufferOffsetAlignment` (<= 256). Pure; one chunk when everything fits, none for `count` 0.
 *
 * @throws RangeError naming `maxStorageBufferBindingSize` when not even 4096 f32 values (16 KiB) fit.
 */
export function planCompareChunks(count: number, maxBindingSize: number): CompareChunk[] {
  const chunks: CompareChunk[] = [];
  if (count === 0) return chunks;
  const quantum = COMPARE_ELEMENTS_PER_WORKGROUP;
  const perChunk = Math.floor(maxBindingSize / 4 / quantum) * quantum;
  if (perChunk === 0) {
    throw new RangeError(
      `compare: maxStorageBufferBindingSize (${maxBindingSize} bytes) is below the ${quantum * 4} bytes one chunk of ${quantum} f32 values needs.`,
    );
  }
  for (let elemStart = 0; elemStart < count; elemStart += perChunk) {
    const elemCount = Math.min(perChunk, count - elemStart);
    chunks.push({ elemStart, elemCount, recordStart: elemStart / quantum, records: Math.ceil(elemCount / quantum) });
  }
  return chunks;
}

/** Validates inputs against the buffers and limits, and plans the chunks. */
function planCompare(device: GPUDevice, params: EncodeCompareParams): { chunks: CompareChunk[]; maxGroups: number; maxBinding: number } {
  const { count } = params;
  if (!Number.isSafeInteger(count) || count < 0 || count > MAX_COUNT) {
    throw new RangeError(`compare: count must be an integer in [0, 2^31], got ${count}.`);
  }
  checkCompareTolerance(params);
  for (const [name, input] of [['a', params.a], ['b', params.b]] as const) {
    if (COMPARE_ELEMENT_BYTES[input.type] === undefined) throw new RangeError(`compare: ${name}.type must be f32, f16 or bf16, got ${JSON.stringify(input.type)}.`);
    const need = paddedBytes(input.type, count);
    if (input.buffer.size < need) throw new RangeError(`compare: buffer ${name} (${input.buffer.label}) has ${input.buffer.size} bytes, needs ${need}.`);
    if ((input.buffer.usage & GPUBufferUsage.STORAGE) === 0) throw new TypeError(`compare: buffer ${name} (${input.buffer.label}) lacks STORAGE usage.`);
  }
  const maxBinding = Math.min(device.limits.maxStorageBufferBindingSize, params.limits?.maxStorageBufferBindingSize ?? Infinity);
  const maxGroups = Math.min(device.limits.maxComputeWorkgroupsPerDimension, params.limits?.maxComputeWorkgroupsPerDimension ?? Infinity);
  return { chunks: planCompareChunks(count, maxBinding), maxGroups, maxBinding };
}

/**
 * Records the comparison of tensors a and b (`count` elements each, flat) into `encoder`: one compute
 * pass in which each workgroup reduces {@link COMPARE_ELEMENTS_PER_WORKGROUP} consecutive elements
 * (split over its invocations as {@link compareWorkShape} says for the device) to one record (its worst element and
 * index, maxima, counts, f32 partial sums), then a copy of the records into a mappable buffer. Submit
 * the encoder, then call {@link readCompareStats} for the final reduction.
 *
 * Elements are compared in f32 (f16 and bf16 widened exactly, decoded from their bits in the shader;
 * one pipeline per pair of element types); see `compareRef` for the rules. Inputs larger than
 * `maxStorageBufferBindingSize` are bound in chunks; more than `maxComputeWorkgroupsPerDimension`
 * workgroups fold into a 2-D dispatch. An empty comparison records nothing.
 *
 * Sums are f32 on the GPU, with bounded rounding: an invocation sums its terms in blocks, then the
 * workgroup adds its partial sums pairwise, so each term meets at most `sumRoundings` f32 roundings
 * before the f64 reduction of the records (21 on GPUs, 65 on software adapters):
 * |error| <= sumRoundings·2⁻²⁴·Σ|term|. Values beyond ~1.8e19 in magnitude overflow the f32 squares
 * (the CPU reference sums in f64 and does not).
 *
 * @throws RangeError for a bad count or tolerance, buffers too small for `count`, or a binding limit
 *   below 16 KiB (the message names `maxStorageBufferBindingSize`).
 */
export function encodeCompare(device: GPUDevice, encoder: GPUCommandEncoder, params: EncodeCompareParams): EncodedCompare {
  const { chunks, maxGroups, maxBinding } = planCompare(device, params);
  if (chunks.length === 0) return { count: 0, params, chunks, workgroups: 0, readback: undefined, created: [] };
  const label = params.label ?? 'compare';
  const last = chunks[chunks.length - 1]!;
  const totalRecords = last.recordStart + last.records;
  const created: GPUBuffer[] = [];
  const storageAlign = device.limits.minStorageBufferOffsetAlignment;

  // The records of a chunk are bound from the aligned offset at or below its first record.
  const windows = chunks.map((chunk) => {
    const first = chunk.recordStart * RECORD_BYTES;
    const offset = first - (first % storageAlign);
    const size = first - offset + chunk.records * RECORD_BYTES;
    if (size > maxBinding) throw new RangeError(`compare: ${chunk.records} workgroup records (${size} bytes) exceed maxStorageBufferBindingSize (${maxBinding} bytes).`);
    return { offset, size, recordBase: (first - offset) / RECORD_BYTES };
  });

  const stride = Math.ceil(PARAMS_BYTES / device.limits.minUniformBufferOffsetAlignment) * device.limits.minUniformBufferOffsetAlignment;
  const uniforms = device.createBuffer({ label: `${label} params`, size: stride * chunks.length, usage: GPUBufferUsage.UNIFORM, mappedAtCreation: true });
  created.push(uniforms);
  const grids = chunks.map((chunk) => foldDispatch(chunk.records, maxGroups));
  const mapped = uniforms.getMappedRange();
  chunks.forEach((chunk, c) => {
    new Uint32Array(mapped, c * stride, 6).set([chunk.elemCount, chunk.elemStart, grids[c]![0], chunk.records, params.equalNan ? 1 : 0, windows[c]!.recordBase]);
    new Float32Array(mapped, c * stride + 6 * 4, 2).set([params.atol, params.rtol]);
  });
  uniforms.unmap();

  const partials = device.createBuffer({ label: `${label} partials`, size: totalRecords * RECORD_BYTES, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  created.push(partials);
  const readback = device.createBuffer({ label: `${label} readback`, size: partials.size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  created.push(readback);

  const pipeline = getPipeline(device, params.a.type, params.b.type, params.workShape ?? compareWorkShape(device));
  const layout = pipeline.getBindGroupLayout(0);
  const pass = encoder.beginComputePass({ label: `${label} pass` });
  pass.setPipeline(pipeline);
  let workgroups = 0;
  chunks.forEach((chunk, c) => {
    const [groupsX, groupsY] = grids[c]!;
    const side = (input: CompareBufferInput) => ({
      buffer: input.buffer,
      offset: chunk.elemStart * COMPARE_ELEMENT_BYTES[input.type],
      size: paddedBytes(input.type, chunk.elemCount),
    });
    pass.setBindGroup(
      0,
      device.createBindGroup({
        label: `${label} bind group (elements ${chunk.elemStart}..${chunk.elemStart + chunk.elemCount})`,
        layout,
        entries: [
          { binding: 0, resource: { buffer: uniforms, offset: c * stride, size: PARAMS_BYTES } },
          { binding: 1, resource: side(params.a) },
          { binding: 2, resource: side(params.b) },
          { binding: 3, resource: { buffer: partials, offset: windows[c]!.offset, size: windows[c]!.size } },
        ],
      }),
    );
    pass.dispatchWorkgroups(groupsX, groupsY);
    workgroups += groupsX * groupsY;
  });
  pass.end();
  encoder.copyBufferToBuffer(partials, 0, readback, 0, partials.size);
  return { count: params.count, params, chunks, workgroups, readback, created };
}

/** Statistics reduced from workgroup records, and the workgroups that may hold the worst elements. */
export interface ReducedCompareRecords {
  /** Everything but `worst`, which is empty here. */
  stats: CompareStats;
  /**
   * Workgroups (by record index, ascending) whose elements include every one of the
   * {@link COMPARE_TOP_K} worst: the first `COMPARE_TOP_K` workgroups in the order of their own worst
   * element (score descending, index ascending). Any element outside them is beaten by those
   * workgroups' own worst elements, which are `COMPARE_TOP_K` distinct elements.
   */
  candidates: number[];
}

/**
 * The final reduction of {@link encodeCompare}'s records (`RECORD_WORDS` u32 each): maxima and counts
 * exactly, the f32 partial sums in f64, and the candidate workgroups of the worst-element search.
 */
export function reduceCompareRecords(records: Uint32Array, count: number): ReducedCompareRecords {
  const n = Math.floor(records.length / RECORD_WORDS);
  let maxAbs = 0;
  let maxRel = 0;
  let violations = 0;
  let nanA = 0;
  let nanB = 0;
  let infA = 0;
  let infB = 0;
  let finitePairs = 0;
  let sumSq = 0;
  let dot = 0;
  let aa = 0;
  let bb = 0;
  const groups: Array<{ record: number; score: number; index: number }> = [];
  for (let r = 0; r < n; r++) {
    const o = r * RECORD_WORDS;
    const score = records[o]!;
    if (score > 0) groups.push({ record: r, score, index: records[o + 1]! });
    maxAbs = Math.max(maxAbs, score);
    maxRel = Math.max(maxRel, records[o + 2]!);
    violations += records[o + 3]!;
    nanA += records[o + 4]!;
    nanB += records[o + 5]!;
    infA += records[o + 6]!;
    infB += records[o + 7]!;
    finitePairs += records[o + 8]!;
    sumSq += f32FromBits(records[o + 9]!);
    dot += f32FromBits(records[o + 10]!);
    aa += f32FromBits(records[o + 11]!);
    bb += f32FromBits(records[o + 12]!);
  }
  groups.sort((x, y) => y.score - x.score || x.index - y.index);
  const candidates = groups.slice(0, COMPARE_TOP_K).map((g) => g.record).sort((x, y) => x - y);
  const stats = finishCompareStats({
    count,
    violations,
    maxAbsDiff: f32FromBits(maxAbs),
    maxRelDiff: f32FromBits(maxRel),
    finitePairs,
    sumSquaredDiff: sumSq,
    dot,
    sumSquaresA: aa,
    sumSquaresB: bb,
    nanA,
    nanB,
    infA,
    infB,
    worst: [],
  });
  return { stats, candidates };
}

/** Elements `[start, start + n)` of both tensors, as bytes whose element 0 is element `start`. */
interface Segment {
  start: number;
  n: number;
  a: CompareInput;
  b: CompareInput;
}

/** The worst elements among the candidate segments (ascending), by the kernel's own per-element rule. */
function worstOfSegments(segments: readonly Segment[], equalNan: boolean): CompareWorstElement[] {
  const list = new WorstList();
  for (const s of segments) {
    for (let k = 0; k < s.n; k++) {
      const aBits = elementBits(s.a, k);
      const bBits = elementBits(s.b, k);
      const a = f32FromBits(aBits);
      const b = f32FromBits(bBits);
      const score = pairScore(aBits, bBits, a, b, equalNan);
      if (score > 0) list.offer(s.start + k, score, a, b);
    }
  }
  return list.items;
}

function segmentRange(record: number, count: number): { start: number; n: number } {
  const start = record * COMPARE_ELEMENTS_PER_WORKGROUP;
  return { start, n: Math.min(COMPARE_ELEMENTS_PER_WORKGROUP, count - start) };
}

function subInput(input: CompareInput, start: number, n: number): CompareInput {
  const size = COMPARE_ELEMENT_BYTES[input.type];
  return { type: input.type, bytes: input.bytes.subarray(start * size, (start + n) * size) };
}

/**
 * Reads back what {@link encodeCompare} recorded (call it after submitting the encoder), reduces the
 * records ({@link reduceCompareRecords}) and finds the {@link COMPARE_TOP_K} worst elements by
 * rescanning at most that many candidate workgroups' elements (≤ 32 768) with the kernel's rule:
 * from `values` when given (the host copies of a and b), else copied back from the GPU buffers (which
 * then need COPY_SRC usage). Destroys the buffers the comparison created, also on failure.
 */
export async function readCompareStats(device: GPUDevice, encoded: EncodedCompare, values?: { a: CompareInput; b: CompareInput }): Promise<CompareStats> {
  const extra: GPUBuffer[] = [];
  try {
    if (encoded.readback === undefined) return reduceCompareRecords(new Uint32Array(0), encoded.count).stats;
    await encoded.readback.mapAsync(GPUMapMode.READ);
    const { stats, candidates } = reduceCompareRecords(new Uint32Array(encoded.readback.getMappedRange()), encoded.count);
    if (candidates.length === 0) return stats;
    let segments: Segment[];
    if (values !== undefined) {
      segments = candidates.map((record) => {
        const { start, n } = segmentRange(record, encoded.count);
        return { start, n, a: subInput(values.a, start, n), b: subInput(values.b, start, n) };
      });
    } else {
      segments = await copySegments(device, encoded, candidates, extra);
    }
    stats.worst = worstOfSegments(segments, encoded.params.equalNan);
    return stats;
  } finally {
    for (const buffer of [...encoded.created, ...extra]) buffer.destroy();
  }
}

/** Copies the candidate workgroups' elements of a and b back from the GPU. */
async function copySegments(device: GPUDevice, encoded: EncodedCompare, candidates: readonly number[], created: GPUBuffer[]): Promise<Segment[]> {
  const { a, b } = encoded.params;
  const label = encoded.params.label ?? 'compare';
  const layout: Array<{ start: number; n: number; aAt: number; aBytes: number; bAt: number; bBytes: number }> = [];
  let size = 0;
  for (const record of candidates) {
    const { start, n } = segmentRange(record, encoded.count);
    const aBytes = paddedBytes(a.type, n);
    const bBytes = paddedBytes(b.type, n);
    layout.push({ start, n, aAt: size, aBytes, bAt: size + aBytes, bBytes });
    size += aBytes + bBytes;
  }
  const staging = device.createBuffer({ label: `${label} worst candidates`, size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  created.push(staging);
  const encoder = device.createCommandEncoder({ label: `${label} worst candidates` });
  for (const s of layout) {
    encoder.copyBufferToBuffer(a.buffer, s.start * COMPARE_ELEMENT_BYTES[a.type], staging, s.aAt, s.aBytes);
    encoder.copyBufferToBuffer(b.buffer, s.start * COMPARE_ELEMENT_BYTES[b.type], staging, s.bAt, s.bBytes);
  }
  device.queue.submit([encoder.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const bytes = new Uint8Array(staging.getMappedRange().slice(0));
  return layout.map((s) => ({
    start: s.start,
    n: s.n,
    a: { type: a.type, bytes: bytes.subarray(s.aAt, s.aAt + s.n * COMPARE_ELEMENT_BYTES[a.type]) },
    b: { type: b.type, bytes: bytes.subarray(s.bAt, s.bAt + s.n * COMPARE_ELEMENT_BYTES[b.type]) },
  }));
}

/** Parameters of {@link runCompare}: {@link EncodeCompareParams} with host bytes. */
export interface RunCompareParams extends CompareTolerance {
  count: number;
  a: CompareInput;
  b: CompareInput;
  label?: string;
  limits?: CompareLimits;
  /** See {@link EncodeCompareParams.workShape}. */
  workShape?: CompareWorkShape;
}

/**
 * Uploads a and b, runs {@link encodeCompare} and returns the statistics (worst elements with their
 * values). GPU validation and out-of-memory errors are thrown, not just logged.
 */
export async function runCompare(device: GPUDevice, params: RunCompareParams): Promise<CompareStats> {
  const label = params.label ?? 'compare';
  checkCompareInput('a', params.a, params.count);
  checkCompareInput('b', params.b, params.count);
  checkCompareTolerance(params);
  if (params.count === 0) return reduceCompareRecords(new Uint32Array(0), 0).stats;
  for (const [name, input] of [['a', params.a], ['b', params.b]] as const) {
    const bytes = paddedBytes(input.type, params.count);
    if (bytes > device.limits.maxBufferSize) {
      throw new RangeError(`runCompare: ${name} (${bytes} bytes) is larger than the device's maxBufferSize (${device.limits.maxBufferSize} bytes).`);
    }
  }

  pushCallScopes(device);
  const uploaded: GPUBuffer[] = [];
  let encoded: EncodedCompare | undefined;
  let thrown: unknown;
  try {
    const upload = (name: string, input: CompareInput): GPUBuffer => {
      const size = paddedBytes(input.type, params.count);
      const buffer = device.createBuffer({ label: `${label} ${name}`, size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
      uploaded.push(buffer);
      // writeBuffer needs a multiple of 4 bytes: an odd count of 2-byte elements gets a zero half word.
      const whole = input.bytes.byteLength - (input.bytes.byteLength % 4);
      if (whole > 0) device.queue.writeBuffer(buffer, 0, input.bytes.buffer as ArrayBuffer, input.bytes.byteOffset, whole);
      if (whole < size) {
        const tail = new Uint8Array(4);
        tail.set(input.bytes.subarray(whole));
        device.queue.writeBuffer(buffer, whole, tail);
      }
      return buffer;
    };
    const a = upload('a', params.a);
    const b = upload('b', params.b);
    const encoder = device.createCommandEncoder({ label: `${label} encoder` });
    encoded = encodeCompare(device, encoder, {
      count: params.count,
      a: { buffer: a, type: params.a.type },
      b: { buffer: b, type: params.b.type },
      atol: params.atol,
      rtol: params.rtol,
      equalNan: params.equalNan,
      label,
      ...(params.limits === undefined ? {} : { limits: params.limits }),
      ...(params.workShape === undefined ? {} : { workShape: params.workShape }),
    });
    device.queue.submit([encoder.finish({ label: `${label} commands` })]);
  } catch (err) {
    thrown = err;
  }
  const { validation, outOfMemory: oom } = await popCallScopes(device);
  try {
    if (thrown !== undefined || validation !== null || oom !== null || encoded === undefined) {
      for (const buffer of encoded?.created ?? []) buffer.destroy();
      if (thrown !== undefined) throw thrown;
      const kind = validation !== null ? 'validation' : 'out-of-memory';
      throw new Error(`runCompare (${label}): WebGPU ${kind} error: ${(validation ?? oom)?.message}`);
    }
    return await readCompareStats(device, encoded, { a: params.a, b: params.b });
  } finally {
    for (const buffer of uploaded) buffer.destroy();
  }
}
