// LoRA terms applied to a weight matrix that lives in the app's buffer, in place:
//
//   W[row, col] = S[row, col] + sum_t scale_t * sum_k L_t[row, k] * R_t[k, col]
//
// where S is W itself or a pristine copy of the base weight that the app keeps (the drift-free
// mode: W is recomputed from the base, so no rounding error builds up over merge/unmerge cycles).
// Up to three terms per dispatch, so a swap (add one adapter, remove another) reads and writes W
// once. `apply_tiled` (at the end) serves every W whose rows start on a word; the word-per-invocation
// entries `apply_in_place` and `apply_from_pristine` serve 16-bit W with rows of an odd length.
//
// W is bound as u32 words whatever its element type, because 16-bit elements can only be read and
// written two at a time without `shader-f16`: a word holds one f32, or two f16/bf16 elements (low
// half first). Each invocation owns whole words, so no two invocations touch the same word. When W
// has an odd number of 16-bit elements the high half of its last word belongs to whatever the app
// stores after W and is written back unchanged. Values are computed in f32 and rounded once, to
// nearest even, like PyTorch's `.to(torch.float16 / torch.bfloat16)`.
//
// The two layouts (see weight-view.ts):
//   out-in  W [out, in] (Linear):                  delta[r, c] = sum_k B[r, k] * A[k, c]
//   in-out  W [in, out] (Conv1D) or [vocab, dim]:  delta[r, c] = sum_k A[k, r] * B[c, k]
// with A [rank, *] and B [*, rank] row-major f32 in their own bindings.
//
// DoRA (`dora_norms`, `dora_factors_of_norms`, `dora_scale`) writes W = m / ||V|| * V for V = S + sum_t delta_t,
// one L2 norm per output feature (a row of an out-in W, a column of an in-out W), all in f32:
//   1. `dora_norms`, once per chunk of W: invocation (segment s, feature f) adds the squares of V
//      over its run of DORA_SEGMENT elements along the other axis, in ascending order, into
//      dora_sums[s * features + f]. A run that crosses a chunk boundary is finished by the next
//      chunk's dispatch (WebGPU orders dispatches), so the sum does not depend on the chunking.
//   2. `dora_factors_of_norms`: per feature, the segments' sums in ascending order, then m / sqrt(sum). A sum
//      of exactly 0 (every element of the feature is 0) is flagged with DORA_ZERO_NORM: WGSL leaves
//      x / 0 undefined, and PEFT's m / 0 * 0 gives NaN, which pass 3 writes explicitly.
//   3. `dora_scale`, once per chunk: V recomputed from the source word (never rounded to W's type
//      in between), times the factor, rounded once. At most two terms: W, the pristine copy, the
//      factors and four factor bindings make seven storage buffers; a third term would make nine,
//      past the eight the kernels ask of a device.
//
// `inspect` reads W (and optionally a reference of the same layout) and writes, per workgroup, the
// count of non-finite elements of each, the largest |W - reference| over pairs that are both finite,
// and the partial sums W·ref, W·W, ref·ref (f32) that the host adds up for a cosine.

struct Params {
  rows: u32,
  cols: u32,
  in_out: u32,        // 0: out-in, 1: in-out
  element: u32,       // 0: f32, 1: f16, 2: bf16
  word_start: u32,    // first word of this chunk, counted from W's first word
  word_count: u32,    // words in this chunk
  elements: u32,      // rows * cols
  groups_x: u32,      // workgroups along x of the (possibly folded) dispatch
  terms: u32,         // 0..3
  has_reference: u32, // inspect only
  rank0: u32,
  rank1: u32,
  rank2: u32,
  scale0: f32,
  scale1: f32,
  scale2: f32,
  features: u32,      // DoRA: output features (rows for out-in, cols for in-out)
  segments: u32,      // DoRA: runs of DORA_SEGMENT elements along the other axis
  from_pristine: u32, // DoRA: 1 when the source words are the pristine copy
  pad: u32,
  tile_row0: u32,     // tiled and band entries: first W row of this chunk's tiles or bands
  tile_count: u32,    // tiled and band entries: tiles or (column group, band) pairs in this chunk
  band_first0: u32,   // band entries: each slot's first k of its term (rank0..2: the term's rank)
  band_first1: u32,
  band_first2: u32,
  band_count0: u32,   // band entries: each slot's number of k's, 1..8
  band_count1: u32,
  band_count2: u32,
  band_last0: u32,    // band entries: 1 when the slot holds its term's last k's
  band_last1: u32,
  band_last2: u32,
  pad3: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> w: array<u32>;
@group(0) @binding(1) var<storage, read> w_read: array<u32>;
@group(0) @binding(2) var<storage, read> a0: array<f32>;
@group(0) @binding(3) var<storage, read> b0: array<f32>;
@group(0) @binding(4) var<storage, read> a1: array<f32>;
@group(0) @binding(5) var<storage, read> b1: array<f32>;
@group(0) @binding(6) var<storage, read> a2: array<f32>;
@group(0) @binding(7) var<storage, read> b2: array<f32>;
@group(0) @binding(8) var<storage, read> pristine: array<u32>;
@group(0) @binding(2) var<storage, read> reference: array<u32>;
@group(0) @binding(3) var<storage, read_write> records: array<u32>;
@group(0) @binding(9) var<storage, read_write> dora_sums: array<f32>;
@group(0) @binding(9) var<storage, read> dora_sums_read: array<f32>;
@group(0) @binding(10) var<storage, read> magnitude: array<f32>;
@group(0) @binding(11) var<storage, read_write> dora_factors: array<u32>;
@group(0) @binding(11) var<storage, read> dora_factors_read: array<u32>;
@group(0) @binding(1) var<storage, read_write> w_x4: array<vec4u>;
@group(0) @binding(8) var<storage, read> pristine_x4: array<vec4u>;

override WG: u32 = 64;
// inspect: invocations stride over the chunk with this many workgroups.
override INSPECT_GROUPS: u32 = 256;
// DoRA: elements one invocation of `dora_norms` sums along the other axis.
override DORA_SEGMENT: u32 = 256;
// DoRA: the factor of a feature whose norm is 0 (a quiet NaN's bits; m / 0 * 0 is NaN in PEFT too).
const DORA_ZERO_NORM: u32 = 0x7fc00000u;

fn f16_to_f32(h: u32) -> f32 {
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0x1fu) {
    return bitcast<f32>(sign | 0x7f800000u | (m << 13u));
  }
  if (e == 0u) {
    // Subnormal half: m * 2^-24 is exact in f32.
    let v = f32(m) * 5.9604644775390625e-8;
    return select(v, -v, sign != 0u);
  }
  return bitcast<f32>(sign | ((e + 112u) << 23u) | (m << 13u));
}

