// LoRA terms applied to a weight matrix that lives in the app's buffer, in place:
//
//   W[row, col] = S[row, col] + sum_t scale_t * sum_k L_t[row, k] * R_t[k, col]
//
// where S is W itself (`apply_in_place`) or a pristine copy of the base weight that the app keeps
// (`apply_from_pristine`, the drift-free mode: W is recomputed from the base, so no rounding error
// builds up over merge/unmerge cycles). Up to three terms per dispatch, so a swap (add one adapter,
// remove another) reads and writes W once.
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
  tile_row0: u32,     // tiled entries: first W row of this chunk's tiles
  tile_count: u32,    // tiled entries: tiles in this chunk
  pad1: u32,
  pad2: u32,
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

// ---- Tiled entry points, for W whose rows hold a multiple of 4 elements (every GPT-2 weight): each
// invocation owns a 4 x 4 tile of W and reuses 4 values of each factor per k for 16 outputs, with the
// same f32 operations per element, in the same order, as the word-per-invocation entries above.
// A tile's words outside the current chunk are left to the chunk that holds them.

const TR: u32 = 4u;
const TC: u32 = 4u;

// One term's products for the tile, per row; the three copies differ only in the bindings they
// read (WGSL has no portable way to pass a storage array), and the layout test sits outside the loop.
fn tile_term0(rows4: vec4u, col0: u32) -> array<vec4f, 4> {
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  let r = params.rank0;
  if (params.in_out == 1u) {
    // L[row, k] = A[k, row], R[k, col] = B[col, k]
    for (var k = 0u; k < r; k++) {
      let rv = vec4f(b0[col0 * r + k], b0[(col0 + 1u) * r + k], b0[(col0 + 2u) * r + k], b0[(col0 + 3u) * r + k]);
      let base = k * params.rows;
      acc0 += a0[base + rows4.x] * rv;
      acc1 += a0[base + rows4.y] * rv;
      acc2 += a0[base + rows4.z] * rv;
      acc3 += a0[base + rows4.w] * rv;
    }
  } else {
    // L[row, k] = B[row, k], R[k, col] = A[k, col]
    for (var k = 0u; k < r; k++) {
      let at = k * params.cols + col0;
      let rv = vec4f(a0[at], a0[at + 1u], a0[at + 2u], a0[at + 3u]);
      acc0 += b0[rows4.x * r + k] * rv;
      acc1 += b0[rows4.y * r + k] * rv;
      acc2 += b0[rows4.z * r + k] * rv;
      acc3 += b0[rows4.w * r + k] * rv;
    }
  }
  return array<vec4f, 4>(acc0, acc1, acc2, acc3);
}

fn tile_term1(rows4: vec4u, col0: u32) -> array<vec4f, 4> {
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  let r = params.rank1;
  if (params.in_out == 1u) {
    // L[row, k] = A[k, row], R[k, col] = B[col, k]
    for (var k = 0u; k < r; k++) {
      let rv = vec4f(b1[col0 * r + k], b1[(col0 + 1u) * r + k], b1[(col0 + 2u) * r + k], b1[(col0 + 3u) * r + k]);
      let base = k * params.rows;
      acc0 += a1[base + rows4.x] * rv;
      acc1 += a1[base + rows4.y] * rv;
      acc2 += a1[base + rows4.z] * rv;
      acc3 += a1[base + rows4.w] * rv;
    }
  } else {
    // L[row, k] = B[row, k], R[k, col] = A[k, col]
    for (var k = 0u; k < r; k++) {
      let at = k * params.cols + col0;
      let rv = vec4f(a1[at], a1[at + 1u], a1[at + 2u], a1[at + 3u]);
      acc0 += b1[rows4.x * r + k] * rv;
      acc1 += b1[rows4.y * r + k] * rv;
      acc2 += b1[rows4.z * r + k] * rv;
      acc3 += b1[rows4.w * r + k] * rv;
    }
  }
  return array<vec4f, 4>(acc0, acc1, acc2, acc3);
}

