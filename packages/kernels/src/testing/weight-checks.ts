/// <reference types="@webgpu/types" />
/**
 * The app-facing weight kernels against their CPU twins on one device, on awkward shapes: W at an
 * offset inside a larger buffer (the bytes around it must not change), odd sizes, a 16-bit W with
 * an odd element count (the last word's high half belongs to the app), ranks 1 and 256, one row,
 * empty, bindings split into chunks, DoRA's norms and scaling (with a zero-norm feature), and the
 * refusals by code. No Node APIs: the Chromium page and
 * the Dawn test both run these.
 */
import { KernelError, WeightKernels, type LoraFactors, type WeightElement, type WeightLayout, type WeightView } from '../index.js';
import { applyDoraRef, applyTermsRef, inspectRef, type RefFactors } from '../reference.js';
import type { CheckResult } from './forward-checks.js';
import { seededUniform } from './float-arrays.js';
import { readBufferBytes } from './gpu-buffers.js';
import { doraFeatures, weightWords } from '../weights/weight-view.js';

const PAD = 256;
const SENTINEL = 0xa5;

interface Case {
  readonly name: string;
  readonly rows: number;
  readonly cols: number;
  readonly layout: WeightLayout;
  readonly element: WeightElement;
  readonly ranks: readonly number[];
  /** DoRA: an output feature whose W and delta are all 0 (its norm is 0). */
  readonly zeroFeature?: number;
}

function encodeWeights(values: Float32Array, element: WeightElement, words: number): Uint8Array {
  const out = new Uint8Array(words * 4);
  const view = new DataView(out.buffer);
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  values.forEach((v, i) => {
    f32[0] = v;
    if (element === 'f32') view.setUint32(i * 4, u32[0]!, true);
    // Truncation is enough to make test values of the 16-bit types.
    else if (element === 'bf16') view.setUint16(i * 2, u32[0]! >>> 16, true);
    else view.setUint16(i * 2, f16Of(v), true);
  });
  // The high half of an odd 16-bit W's last word: app data that must survive.
  if (element !== 'f32' && values.length % 2 === 1) view.setUint16(values.length * 2, 0xbeef, true);
  return out;
}

function f16Of(v: number): number {
  // Small test values: a sign, a 5-bit exponent and a truncated mantissa.
  const f32 = new Float32Array([v]);
  const x = new Uint32Array(f32.buffer)[0]!;
  const e = ((x >>> 23) & 0xff) - 127 + 15;
  if (e <= 0) return (x >>> 16) & 0x8000;
  return ((x >>> 16) & 0x8000) | (Math.min(e, 30) << 10) | ((x >>> 13) & 0x3ff);
}

/** Elements of the two encodings that differ by more than `ulps` steps, and the largest step. */
function countOff(got: Uint8Array, want: Uint8Array, element: WeightElement, n: number, ulps: number): { violations: number; maxAbs: number } {
  const g = new DataView(got.buffer, got.byteOffset, got.byteLength);
  const w = new DataView(want.buffer, want.byteOffset, want.byteLength);
  let violations = 0;
  let maxAbs = 0;
  for (let i = 0; i < n; i++) {
    const [a, b] = element === 'f32' ? [g.getInt32(i * 4, true), w.getInt32(i * 4, true)] : [g.getInt16(i * 2, true), w.getInt16(i * 2, true)];
    // Two NaNs agree whatever their sign and payload (the host's and the GPU's default NaNs differ).
    const steps = isNaNBits(a, element) && isNaNBits(b, element) ? 0 : Math.abs(a - b);
    maxAbs = Math.max(maxAbs, steps);
    if (steps > ulps) violations++;
  }
  // Bytes after W inside its last word (16-bit, odd count) must be exactly the app's.
  for (let i = n * (element === 'f32' ? 4 : 2); i < want.length; i++) if (got[i] !== want[i]) violations++;
  return { violations, maxAbs };
}

function isNaNBits(bits: number, element: WeightElement): boolean {
  if (element === 'f32') return (bits & 0x7fffffff) > 0x7f800000;
  return (bits & 0x7fff) > (element === 'f16' ? 0x7c00 : 0x7f80);
}