fn f32_to_f16(v: f32) -> u32 {
  let x = bitcast<u32>(v);
  let sign = (x >> 16u) & 0x8000u;
  let exp = (x >> 23u) & 0xffu;
  let mant = x & 0x7fffffu;
  if (exp == 0xffu) {
    return select(sign | 0x7e00u | (mant >> 13u), sign | 0x7c00u, mant == 0u);
  }
  let e = i32(exp) - 127;
  if (e >= 16) {
    return sign | 0x7c00u;
  }
  if (e >= -14) {
    var h = (u32(e + 15) << 10u) | (mant >> 13u);
    let rest = mant & 0x1fffu;
    // A carry out of the mantissa bumps the exponent, up to 0x7c00 (Inf), as it should.
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u) == 1u)) {
      h = h + 1u;
    }
    return sign | h;
  }
  if (exp == 0u) {
    return sign;
  }
  let shift = u32(-e - 1);
  if (shift > 24u) {
    return sign;
  }
  let m = mant | 0x800000u;
  var h = m >> shift;
  let rest = m & ((1u << shift) - 1u);
  let half = 1u << (shift - 1u);
  if (rest > half || (rest == half && (h & 1u) == 1u)) {
    h = h + 1u;
  }
  return sign | h;
}

fn f32_to_bf16(v: f32) -> u32 {
  let x = bitcast<u32>(v);
  if ((x & 0x7f800000u) == 0x7f800000u && (x & 0x7fffffu) != 0u) {
    return ((x >> 16u) | 0x40u) & 0xffffu;
  }
  // Adding 0x7fff plus the lowest kept bit rounds ties to even; a carry into the exponent gives Inf.
  return ((x + 0x7fffu + ((x >> 16u) & 1u)) >> 16u) & 0xffffu;
}

fn decode(half_bits: u32) -> f32 {
  if (params.element == 1u) {
    return f16_to_f32(half_bits);
  }
  return bitcast<f32>(half_bits << 16u);
}

fn encode(v: f32) -> u32 {
  if (params.element == 1u) {
    return f32_to_f16(v);
  }
  return f32_to_bf16(v);
}

// One term's delta at (row, col). The three copies differ only in the bindings they read: WGSL has
// no portable way to pass a storage array to a function, and an entry point that calls only the
// first two does not bind the third.
fn term0_delta(row: u32, col: u32) -> f32 {
  let io = params.in_out == 1u;
  var acc = 0.0;
  let r = params.rank0;
  for (var k = 0u; k < r; k++) {
    if (io) { acc += a0[k * params.rows + row] * b0[col * r + k]; } else { acc += b0[row * r + k] * a0[k * params.cols + col]; }
  }
  return params.scale0 * acc;
}

fn term1_delta(row: u32, col: u32) -> f32 {
  let io = params.in_out == 1u;
  var acc = 0.0;
  let r = params.rank1;
  for (var k = 0u; k < r; k++) {
    if (io) { acc += a1[k * params.rows + row] * b1[col * r + k]; } else { acc += b1[row * r + k] * a1[k * params.cols + col]; }
  }
  return params.scale1 * acc;
}

fn term2_delta(row: u32, col: u32) -> f32 {
  let io = params.in_out == 1u;
  var acc = 0.0;
  let r = params.rank2;
  for (var k = 0u; k < r; k++) {
    if (io) { acc += a2[k * params.rows + row] * b2[col * r + k]; } else { acc += b2[row * r + k] * a2[k * params.cols + col]; }
  }
  return params.scale2 * acc;
}

fn term_delta(t: u32, row: u32, col: u32) -> f32 {
  if (t == 0u) {
    return term0_delta(row, col);
  }
  if (t == 1u) {
    return term1_delta(row, col);
  }
  return term2_delta(row, col);
}

fn delta(e: u32) -> f32 {
  let row = e / params.cols;
  let col = e % params.cols;
  var d = 0.0;
  for (var t = 0u; t < params.terms; t++) {
    d += term_delta(t, row, col);
  }
  return d;
}