fn tile_term2(rows4: vec4u, col0: u32) -> array<vec4f, 4> {
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  let r = params.rank2;
  if (params.in_out == 1u) {
    // L[row, k] = A[k, row], R[k, col] = B[col, k]
    for (var k = 0u; k < r; k++) {
      let rv = vec4f(b2[col0 * r + k], b2[(col0 + 1u) * r + k], b2[(col0 + 2u) * r + k], b2[(col0 + 3u) * r + k]);
      let base = k * params.rows;
      acc0 += a2[base + rows4.x] * rv;
      acc1 += a2[base + rows4.y] * rv;
      acc2 += a2[base + rows4.z] * rv;
      acc3 += a2[base + rows4.w] * rv;
    }
  } else {
    // L[row, k] = B[row, k], R[k, col] = A[k, col]
    for (var k = 0u; k < r; k++) {
      let at = k * params.cols + col0;
      let rv = vec4f(a2[at], a2[at + 1u], a2[at + 2u], a2[at + 3u]);
      acc0 += b2[rows4.x * r + k] * rv;
      acc1 += b2[rows4.y * r + k] * rv;
      acc2 += b2[rows4.z * r + k] * rv;
      acc3 += b2[rows4.w * r + k] * rv;
    }
  }
  return array<vec4f, 4>(acc0, acc1, acc2, acc3);
}

// The delta of the tile at rows row0.., columns col0.. (rows past the end of W read row 0: their
// results are never written).
fn tile_delta(row0: u32, col0: u32) -> array<vec4f, 4> {
  let last = params.rows - 1u;
  let rows4 = vec4u(row0, min(row0 + 1u, last), min(row0 + 2u, last), min(row0 + 3u, last));
  var d0 = vec4f(0.0);
  var d1 = vec4f(0.0);
  var d2 = vec4f(0.0);
  var d3 = vec4f(0.0);
  if (params.terms > 0u) {
    let p = tile_term0(rows4, col0);
    d0 += params.scale0 * p[0]; d1 += params.scale0 * p[1]; d2 += params.scale0 * p[2]; d3 += params.scale0 * p[3];
  }
  if (params.terms > 1u) {
    let p = tile_term1(rows4, col0);
    d0 += params.scale1 * p[0]; d1 += params.scale1 * p[1]; d2 += params.scale1 * p[2]; d3 += params.scale1 * p[3];
  }
  if (params.terms > 2u) {
    let p = tile_term2(rows4, col0);
    d0 += params.scale2 * p[0]; d1 += params.scale2 * p[1]; d2 += params.scale2 * p[2]; d3 += params.scale2 * p[3];
  }
  return array<vec4f, 4>(d0, d1, d2, d3);
}

// Writes one row of a tile: 4 f32 words, or 2 words of two 16-bit elements (rows hold a multiple of 4
// elements, so a row starts on a word). Words outside the current chunk are left to their own chunk.
fn write_tile_row(row: u32, col0: u32, dv: vec4f) {
  if (row >= params.rows) {
    return;
  }
  let chunk_end = params.word_start + params.word_count;
  if (params.element == 0u) {
    let word = row * params.cols + col0;
    if (word >= params.word_start && word + 3u < chunk_end) {
      let at = word - params.word_start;
      w[at] = bitcast<u32>(bitcast<f32>(w[at]) + dv.x);
      w[at + 1u] = bitcast<u32>(bitcast<f32>(w[at + 1u]) + dv.y);
      w[at + 2u] = bitcast<u32>(bitcast<f32>(w[at + 2u]) + dv.z);
      w[at + 3u] = bitcast<u32>(bitcast<f32>(w[at + 3u]) + dv.w);
      return;
    }
    for (var j = 0u; j < TC; j++) {
      if (word + j >= params.word_start && word + j < chunk_end) {
        let at = word + j - params.word_start;
        w[at] = bitcast<u32>(bitcast<f32>(w[at]) + dv[j]);
      }
    }
    return;
  }
  let word = (row * params.cols + col0) / 2u;
  if (word >= params.word_start && word < chunk_end) {
    let at = word - params.word_start;
    let src = w[at];
    w[at] = encode(decode(src & 0xffffu) + dv.x) | (encode(decode(src >> 16u) + dv.y) << 16u);
  }
  if (word + 1u >= params.word_start && word + 1u < chunk_end) {
    let at = word + 1u - params.word_start;
    let src = w[at];
    w[at] = encode(decode(src & 0xffffu) + dv.z) | (encode(decode(src >> 16u) + dv.w) << 16u);
  }
}

@compute @workgroup_size(WG)
fn apply_tiled(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, groups, lid);
  if (i >= params.tile_count) {
    return;
  }
  let tiles_x = params.cols / TC;
  let row0 = params.tile_row0 + (i / tiles_x) * TR;
  let col0 = (i % tiles_x) * TC;
  if (row0 >= params.rows) {
    return;
  }
  let d = tile_delta(row0, col0);
  write_tile_row(row0, col0, d[0]);
  write_tile_row(row0 + 1u, col0, d[1]);
  write_tile_row(row0 + 2u, col0, d[2]);
  write_tile_row(row0 + 3u, col0, d[3]);
}