function upload(device: GPUDevice, bytes: Uint8Array, label: string, padBefore = 0): GPUBuffer {
  const size = Math.max(16, Math.ceil((padBefore + bytes.length + PAD) / 4) * 4);
  const buffer = device.createBuffer({ label, size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, mappedAtCreation: true });
  const mapped = new Uint8Array(buffer.getMappedRange());
  mapped.fill(SENTINEL);
  mapped.set(bytes, padBefore);
  buffer.unmap();
  return buffer;
}

/** Runs every check on `device`. */
export async function runWeightChecks(device: GPUDevice): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const kernels = await WeightKernels.prepare(device);
  const chunked = await WeightKernels.prepare(device, { limits: { maxStorageBufferBindingSize: 1024 } });
  // Room for an A of 500 f32 (DoRA's norm segments are 256 elements long) and still W in chunks.
  const chunkedWide = await WeightKernels.prepare(device, { limits: { maxStorageBufferBindingSize: 2048 } });
  const align = device.limits.minStorageBufferOffsetAlignment;
  let seed = 100;
  const created: GPUBuffer[] = [];
  const track = (b: GPUBuffer) => (created.push(b), b);

  const makeTerms = (c: Case) =>
    c.ranks.map((rank, t): { gpu: LoraFactors; ref: RefFactors } => {
      const [aLen, bLen] = c.layout === 'out-in' ? [rank * c.cols, c.rows * rank] : [rank * c.rows, c.cols * rank];
      const a = seededUniform(seed++, aLen, 0.5);
      const b = seededUniform(seed++, bLen, 0.5);
      const scale = t % 2 === 0 ? 1.75 / rank : -0.5;
      // Factors placed at an aligned offset of a shared buffer, as an app that packs adapters would.
      const buffer = track(upload(device, new Uint8Array([...new Uint8Array(a.buffer), ...new Uint8Array(new ArrayBuffer(align - ((aLen * 4) % align || align))), ...new Uint8Array(b.buffer)]), `${c.name} factors ${t}`));
      const bOffset = Math.ceil((aLen * 4) / align) * align;
      return { gpu: { a: { buffer, offset: 0, size: Math.max(4, aLen * 4) }, b: { buffer, offset: bOffset, size: Math.max(4, bLen * 4) }, rank, scale }, ref: { a, b, rank, scale } };
    });

  const runCase = async (c: Case, k: WeightKernels, op: 'merge' | 'swap' | 'rebuild' | 'unmerge') => {
    const n = c.rows * c.cols;
    const words = weightWords(c);
    const initial = encodeWeights(seededUniform(seed++, n, 2), c.element, words);
    const wBuffer = track(upload(device, initial, `${c.name} W`, align));
    const view: WeightView = { binding: { buffer: wBuffer, offset: align, size: words * 4 }, rows: c.rows, cols: c.cols, layout: c.layout, element: c.element };
    const terms = makeTerms(c);
    let want: Uint8Array;
    if (op === 'merge') {
      await k.merge(view, terms.map((t) => t.gpu));
      want = applyTermsRef({ w: initial, ...c, terms: terms.map((t) => t.ref) });
    } else if (op === 'unmerge') {
      await k.unmerge(view, terms.map((t) => t.gpu));
      want = applyTermsRef({ w: initial, ...c, terms: terms.map((t) => ({ ...t.ref, scale: -t.ref.scale })) });
    } else if (op === 'swap') {
      const [remove, ...add] = terms;
      await k.swap(view, { remove: [remove!.gpu], add: add.map((t) => t.gpu) });
      want = applyTermsRef({ w: initial, ...c, terms: [{ ...remove!.ref, scale: -remove!.ref.scale }, ...add.map((t) => t.ref)] });
    } else {
      const pristine = encodeWeights(seededUniform(seed++, n, 2), c.element, words);
      const pBuffer = track(upload(device, pristine, `${c.name} pristine`));
      await k.rebuild(view, { buffer: pBuffer, offset: 0, size: words * 4 }, terms.map((t) => t.gpu));
      want = applyTermsRef({ w: initial, pristine, ...c, terms: terms.map((t) => t.ref) });
    }
    const all = await readBufferBytes(device, wBuffer);
    const got = all.subarray(align, align + words * 4);
    // f32: FMA may change the last bits of each product sum; 16-bit: that can flip one rounding.
    const { violations, maxAbs } = countOff(got, want, c.element, n, c.element === 'f32' ? 64 : 1);
    let outside = 0;
    for (let i = 0; i < all.length; i++) if ((i < align || i >= align + words * 4) && all[i] !== SENTINEL) outside++;
    results.push({ name: `${op} ${c.name}${k === chunked ? ' chunked' : ''}`, elements: n, maxAbs, violations: violations + outside });
  };

  const cases: Case[] = [
    { name: 'f32 out-in 5x7 r1', rows: 5, cols: 7, layout: 'out-in', element: 'f32', ranks: [1] },
    { name: 'f32 in-out 67x130 r3+r2', rows: 67, cols: 130, layout: 'in-out', element: 'f32', ranks: [3, 2] },
    { name: 'f16 in-out 33x9 (odd count) r2', rows: 33, cols: 9, layout: 'in-out', element: 'f16', ranks: [2] },
    { name: 'bf16 out-in 1x1 r1', rows: 1, cols: 1, layout: 'out-in', element: 'bf16', ranks: [1] },
    { name: 'f16 out-in 17x300 r256', rows: 17, cols: 300, layout: 'out-in', element: 'f16', ranks: [256] },
    { name: 'bf16 in-out 1x301 r4+r1+r2+r3', rows: 1, cols: 301, layout: 'in-out', element: 'bf16', ranks: [4, 1, 2, 3] },
    { name: 'f32 out-in 0x5 (empty)', rows: 0, cols: 5, layout: 'out-in', element: 'f32', ranks: [2] },
  ];
  for (const c of cases) await runCase(c, kernels, 'merge');
  await runCase({ name: 'f32 in-out 40x33 r2', rows: 40, cols: 33, layout: 'in-out', element: 'f32', ranks: [2] }, chunked, 'merge');
  await runCase({ name: 'f16 out-in 31x33 (odd) r3', rows: 31, cols: 33, layout: 'out-in', element: 'f16', ranks: [3] }, chunked, 'merge');
  await runCase({ name: 'bf16 in-out 29x40 r2', rows: 29, cols: 40, layout: 'in-out', element: 'bf16', ranks: [2] }, chunked, 'rebuild');
  await runCase({ name: 'f32 out-in 9x11 r2', rows: 9, cols: 11, layout: 'out-in', element: 'f32', ranks: [2] }, kernels, 'unmerge');
  await runCase({ name: 'f16 in-out 13x21 r4->r2', rows: 13, cols: 21, layout: 'in-out', element: 'f16', ranks: [4, 2] }, kernels, 'swap');
  await runCase({ name: 'bf16 out-in 12x10 r1..r4 (two passes)', rows: 12, cols: 10, layout: 'out-in', element: 'bf16', ranks: [1, 2, 3, 4] }, kernels, 'rebuild');
  await runCase({ name: 'f16 in-out 8x8 no terms (copy of pristine)', rows: 8, cols: 8, layout: 'in-out', element: 'f16', ranks: [] }, kernels, 'rebuild');
  // W whose rows start on a word (f32, or an even row length) takes the 8 x 8 tiled entry: rows and
  // columns that are not multiples of 8, fewer than 8 of either, chunks that cut rows, one row.
  await runCase({ name: 'f32 out-in 13x11 r3+r5 (tiled, odd columns)', rows: 13, cols: 11, layout: 'out-in', element: 'f32', ranks: [3, 5] }, kernels, 'merge');
  await runCase({ name: 'bf16 in-out 9x6 r2 (tiled, one partial column block)', rows: 9, cols: 6, layout: 'in-out', element: 'bf16', ranks: [2] }, kernels, 'merge');
  await runCase({ name: 'f16 out-in 3x26 r2->r1 (tiled, fewer rows than a tile)', rows: 3, cols: 26, layout: 'out-in', element: 'f16', ranks: [2, 1] }, kernels, 'swap');
  await runCase({ name: 'f32 in-out 23x19 r256 (tiled)', rows: 23, cols: 19, layout: 'in-out', element: 'f32', ranks: [256] }, kernels, 'rebuild');
  await runCase({ name: 'f32 out-in 21x19 r3 (tiled, chunks cut rows and tiles)', rows: 21, cols: 19, layout: 'out-in', element: 'f32', ranks: [3] }, chunked, 'merge');
  await runCase({ name: 'f32 in-out 67x132 r3+r2 (tiled)', rows: 67, cols: 132, layout: 'in-out', element: 'f32', ranks: [3, 2] }, kernels, 'merge');
  await runCase({ name: 'f16 out-in 33x12 r1 (tiled)', rows: 33, cols: 12, layout: 'out-in', element: 'f16', ranks: [1] }, kernels, 'merge');
  await runCase({ name: 'bf16 in-out 1x4 r2 (tiled)', rows: 1, cols: 4, layout: 'in-out', element: 'bf16', ranks: [2] }, kernels, 'merge');
  await runCase({ name: 'f32 out-in 45x36 r4 (tiled)', rows: 45, cols: 36, layout: 'out-in', element: 'f32', ranks: [4] }, chunked, 'merge');
  await runCase({ name: 'f16 in-out 45x36 r2->r3 (tiled)', rows: 45, cols: 36, layout: 'in-out', element: 'f16', ranks: [2, 3] }, chunked, 'swap');
  await runCase({ name: 'bf16 out-in 19x20 r2+r1+r3+r1 (tiled, two passes)', rows: 19, cols: 20, layout: 'out-in', element: 'bf16', ranks: [2, 1, 3, 1] }, chunked, 'rebuild');
  await runCase({ name: 'f16 in-out 7x300 r256 (tiled)', rows: 7, cols: 300, layout: 'in-out', element: 'f16', ranks: [256] }, kernels, 'unmerge');

  // W with a multiple of 8 columns at a 32-byte aligned offset takes the band entries (8 columns of
  // 32 rows per invocation, up to three slots of 8 k's): rows past a band, one term filling several
  // slots, three terms, both layouts, chunks that cut rows, a rebuild with no terms; past three
  // slots the tiled entry takes over.
  await runCase({ name: 'f32 in-out 37x24 r3 (band)', rows: 37, cols: 24, layout: 'in-out', element: 'f32', ranks: [3] }, kernels, 'merge');
  await runCase({ name: 'f16 out-in 70x16 r8->r8 (band, two slots)', rows: 70, cols: 16, layout: 'out-in', element: 'f16', ranks: [8, 8] }, kernels, 'swap');
  await runCase({ name: 'bf16 in-out 33x40 r20 (band, one term in three slots)', rows: 33, cols: 40, layout: 'in-out', element: 'bf16', ranks: [20] }, kernels, 'merge');
  await runCase({ name: 'f32 out-in 9x8 r9 (band, slots of 8 + 1)', rows: 9, cols: 8, layout: 'out-in', element: 'f32', ranks: [9] }, kernels, 'rebuild');
  await runCase({ name: 'f16 in-out 65x32 r3+r2+r1 (band, three terms)', rows: 65, cols: 32, layout: 'in-out', element: 'f16', ranks: [3, 2, 1] }, kernels, 'merge');
  await runCase({ name: 'bf16 out-in 41x56 r4 (band, chunks cut rows)', rows: 41, cols: 56, layout: 'out-in', element: 'bf16', ranks: [4] }, chunked, 'unmerge');
  await runCase({ name: 'f32 in-out 30x40 r3 (band, chunks cut rows)', rows: 30, cols: 40, layout: 'in-out', element: 'f32', ranks: [3] }, chunked, 'merge');
  await runCase({ name: 'f32 in-out 50x48 r8->r16 (band, three slots)', rows: 50, cols: 48, layout: 'in-out', element: 'f32', ranks: [8, 16] }, kernels, 'swap');
  await runCase({ name: 'f16 out-in 24x8 no terms (band, copy of pristine)', rows: 24, cols: 8, layout: 'out-in', element: 'f16', ranks: [] }, chunked, 'rebuild');
  await runCase({ name: 'f32 out-in 3x8 r25 (four slots: tiled)', rows: 3, cols: 8, layout: 'out-in', element: 'f32', ranks: [25] }, kernels, 'merge');
  // Kernels prepared for f16 only compile the f32 pipelines on their first f32 call.
  const f16Only = await WeightKernels.prepare(device, { elements: ['f16'] });
  await runCase({ name: 'f32 in-out 16x16 r2 (prepared for f16 only)', rows: 16, cols: 16, layout: 'in-out', element: 'f32', ranks: [2] }, f16Only, 'merge');
  await runCase({ name: 'f32 in-out 16x12 r2 (prepared for f16 only, tiled)', rows: 16, cols: 12, layout: 'in-out', element: 'f32', ranks: [2] }, f16Only, 'merge');

  // Rounding: exact halfway values go to the even neighbour, overflow goes to Inf (W = 0, A = the values, B = 1).
  for (const [element, ulp, max] of [['f16', 2 ** -10, 65504], ['bf16', 2 ** -7, 3.3895313892515355e38]] as const) {
    // 16 columns: the band entries' branch-free rounding (and its subnormal, overflow and NaN edges).
    const values = new Float32Array([
      1 + ulp / 2, 1 + (3 * ulp) / 2, -(1 + ulp / 2), 2 + ulp, 1 + ulp / 2 + ulp / 64, max * 2, -max * 2, 0.75 * ulp * 2 ** -14,
      65519, 65520, 2 ** -25, 3 * 2 ** -25, 2 ** -14 - 2 ** -25, -(2 ** -24), 1e-10, Number.NaN,
    ]);
    const cols = values.length;
    const wBuffer = track(upload(device, new Uint8Array(cols * 2), `${element} ties W`));
    const factors = track(upload(device, new Uint8Array([...new Uint8Array(values.buffer), ...new Uint8Array(align - ((cols * 4) % align)), ...new Uint8Array(new Float32Array([1]).buffer)]), `${element} ties factors`));
    const bOffset = Math.ceil((cols * 4) / align) * align;
    const view: WeightView = { binding: { buffer: wBuffer, offset: 0, size: cols * 2 }, rows: 1, cols, layout: 'out-in', element };
    await kernels.merge(view, [{ a: { buffer: factors, offset: 0, size: cols * 4 }, b: { buffer: factors, offset: bOffset, size: 4 }, rank: 1, scale: 1 }]);
    const want = applyTermsRef({ w: new Uint8Array(cols * 2), rows: 1, cols, layout: 'out-in', element, terms: [{ a: values, b: new Float32Array([1]), rank: 1, scale: 1 }] });
    const got = (await readBufferBytes(device, wBuffer)).subarray(0, cols * 2);
    const { violations, maxAbs } = countOff(got, want, element, cols, 0);
    results.push({ name: `rounds ${element} ties to even, overflow to Inf`, elements: cols, maxAbs, violations });
  }

  // inspect: planted NaN/Inf, against a reference.
  for (const [element, k] of [['f32', kernels], ['f16', kernels], ['bf16', chunked]] as const) {
    const rows = 37;
    const cols = 23;
    const n = rows * cols;
    const words = weightWords({ rows, cols, element });
    const w = encodeWeights(seededUniform(seed++, n, 3), element, words);
    const r = encodeWeights(seededUniform(seed++, n, 3), element, words);
    const wv = new DataView(w.buffer);
    const planted = element === 'f32' ? [[3, 0x7fc00000], [400, 0x7f800000]] : [[3, 0x7e00], [400, 0x7c00]];
    for (const [i, bits] of planted) {
      if (element === 'f32') wv.setUint32(i! * 4, bits!, true);
      else wv.setUint16(i! * 2, element === 'bf16' ? (bits === 0x7e00 ? 0x7fc0 : 0x7f80) : bits!, true);
    }
    const wBuffer = track(upload(device, w, 'inspect W'));
    const rBuffer = track(upload(device, r, 'inspect ref'));
    const view: WeightView = { binding: { buffer: wBuffer, offset: 0, size: words * 4 }, rows, cols, layout: 'out-in', element };
    const got = await k.inspect(view, { buffer: rBuffer, offset: 0, size: words * 4 });
    const want = inspectRef(w, element, n, r);
    const alone = await k.inspect(view);
    const off =
      Number(got.nonFinite !== want.nonFinite) +
      Number(got.referenceNonFinite !== want.referenceNonFinite) +
      Number(!(Math.abs(got.maxAbsDiff - want.maxAbsDiff) <= 1e-6 * want.maxAbsDiff)) +
      Number(!(Math.abs(got.cosine - want.cosine) <= 1e-4)) +
      Number(alone.nonFinite !== 2 || !Number.isNaN(alone.cosine));
    results.push({ name: `inspect ${element} 37x23 with NaN and Inf${k === chunked ? ' chunked' : ''}`, elements: n, maxAbs: Math.abs(got.cosine - want.cosine), violations: off });
  }

  // DoRA: the norms of W + ΔW per output feature, then the scaling, against applyDoraRef (whose
  // norms are f64, as the CPU executors' are; the kernel's f32 norms move f32 results a few ulps).
  const zeroFeatureOf = (c: Case, initial: Uint8Array, terms: ReturnType<typeof makeTerms>) => {
    const f = c.zeroFeature;
    if (f === undefined) return;
    const wv = new DataView(initial.buffer, initial.byteOffset, initial.byteLength);
    const bytes = c.element === 'f32' ? 4 : 2;
    for (let r = 0; r < c.rows; r++) {
      for (let col = 0; col < c.cols; col++) {
        if ((c.layout === 'out-in' ? r : col) !== f) continue;
        const e = r * c.cols + col;
        if (bytes === 4) wv.setUint32(e * 4, 0, true);
        else wv.setUint16(e * 2, 0, true);
      }
    }
    // B's row for the feature (B [out, rank] for out-in, [cols, rank] for in-out) makes its delta 0.
    for (const t of terms) t.ref.b.fill(0, f * t.ref.rank, (f + 1) * t.ref.rank);
  };
  const runDora = async (c: Case, k: WeightKernels, op: 'mergeDora' | 'rebuildDora') => {
    const n = c.rows * c.cols;
    const words = weightWords(c);
    const features = doraFeatures(c);
    const initial = encodeWeights(seededUniform(seed++, n, 2), c.element, words);
    const pristine = op === 'rebuildDora' ? encodeWeights(seededUniform(seed++, n, 2), c.element, words) : undefined;
    const terms = makeTerms(c);
    zeroFeatureOf(c, pristine ?? initial, terms);
    // Re-upload B after zeroing a feature's row (makeTerms uploaded the values before).
    if (c.zeroFeature !== undefined) for (const t of terms) device.queue.writeBuffer(t.gpu.b.buffer, t.gpu.b.offset ?? 0, new Float32Array(t.ref.b));
    const magnitude = Float32Array.from(seededUniform(seed++, features, 1), (x) => 0.25 + Math.abs(x));
    const wBuffer = track(upload(device, initial, `${c.name} W`, align));
    const mBuffer = track(upload(device, new Uint8Array(magnitude.buffer), `${c.name} m`));
    const view: WeightView = { binding: { buffer: wBuffer, offset: align, size: words * 4 }, rows: c.rows, cols: c.cols, layout: c.layout, element: c.element };
    const m = { buffer: mBuffer, offset: 0, size: features * 4 };
    if (pristine === undefined) await k.mergeDora(view, terms.map((t) => t.gpu), m);
    else await k.rebuildDora(view, { buffer: track(upload(device, pristine, `${c.name} pristine`)), offset: 0, size: words * 4 }, terms.map((t) => t.gpu), m);
    const want = applyDoraRef({ w: initial, pristine, ...c, terms: terms.map((t) => t.ref), magnitude });
    const all = await readBufferBytes(device, wBuffer);
    const got = all.subarray(align, align + words * 4);
    // f32: the kernel's f32 norm, sqrt and division against the twin's f64 ones (and FMA in ΔW) stay
    // within a few ulps (3 seen on SwiftShader); 16-bit: that can flip one rounding.
    const { violations, maxAbs } = countOff(got, want, c.element, n, c.element === 'f32' ? 16 : 1);
    let outside = 0;
    for (let i = 0; i < all.length; i++) if ((i < align || i >= align + words * 4) && all[i] !== SENTINEL) outside++;
    // The zero-norm feature is NaN everywhere, as PEFT's m / 0 · 0 is (and as the twin's is).
    let notNaN = 0;
    if (c.zeroFeature !== undefined) {
      const gv = new DataView(got.buffer, got.byteOffset, got.byteLength);
      for (let e = 0; e < n; e++) {
        if ((c.layout === 'out-in' ? Math.floor(e / c.cols) : e % c.cols) !== c.zeroFeature) continue;
        if (!isNaNBits(c.element === 'f32' ? gv.getUint32(e * 4, true) : gv.getUint16(e * 2, true), c.element)) notNaN++;
      }
    }
    results.push({ name: `${op} ${c.name}${k === chunked || k === chunkedWide ? ' chunked' : ''}`, elements: n, maxAbs, violations: violations + outside + notNaN });
  };
  const doraCases: Array<[Case, WeightKernels, 'mergeDora' | 'rebuildDora']> = [
    [{ name: 'f32 out-in 5x7 r1', rows: 5, cols: 7, layout: 'out-in', element: 'f32', ranks: [1] }, kernels, 'mergeDora'],
    [{ name: 'f32 in-out 600x3 r3+r2 (three segments)', rows: 600, cols: 3, layout: 'in-out', element: 'f32', ranks: [3, 2] }, kernels, 'mergeDora'],
    [{ name: 'f16 in-out 33x9 (odd count) r2', rows: 33, cols: 9, layout: 'in-out', element: 'f16', ranks: [2] }, kernels, 'mergeDora'],
    [{ name: 'bf16 out-in 1x301 (one row) r256', rows: 1, cols: 301, layout: 'out-in', element: 'bf16', ranks: [256] }, kernels, 'mergeDora'],
    [{ name: 'f16 in-out 301x1 (one column, odd) r1', rows: 301, cols: 1, layout: 'in-out', element: 'f16', ranks: [1] }, kernels, 'mergeDora'],
    [{ name: 'f16 out-in 17x300 r256 (two segments)', rows: 17, cols: 300, layout: 'out-in', element: 'f16', ranks: [256] }, kernels, 'mergeDora'],
    [{ name: 'bf16 in-out 67x130 r3+r2', rows: 67, cols: 130, layout: 'in-out', element: 'bf16', ranks: [3, 2] }, kernels, 'rebuildDora'],
    [{ name: 'f32 out-in 9x11 r2 with a zero-norm row', rows: 9, cols: 11, layout: 'out-in', element: 'f32', ranks: [2], zeroFeature: 4 }, kernels, 'mergeDora'],
    [{ name: 'bf16 in-out 13x7 (odd) r1 with a zero-norm column', rows: 13, cols: 7, layout: 'in-out', element: 'bf16', ranks: [1], zeroFeature: 6 }, kernels, 'mergeDora'],
    [{ name: 'f16 out-in 6x5 no terms (m / ‖W‖)', rows: 6, cols: 5, layout: 'out-in', element: 'f16', ranks: [] }, kernels, 'mergeDora'],
    [{ name: 'f32 in-out 40x33 r2', rows: 40, cols: 33, layout: 'in-out', element: 'f32', ranks: [2] }, chunked, 'mergeDora'],
    [{ name: 'f16 out-in 31x33 (odd) r3', rows: 31, cols: 33, layout: 'out-in', element: 'f16', ranks: [3] }, chunked, 'rebuildDora'],
    [{ name: 'bf16 in-out 500x5 r1+r1 (segments across chunks)', rows: 500, cols: 5, layout: 'in-out', element: 'bf16', ranks: [1, 1] }, chunkedWide, 'mergeDora'],
    [{ name: 'f32 in-out 500x3 r1 (segments across chunks)', rows: 500, cols: 3, layout: 'in-out', element: 'f32', ranks: [1] }, chunkedWide, 'rebuildDora'],
    [{ name: 'f16 out-in 3x501 (odd) r1 with a zero-norm row', rows: 3, cols: 501, layout: 'out-in', element: 'f16', ranks: [1], zeroFeature: 1 }, chunkedWide, 'mergeDora'],
    [{ name: 'f32 out-in 0x5 (empty)', rows: 0, cols: 5, layout: 'out-in', element: 'f32', ranks: [2] }, kernels, 'mergeDora'],
  ];
  for (const [c, k, op] of doraCases) await runDora(c, k, op);

  // Refusals by code, before anything is recorded.
  const wBuffer = track(upload(device, new Uint8Array(64 * 4), 'refusal W', align));
  const good: WeightView = { binding: { buffer: wBuffer, offset: align, size: 64 * 4 }, rows: 8, cols: 8, layout: 'out-in', element: 'f32' };
  const factors = track(upload(device, new Uint8Array(8 * 8 * 4), 'refusal factors'));
  const term: LoraFactors = { a: { buffer: factors, offset: 0, size: 32 }, b: { buffer: factors, offset: 0, size: 32 }, rank: 1, scale: 1 };
  const refusals: Array<[string, string, () => Promise<unknown>]> = [
    ['misaligned W offset', 'BINDING_MISALIGNED', () => kernels.merge({ ...good, binding: { ...good.binding, offset: 4 } }, [term])],
    ['W binding too small', 'BINDING_TOO_SMALL', () => kernels.merge({ ...good, binding: { ...good.binding, size: 60 * 4 } }, [term])],
    ['W past the end of its buffer', 'BINDING_TOO_SMALL', () => kernels.merge({ ...good, binding: { buffer: wBuffer, offset: align, size: wBuffer.size } }, [term])],
    ['A in the buffer of W', 'BUFFER_CONFLICT', () => kernels.merge(good, [{ ...term, a: { buffer: wBuffer, offset: 0, size: 32 } }])],
    ['NaN scale', 'SCALE_INVALID', () => kernels.merge(good, [{ ...term, scale: Number.NaN }])],
    ['rank 0', 'WEIGHT_SHAPE_INVALID', () => kernels.merge(good, [{ ...term, rank: 0 }])],
    ['A larger than one binding', 'BINDING_TOO_LARGE', () => chunked.merge({ ...good, rows: 8, cols: 64 * 8, binding: { buffer: track(upload(device, new Uint8Array(8 * 512 * 4), 'wide W')), offset: 0, size: 8 * 512 * 4 } }, [{ ...term, a: { buffer: track(upload(device, new Uint8Array(512 * 4), 'wide A')), offset: 0, size: 512 * 4 } }])],
    ['pristine in the buffer of W', 'BINDING_OVERLAP', () => kernels.rebuild(good, good.binding, [term])],
    ['a DoRA magnitude of the columns for an out-in W', 'MAGNITUDE_SIZE', () => kernels.mergeDora({ ...good, cols: 7, binding: { ...good.binding, size: 56 * 4 } }, [term], { buffer: factors, offset: 0, size: 7 * 4 })],
    ['a DoRA magnitude longer than the features', 'MAGNITUDE_SIZE', () => kernels.mergeDora(good, [term], { buffer: factors, offset: 0, size: 9 * 4 })],
    ['a DoRA magnitude past the end of its buffer', 'BINDING_TOO_SMALL', () => kernels.mergeDora(good, [term], { buffer: track(device.createBuffer({ label: 'short m', size: align + 16, usage: GPUBufferUsage.STORAGE })), offset: align })],
    ['three DoRA terms', 'TOO_MANY_TERMS', () => kernels.mergeDora(good, [term, term, term], { buffer: factors, offset: 0, size: 32 })],
    ['a DoRA B in the buffer of W', 'BUFFER_CONFLICT', () => kernels.mergeDora(good, [{ ...term, b: { buffer: wBuffer, offset: 0, size: 32 } }], { buffer: factors, offset: 0, size: 32 })],
    ['a DoRA pristine in the buffer of W', 'BINDING_OVERLAP', () => kernels.rebuildDora(good, good.binding, [term], { buffer: factors, offset: 0, size: 32 })],
    ['a DoRA magnitude without STORAGE', 'BUFFER_USAGE', () => kernels.mergeDora(good, [term], { buffer: track(device.createBuffer({ label: 'uniform m', size: 32, usage: GPUBufferUsage.UNIFORM })), offset: 0, size: 32 })],
  ];
  for (const [name, code, call] of refusals) {
    let got = 'no error';
    try {
      await call();
    } catch (error) {
      got = error instanceof KernelError ? error.code : `${(error as Error).name}: ${(error as Error).message}`;
    }
    results.push({ name: `refuses ${name} (${code}${got === code ? '' : `, got ${got}`})`, elements: 1, maxAbs: 0, violations: got === code ? 0 : 1 });
  }
  for (const buffer of created) buffer.destroy();
  kernels.destroy();
  chunked.destroy();
  chunkedWide.destroy();
  return results;
}