// The new word for W's word `word` (counted from W's start) from the source word `src` and W's
// current word `cur` (for a high half outside W, kept unchanged).
fn apply_word(word: u32, src: u32, cur: u32) -> u32 {
  if (params.element == 0u) {
    return bitcast<u32>(bitcast<f32>(src) + delta(word));
  }
  let e = word * 2u;
  let lo = encode(decode(src & 0xffffu) + delta(e));
  var hi = cur >> 16u;
  if (e + 1u < params.elements) {
    hi = encode(decode(src >> 16u) + delta(e + 1u));
  }
  return lo | (hi << 16u);
}

fn word_index(wid: vec3u, lid: u32) -> u32 {
  return (wid.y * params.groups_x + wid.x) * WG + lid;
}

@compute @workgroup_size(WG)
fn apply_in_place(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = word_index(wid, lid);
  if (i >= params.word_count) {
    return;
  }
  let cur = w[i];
  w[i] = apply_word(params.word_start + i, cur, cur);
}

@compute @workgroup_size(WG)
fn apply_from_pristine(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = word_index(wid, lid);
  if (i >= params.word_count) {
    return;
  }
  w[i] = apply_word(params.word_start + i, pristine[i], w[i]);
}

// DoRA's delta: the first two terms, added in the order `delta` adds them.
fn dora_delta(e: u32) -> f32 {
  let row = e / params.cols;
  let col = e % params.cols;
  var d = 0.0;
  if (params.terms > 0u) {
    d += term0_delta(row, col);
  }
  if (params.terms > 1u) {
    d += term1_delta(row, col);
  }
  return d;
}

// The source word `i` of this chunk: W's own, or the pristine copy's for a rebuild.
fn dora_source(i: u32) -> u32 {
  if (params.from_pristine == 1u) {
    return pristine[i];
  }
  return w_read[i];
}

// V at element e (counted from W's start), which lies in this chunk.
fn dora_value(e: u32) -> f32 {
  if (params.element == 0u) {
    return bitcast<f32>(dora_source(e - params.word_start)) + dora_delta(e);
  }
  let src = dora_source((e >> 1u) - params.word_start);
  return decode((src >> (16u * (e & 1u))) & 0xffffu) + dora_delta(e);
}

fn flat_index(wid: vec3u, groups: vec3u, lid: u32) -> u32 {
  return (wid.y * groups.x + wid.x) * WG + lid;
}

@compute @workgroup_size(WG)
fn dora_norms(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, groups, lid);
  let features = params.features;
  if (i >= params.segments * features) {
    return;
  }
  let s = i / features;
  let f = i % features;
  let other = select(params.cols, params.rows, params.in_out == 1u);
  let per_word = select(2u, 1u, params.element == 0u);
  // The elements of W in this chunk: [e0, e1).
  let e0 = params.word_start * per_word;
  let e1 = min((params.word_start + params.word_count) * per_word, params.elements);
  // This invocation's run along the other axis, cut to the elements in the chunk.
  var lo = s * DORA_SEGMENT;
  var hi = min(lo + DORA_SEGMENT, other);
  var base = 0u;
  var stride = 1u;
  if (params.in_out == 1u) {
    // Feature f is column f: element o * cols + f.
    base = f;
    stride = params.cols;
    lo = max(lo, select(0u, (e0 - f + params.cols - 1u) / params.cols, e0 > f));
    hi = min(hi, select(0u, (e1 - f + params.cols - 1u) / params.cols, e1 > f));
  } else {
    // Feature f is row f: element f * cols + o.
    base = f * params.cols;
    lo = max(lo, select(0u, e0 - base, e0 > base));
    hi = min(hi, select(0u, e1 - base, e1 > base));
  }
  if (lo >= hi) {
    return;
  }
  var acc = dora_sums[i];
  for (var o = lo; o < hi; o++) {
    let v = dora_value(base + o * stride);
    acc += v * v;
  }
  dora_sums[i] = acc;
}

@compute @workgroup_size(WG)
fn dora_factors_of_norms(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u, @builtin(local_invocation_index) lid: u32) {
  let f = flat_index(wid, groups, lid);
  if (f >= params.features) {
    return;
  }
  var total = 0.0;
  for (var s = 0u; s < params.segments; s++) {
    total += dora_sums_read[s * params.features + f];
  }
  if (total == 0.0) {
    dora_factors[f] = DORA_ZERO_NORM;
    return;
  }
  dora_factors[f] = bitcast<u32>(magnitude[f] / sqrt(total));
}

fn dora_feature(e: u32) -> u32 {
  if (params.in_out == 1u) {
    return e % params.cols;
  }
  return e / params.cols;
}

// Element e's new value as the bits of W's element type (the low 16 bits for f16/bf16).
fn dora_scaled(e: u32, v: f32) -> u32 {
  let factor = dora_factors_read[dora_feature(e)];
  if (factor == DORA_ZERO_NORM) {
    if (params.element == 0u) {
      return DORA_ZERO_NORM;
    }
    return select(0x7fc0u, 0x7e00u, params.element == 1u);
  }
  let scaled = bitcast<f32>(factor) * v;
  if (params.element == 0u) {
    return bitcast<u32>(scaled);
  }
  return encode(scaled);
}

@compute @workgroup_size(WG)
fn dora_scale(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = word_index(wid, lid);
  if (i >= params.word_count) {
    return;
  }
  let cur = w[i];
  var src = cur;
  if (params.from_pristine == 1u) {
    src = pristine[i];
  }
  let word = params.word_start + i;
  if (params.element == 0u) {
    w[i] = dora_scaled(word, bitcast<f32>(src) + dora_delta(word));
    return;
  }
  let e = word * 2u;
  let lo = dora_scaled(e, decode(src & 0xffffu) + dora_delta(e));
  var hi = cur >> 16u;
  if (e + 1u < params.elements) {
    hi = dora_scaled(e + 1u, decode(src >> 16u) + dora_delta(e + 1u));
  }
  w[i] = lo | (hi << 16u);
}

var<workgroup> wg_nonfinite: array<u32, WG>;
var<workgroup> wg_ref_nonfinite: array<u32, WG>;
var<workgroup> wg_max: array<f32, WG>;
var<workgroup> wg_dot: array<f32, WG>;
var<workgroup> wg_ww: array<f32, WG>;
var<workgroup> wg_rr: array<f32, WG>;

fn element_value(word: u32, slot: u32) -> f32 {
  if (params.element == 0u) {
    return bitcast<f32>(word);
  }
  return decode((word >> (16u * slot)) & 0xffffu);
}

fn is_finite(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

@compute @workgroup_size(WG)
fn inspect(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  var nonfinite = 0u;
  var ref_nonfinite = 0u;
  var max_diff = 0.0;
  var dot = 0.0;
  var ww = 0.0;
  var rr = 0.0;
  let per_word = select(2u, 1u, params.element == 0u);
  for (var i = wid.x * WG + lid; i < params.word_count; i += INSPECT_GROUPS * WG) {
    let word = w_read[i];
    var ref_word = 0u;
    if (params.has_reference == 1u) {
      ref_word = reference[i];
    }
    for (var slot = 0u; slot < per_word; slot++) {
      if ((params.word_start + i) * per_word + slot >= params.elements) {
        break;
      }
      let v = element_value(word, slot);
      let v_ok = is_finite(v);
      if (!v_ok) {
        nonfinite += 1u;
      }
      if (params.has_reference == 1u) {
        let r = element_value(ref_word, slot);
        let r_ok = is_finite(r);
        if (!r_ok) {
          ref_nonfinite += 1u;
        }
        if (v_ok && r_ok) {
          max_diff = max(max_diff, abs(v - r));
          dot += v * r;
          ww += v * v;
          rr += r * r;
        }
      } else if (v_ok) {
        ww += v * v;
      }
    }
  }
  wg_nonfinite[lid] = nonfinite;
  wg_ref_nonfinite[lid] = ref_nonfinite;
  wg_max[lid] = max_diff;
  wg_dot[lid] = dot;
  wg_ww[lid] = ww;
  wg_rr[lid] = rr;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) {
      wg_nonfinite[lid] += wg_nonfinite[lid + stride];
      wg_ref_nonfinite[lid] += wg_ref_nonfinite[lid + stride];
      wg_max[lid] = max(wg_max[lid], wg_max[lid + stride]);
      wg_dot[lid] += wg_dot[lid + stride];
      wg_ww[lid] += wg_ww[lid + stride];
      wg_rr[lid] += wg_rr[lid + stride];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let base = wid.x * 8u;
    records[base] = wg_nonfinite[0];
    records[base + 1u] = wg_ref_nonfinite[0];
    records[base + 2u] = bitcast<u32>(wg_max[0]);
    records[base + 3u] = bitcast<u32>(wg_dot[0]);
    records[base + 4u] = bitcast<u32>(wg_ww[0]);
    records[base + 5u] = bitcast<u32>(wg_rr[0]);
  }
}

// ---- The tiled entry, for every W whose rows start on a word (f32, or 16-bit with an even number
// of columns; every GPT-2 weight): each invocation owns an 8 x 8 tile of W (8 rows, 8 columns, so 8
// f32 words or 4 words of two 16-bit elements per row).
//
// Why this shape: on SwiftShader (the CPU fallback, and what CI runs) invocations are SIMD lanes of
// a CPU thread and every storage access with a computed index is a per-lane gather or scatter,
// several times dearer than the arithmetic. A k step of the tile reads 8 values of L and 8 of R
// for 64 products, a quarter of a read per product, against one per product for an element per
// invocation; W is read once and written once. Workgroup-memory tiles were tried and lost: their
// barriers are coroutine switches on SwiftShader, costlier than the reads they save. On GPUs the
// 8 + 8 reads per k come from cache and the 64 accumulators stay in registers.
//
// The sums are the word-per-invocation entries' exactly: per term, acc += L[row, k] * R[k, col] for
// k ascending from 0, then delta += scale * acc, terms in order, and S + delta rounded once. Rows
// and columns past the edge of W are clamped for loading (their products are never written), so
// the k loop has no branches. A tile's words outside the current chunk are left to the chunk that
// holds them.

const TR: u32 = 8u; // rows per tile
const TC: u32 = 8u; // columns per tile

// The tile's accumulators, row j in fields rj (columns 0..3) and qj (columns 4..7). Named fields,
// not an array indexed in a loop: SwiftShader turns a computed index into a private array into a
// memory access per lane.
struct Tile {
  r0: vec4f, q0: vec4f, r1: vec4f, q1: vec4f, r2: vec4f, q2: vec4f, r3: vec4f, q3: vec4f,
  r4: vec4f, q4: vec4f, r5: vec4f, q5: vec4f, r6: vec4f, q6: vec4f, r7: vec4f, q7: vec4f,
}

// acc + l[j] * (c0 | c1) for the tile's 8 rows, l = l0 (rows 0..3) | l1 (rows 4..7).
fn tile_step(acc: Tile, l0: vec4f, l1: vec4f, c0: vec4f, c1: vec4f) -> Tile {
  return Tile(
    acc.r0 + l0.x * c0, acc.q0 + l0.x * c1, acc.r1 + l0.y * c0, acc.q1 + l0.y * c1,
    acc.r2 + l0.z * c0, acc.q2 + l0.z * c1, acc.r3 + l0.w * c0, acc.q3 + l0.w * c1,
    acc.r4 + l1.x * c0, acc.q4 + l1.x * c1, acc.r5 + l1.y * c0, acc.q5 + l1.y * c1,
    acc.r6 + l1.z * c0, acc.q6 + l1.z * c1, acc.r7 + l1.w * c0, acc.q7 + l1.w * c1,
  );
}

// delta + scale * acc, element by element.
fn tile_add_scaled(d: Tile, scale: f32, acc: Tile) -> Tile {
  return Tile(
    d.r0 + scale * acc.r0, d.q0 + scale * acc.q0, d.r1 + scale * acc.r1, d.q1 + scale * acc.q1,
    d.r2 + scale * acc.r2, d.q2 + scale * acc.q2, d.r3 + scale * acc.r3, d.q3 + scale * acc.q3,
    d.r4 + scale * acc.r4, d.q4 + scale * acc.q4, d.r5 + scale * acc.r5, d.q5 + scale * acc.q5,
    d.r6 + scale * acc.r6, d.q6 + scale * acc.q6, d.r7 + scale * acc.r7, d.q7 + scale * acc.q7,
  );
}

// The tile's rows and columns, clamped into W for loading.
struct TileIndex {
  rows0: vec4u,
  rows1: vec4u,
  cols0: vec4u,
  cols1: vec4u,
}

fn tile_index(row0: u32, col0: u32) -> TileIndex {
  let last_row = vec4u(params.rows - 1u);
  let last_col = vec4u(params.cols - 1u);
  let j = vec4u(0u, 1u, 2u, 3u);
  return TileIndex(min(row0 + j, last_row), min(row0 + 4u + j, last_row), min(col0 + j, last_col), min(col0 + 4u + j, last_col));
}

// One term's products for the tile; the three copies differ only in the bindings they read (WGSL
// has no portable way to pass a storage array), and the layout test sits outside the k loop.
fn tile_term0(t: TileIndex) -> Tile {
  var acc = Tile();
  let r = params.rank0;
  if (params.in_out == 1u) {
    // L[row, k] = A[k, row], R[k, col] = B[col, k]
    let c0 = t.cols0 * r;
    let c1 = t.cols1 * r;
    for (var k = 0u; k < r; k++) {
      let base = k * params.rows;
      let l0 = vec4f(a0[base + t.rows0.x], a0[base + t.rows0.y], a0[base + t.rows0.z], a0[base + t.rows0.w]);
      let l1 = vec4f(a0[base + t.rows1.x], a0[base + t.rows1.y], a0[base + t.rows1.z], a0[base + t.rows1.w]);
      let r0 = vec4f(b0[c0.x + k], b0[c0.y + k], b0[c0.z + k], b0[c0.w + k]);
      let r1 = vec4f(b0[c1.x + k], b0[c1.y + k], b0[c1.z + k], b0[c1.w + k]);
      acc = tile_step(acc, l0, l1, r0, r1);
    }
  } else {
    // L[row, k] = B[row, k], R[k, col] = A[k, col]
    let rows0 = t.rows0 * r;
    let rows1 = t.rows1 * r;
    for (var k = 0u; k < r; k++) {
      let base = k * params.cols;
      let l0 = vec4f(b0[rows0.x + k], b0[rows0.y + k], b0[rows0.z + k], b0[rows0.w + k]);
      let l1 = vec4f(b0[rows1.x + k], b0[rows1.y + k], b0[rows1.z + k], b0[rows1.w + k]);
      let r0 = vec4f(a0[base + t.cols0.x], a0[base + t.cols0.y], a0[base + t.cols0.z], a0[base + t.cols0.w]);
      let r1 = vec4f(a0[base + t.cols1.x], a0[base + t.cols1.y], a0[base + t.cols1.z], a0[base + t.cols1.w]);
      acc = tile_step(acc, l0, l1, r0, r1);
    }
  }
  return acc;
}

fn tile_term1(t: TileIndex) -> Tile {
  var acc = Tile();
  let r = params.rank1;
  if (params.in_out == 1u) {
    let c0 = t.cols0 * r;
    let c1 = t.cols1 * r;
    for (var k = 0u; k < r; k++) {
      let base = k * params.rows;
      let l0 = vec4f(a1[base + t.rows0.x], a1[base + t.rows0.y], a1[base + t.rows0.z], a1[base + t.rows0.w]);
      let l1 = vec4f(a1[base + t.rows1.x], a1[base + t.rows1.y], a1[base + t.rows1.z], a1[base + t.rows1.w]);
      let r0 = vec4f(b1[c0.x + k], b1[c0.y + k], b1[c0.z + k], b1[c0.w + k]);
      let r1 = vec4f(b1[c1.x + k], b1[c1.y + k], b1[c1.z + k], b1[c1.w + k]);
      acc = tile_step(acc, l0, l1, r0, r1);
    }
  } else {
    let rows0 = t.rows0 * r;
    let rows1 = t.rows1 * r;
    for (var k = 0u; k < r; k++) {
      let base = k * params.cols;
      let l0 = vec4f(b1[rows0.x + k], b1[rows0.y + k], b1[rows0.z + k], b1[rows0.w + k]);
      let l1 = vec4f(b1[rows1.x + k], b1[rows1.y + k], b1[rows1.z + k], b1[rows1.w + k]);
      let r0 = vec4f(a1[base + t.cols0.x], a1[base + t.cols0.y], a1[base + t.cols0.z], a1[base + t.cols0.w]);
      let r1 = vec4f(a1[base + t.cols1.x], a1[base + t.cols1.y], a1[base + t.cols1.z], a1[base + t.cols1.w]);
      acc = tile_step(acc, l0, l1, r0, r1);
    }
  }
  return acc;
}

fn tile_term2(t: TileIndex) -> Tile {
  var acc = Tile();
  let r = params.rank2;
  if (params.in_out == 1u) {
    let c0 = t.cols0 * r;
    let c1 = t.cols1 * r;
    for (var k = 0u; k < r; k++) {
      let base = k * params.rows;
      let l0 = vec4f(a2[base + t.rows0.x], a2[base + t.rows0.y], a2[base + t.rows0.z], a2[base + t.rows0.w]);
      let l1 = vec4f(a2[base + t.rows1.x], a2[base + t.rows1.y], a2[base + t.rows1.z], a2[base + t.rows1.w]);
      let r0 = vec4f(b2[c0.x + k], b2[c0.y + k], b2[c0.z + k], b2[c0.w + k]);
      let r1 = vec4f(b2[c1.x + k], b2[c1.y + k], b2[c1.z + k], b2[c1.w + k]);
      acc = tile_step(acc, l0, l1, r0, r1);
    }
  } else {
    let rows0 = t.rows0 * r;
    let rows1 = t.rows1 * r;
    for (var k = 0u; k < r; k++) {
      let base = k * params.cols;
      let l0 = vec4f(b2[rows0.x + k], b2[rows0.y + k], b2[rows0.z + k], b2[rows0.w + k]);
      let l1 = vec4f(b2[rows1.x + k], b2[rows1.y + k], b2[rows1.z + k], b2[rows1.w + k]);
      let r0 = vec4f(a2[base + t.cols0.x], a2[base + t.cols0.y], a2[base + t.cols0.z], a2[base + t.cols0.w]);
      let r1 = vec4f(a2[base + t.cols1.x], a2[base + t.cols1.y], a2[base + t.cols1.z], a2[base + t.cols1.w]);
      acc = tile_step(acc, l0, l1, r0, r1);
    }
  }
  return acc;
}

// The source word at `at` (inside the chunk): W's own, or the pristine copy's on a rebuild's first pass.
fn tile_source(at: u32) -> u32 {
  if (params.from_pristine == 1u) {
    return pristine[at];
  }
  return w[at];
}

// The tiled entry's element type (0: f32, 1: f16, 2: bf16), fixed when the pipeline is made: one
// pipeline per type. SwiftShader runs both sides of a branch with masked lanes, so a branch on
// `params.element` made every f32 word pay for the 16-bit rounding, ten times the cost of its add.
override ELEMENT: u32 = 0u;

// Writes W's word `word` (counted from W's start) of the tile's row from the source word and the
// deltas of its elements (one for f32, two for 16-bit), when the word lies in this chunk.
fn tile_write_word(word: u32, d_lo: f32, d_hi: f32) {
  if (word < params.word_start || word >= params.word_start + params.word_count) {
    return;
  }
  let at = word - params.word_start;
  let src = tile_source(at);
  if (ELEMENT == 0u) {
    w[at] = bitcast<u32>(bitcast<f32>(src) + d_lo);
  } else if (ELEMENT == 1u) {
    w[at] = f32_to_f16(f16_to_f32(src & 0xffffu) + d_lo) | (f32_to_f16(f16_to_f32(src >> 16u) + d_hi) << 16u);
  } else {
    w[at] = f32_to_bf16(bitcast<f32>(src << 16u) + d_lo) | (f32_to_bf16(bitcast<f32>(src & 0xffff0000u) + d_hi) << 16u);
  }
}

// Row j of the tile's deltas: columns 0..3 and 4..7.
struct TileRow {
  lo: vec4f,
  hi: vec4f,
}

fn tile_row(d: Tile, j: u32) -> TileRow {
  switch (j) {
    case 0u: { return TileRow(d.r0, d.q0); }
    case 1u: { return TileRow(d.r1, d.q1); }
    case 2u: { return TileRow(d.r2, d.q2); }
    case 3u: { return TileRow(d.r3, d.q3); }
    case 4u: { return TileRow(d.r4, d.q4); }
    case 5u: { return TileRow(d.r5, d.q5); }
    case 6u: { return TileRow(d.r6, d.q6); }
    default: { return TileRow(d.r7, d.q7); }
  }
}

// Column c (0..7) of a tile row.
fn tile_column(r: TileRow, c: u32) -> f32 {
  return select(r.hi[c & 3u], r.lo[c & 3u], c < 4u);
}

// Writes the tile's rows inside W, word by word, in loops: written out, the rounding would be
// inlined once per word (64 copies), which makes the pipeline many times slower to create.
fn tile_write(row0: u32, col0: u32, d: Tile) {
  let per_word = select(2u, 1u, ELEMENT == 0u);
  // Rows of 16-bit W have an even number of columns here, so every tile row starts on a word.
  let words = min(TC, params.cols - col0) / per_word;
  let rows = min(TR, params.rows - row0);
  for (var j = 0u; j < rows; j++) {
    let r = tile_row(d, j);
    let word0 = ((row0 + j) * params.cols + col0) / per_word;
    for (var m = 0u; m < words; m++) {
      tile_write_word(word0 + m, tile_column(r, m * per_word), tile_column(r, m * per_word + 1u));
    }
  }
}

@compute @workgroup_size(WG)
fn apply_tiled(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, groups, lid);
  if (i >= params.tile_count) {
    return;
  }
  let tiles_x = (params.cols + TC - 1u) / TC;
  let row0 = params.tile_row0 + (i / tiles_x) * TR;
  let col0 = (i % tiles_x) * TC;
  if (row0 >= params.rows) {
    return;
  }
  let t = tile_index(row0, col0);
  var d = Tile();
  if (params.terms > 0u) {
    d = tile_add_scaled(d, params.scale0, tile_term0(t));
  }
  if (params.terms > 1u) {
    d = tile_add_scaled(d, params.scale1, tile_term1(t));
  }
  if (params.terms > 2u) {
    d = tile_add_scaled(d, params.scale2, tile_term2(t));
  }
  tile_write(row0, col0, d);
}

// ---- The band entries, for W with a multiple of 4 columns: each invocation owns 8 adjacent
// columns (8 f32 words, or 4 words of 16-bit pairs) of BAND_ROWS consecutive rows. It loads R[k, its
// columns] once, then walks its rows: per row, one value of L per k and
// one read and one write of its words. A pass has BAND_TERMS slots (0..3) of up to 8 k's each; the
// host gives a term of higher rank several slots (the same buffers, later k's); a rebuild with no
// terms copies the pristine weight.
//
// Why this shape: SwiftShader (the CPU fallback, and what CI runs) pays for the instructions a
// pipeline contains even where a branch skips them, and a loop costs far more than its body (the
// tiled entry's copy of W alone ran several times slower than a plain copy; a row loop with an
// inner k loop, twice slower than one without). So the k's of a slot are written out (8, the
// ones past its count multiplied by 0), the host binds each term's L and R (A and B swapped by
// layout) so both layouts are one product with different strides, and the element type, the
// number of slots and the source (W or the pristine copy) are pipeline constants. On GPUs
// neighbouring invocations touch neighbouring words of W and read the same L.
//
// The sums are the word entries' exactly (see band_delta), then one rounding to W's type.

override BAND_ROWS: u32 = 32u;
override BAND_TERMS: u32 = 1u;
// 1: the source is the pristine copy (a rebuild), 0: W itself.
override BAND_PRISTINE: u32 = 0u;

fn f16_to_f32x4(h: vec4u) -> vec4f {
  let sign = (h & vec4u(0x8000u)) << vec4u(16u);
  let e = (h >> vec4u(10u)) & vec4u(0x1fu);
  let m = h & vec4u(0x3ffu);
  let normal = sign | ((e + vec4u(112u)) << vec4u(23u)) | (m << vec4u(13u));
  let special = sign | vec4u(0x7f800000u) | (m << vec4u(13u));
  // A subnormal half is m * 2^-24, exact in f32.
  let sub = sign | bitcast<vec4u>(vec4f(m) * 5.9604644775390625e-8);
  return bitcast<vec4f>(select(select(normal, special, e == vec4u(0x1fu)), sub, e == vec4u(0u)));
}

// f32_to_f16 four at a time, without branches (round to nearest even, as PyTorch rounds).
fn f32_to_f16x4(v: vec4f) -> vec4u {
  let x = bitcast<vec4u>(v);
  let a = x & vec4u(0x7fffffffu);
  // Normal halves: adding 0xfff plus the lowest kept bit, then dropping 13 bits, rounds to
  // nearest even; a carry moves into the exponent (up to Inf), as it should.
  let normal = ((a + vec4u(0xfffu) + ((a >> vec4u(13u)) & vec4u(1u))) >> vec4u(13u)) - vec4u(112u << 10u);
  // Below 2^-14 the half is a multiple of 2^-24: round() ties to even, and 2^-14 itself comes
  // out as 0x400, the smallest normal half.
  let sub = vec4u(round(bitcast<vec4f>(a) * 16777216.0));
  var h = select(sub, normal, a >= vec4u(0x38800000u));
  // From 65520 up (and Inf) the half is Inf; NaN stays NaN (quiet, its top mantissa bits kept).
  h = select(h, vec4u(0x7c00u), a >= vec4u(0x477ff000u));
  h = select(h, vec4u(0x7e00u) | ((a >> vec4u(13u)) & vec4u(0x3ffu)), a > vec4u(0x7f800000u));
  return ((x >> vec4u(16u)) & vec4u(0x8000u)) | h;
}

// f32_to_bf16 four at a time.
fn f32_to_bf16x4(v: vec4f) -> vec4u {
  let x = bitcast<vec4u>(v);
  let rounded = (x + vec4u(0x7fffu) + ((x >> vec4u(16u)) & vec4u(1u))) >> vec4u(16u);
  let quiet = (x >> vec4u(16u)) | vec4u(0x40u);
  return select(rounded, quiet, (x & vec4u(0x7fffffffu)) > vec4u(0x7f800000u)) & vec4u(0xffffu);
}

// Strides of L[row, k] and R[k, col] for a term of rank r: (L row, L k, R k, R col).
//   in-out  L[row, k] = A[k, row], R[k, col] = B[col, k]
//   out-in  L[row, k] = B[row, k], R[k, col] = A[k, col]
fn band_strides(r: u32) -> vec4u {
  return select(vec4u(r, 1u, params.cols, 1u), vec4u(1u, params.rows, 1u, r), params.in_out == 1u);
}

// A slot's scaled R at 4 columns, k's 0..7 of the slot.
struct BandR {
  k0: vec4f, k1: vec4f, k2: vec4f, k3: vec4f, k4: vec4f, k5: vec4f, k6: vec4f, k7: vec4f,
}

// A row's deltas at the invocation's 8 columns: 0..3 and 4..7.
struct BandD {
  lo: vec4f,
  hi: vec4f,
}

// This invocation's column group and rows: (group, first row, end row); no rows past the chunk's bands.
fn band_of(i: u32) -> vec3u {
  if (i >= params.tile_count) {
    return vec3u(0u);
  }
  let groups_per_row = params.cols / 8u;
  let row0 = params.tile_row0 + (i / groups_per_row) * BAND_ROWS;
  return vec3u(i % groups_per_row, row0, min(row0 + BAND_ROWS, params.rows));
}

// Every slot's R at the invocation's 8 columns: columns 0..3 in a, 4..7 in b.
struct BandRs {
  a0: BandR, b0: BandR, a1: BandR, b1: BandR, a2: BandR, b2: BandR,
}

fn band_load_r(c: u32) -> BandRs {
  var r = BandRs();
  if (BAND_TERMS > 0u) {
    r.a0 = band_slot_r0(c);
    r.b0 = band_slot_r0(c + 4u);
  }
  if (BAND_TERMS > 1u) {
    r.a1 = band_slot_r1(c);
    r.b1 = band_slot_r1(c + 4u);
  }
  if (BAND_TERMS > 2u) {
    r.a2 = band_slot_r2(c);
    r.b2 = band_slot_r2(c + 4u);
  }
  return r;
}

// Σ over the pass's terms of scale · Σ_k L[row, k] · R[k, 8 columns], in the word entries' order:
// per term the products added for k ascending from 0 (a term's slots continue one sum), then
// scaled and added to the deltas of the terms before it.
fn band_delta(row: u32, r: BandRs) -> BandD {
  let zero = BandD(vec4f(0.0), vec4f(0.0));
  if (BAND_TERMS == 0u) {
    return zero;
  }
  var acc = band_slot_sum0(row, r.a0, r.b0, zero);
  var d = band_slot_end0(acc, zero);
  if (BAND_TERMS > 1u) {
    acc = band_slot_sum1(row, r.a1, r.b1, band_slot_carry0(acc));
    d = band_slot_end1(acc, d);
  }
  if (BAND_TERMS > 2u) {
    acc = band_slot_sum2(row, r.a2, r.b2, band_slot_carry1(acc));
    d = band_slot_end2(acc, d);
  }
  return d;
}

// Row `row`'s 4-word group `group` (8 f32 columns are two groups, 8 16-bit columns one), counted
// from the chunk's first word, or -1 when it is outside the chunk.
fn band_group_in_chunk(row: u32, group: u32, groups_per_row: u32) -> i32 {
  let q = row * groups_per_row + group;
  let first = params.word_start / 4u;
  if (q < first || q >= (params.word_start + params.word_count) / 4u) {
    return -1;
  }
  return i32(q - first);
}

fn band_source(at: u32) -> vec4u {
  if (BAND_PRISTINE == 1u) {
    return pristine_x4[at];
  }
  return w_x4[at];
}

@compute @workgroup_size(WG)
fn apply_band_f32(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u, @builtin(local_invocation_index) lid: u32) {
  let band = band_of(flat_index(wid, groups, lid));
  let r = band_load_r(band.x * 8u);
  let groups_per_row = params.cols / 4u;
  for (var row = band.y; row < band.z; row++) {
    let q = band_group_in_chunk(row, band.x * 2u, groups_per_row);
    if (q >= 0) {
      let at = u32(q);
      let d = band_delta(row, r);
      w_x4[at] = bitcast<vec4u>(bitcast<vec4f>(band_source(at)) + d.lo);
      w_x4[at + 1u] = bitcast<vec4u>(bitcast<vec4f>(band_source(at + 1u)) + d.hi);
    }
  }
}

@compute @workgroup_size(WG)
fn apply_band_half(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u, @builtin(local_invocation_index) lid: u32) {
  let band = band_of(flat_index(wid, groups, lid));
  let r = band_load_r(band.x * 8u);
  let groups_per_row = params.cols / 8u;
  for (var row = band.y; row < band.z; row++) {
    let q = band_group_in_chunk(row, band.x, groups_per_row);
    if (q >= 0) {
      let at = u32(q);
      let src = band_source(at);
      let d = band_delta(row, r);
      // Word m holds columns 2m (low half) and 2m + 1 (high half).
      let even = vec4f(d.lo.x, d.lo.z, d.hi.x, d.hi.z);
      let odd = vec4f(d.lo.y, d.lo.w, d.hi.y, d.hi.w);
      if (ELEMENT == 1u) {
        w_x4[at] = f32_to_f16x4(f16_to_f32x4(src & vec4u(0xffffu)) + even) | (f32_to_f16x4(f16_to_f32x4(src >> vec4u(16u)) + odd) << vec4u(16u));
      } else {
        w_x4[at] = f32_to_bf16x4(bitcast<vec4f>(src << vec4u(16u)) + even) | (f32_to_bf16x4(bitcast<vec4f>(src & vec4u(0xffff0000u)) + odd) << vec4u(16u));
      }
    }
  }
}
