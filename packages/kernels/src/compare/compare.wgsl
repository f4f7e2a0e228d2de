// One pass over two tensors a and b of `count` elements each (one chunk of them), comparing element i
// of a with element i of b in f32. Each workgroup covers WG * PER_THREAD consecutive elements (an
// invocation takes every WG-th of them, so neighbouring invocations read neighbouring words) and
// writes one record of RECORD u32 words to `partials`; compare.ts reduces the records on the CPU in
// f64 and finds the worst elements from each workgroup's worst one.
//
// Inputs are arrays of u32 words. Element types (override constants TYPE_A, TYPE_B, so that each
// pipeline has no type branches): 0 = f32 (one word per element), 1 = f16 and 2 = bf16 (two elements
// per word, element 2k in the low half). f16 and bf16 are decoded from their bits here, so no
// shader-f16 feature is needed.
//
// WGSL lets implementations assume that no Inf or NaN occurs in f32 arithmetic, so NaN and Inf are
// recognised from bit patterns only and never enter float arithmetic. Maxima are taken on the u32
// bit patterns of non-negative f32 values (same order as the values; +Inf is 0x7f800000).
//
// Per element (torch.isclose semantics, computed in f32), the "score" is:
//   both finite:  d = |a - b|; violation when !(d <= atol + rtol * |b|), or when d overflowed to Inf
//                 (score Inf); d² and a·b, a², b² enter the sums, d / |b| the relative maximum.
//   otherwise:    equal when both NaN and equal_nan, or neither NaN and the same bits (Inf == Inf of
//                 the same sign): score 0; else a violation with score Inf.
//
// Barriers are few on purpose: software rasterisers (SwiftShader) run a barrier as a switch of every
// SIMD group of the workgroup, so the per-invocation loop is long and the workgroup reduces once.

struct Params {
  count: u32,        // elements in this chunk
  elem_start: u32,   // absolute index of the chunk's first element (reported as the worst index)
  groups_x: u32,     // workgroups along x of the (possibly folded) dispatch
  group_count: u32,  // workgroups that have elements in this chunk
  equal_nan: u32,
  record_base: u32,  // record of this chunk's first workgroup inside the `partials` binding
  atol: f32,
  rtol: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a_words: array<u32>;
@group(0) @binding(2) var<storage, read> b_words: array<u32>;
@group(0) @binding(3) var<storage, read_write> partials: array<u32>;

override WG: u32 = 64;            // invocations per workgroup; a power of two
override PER_THREAD: u32 = 64;    // elements per invocation; a multiple of BLOCK
override TYPE_A: u32 = 0;         // element type of a
override TYPE_B: u32 = 0;         // element type of b
override BLOCK: u32 = 8u;         // terms summed in a block before the block joins the running sum
const RECORD: u32 = 16u;          // u32 words per workgroup record
const INF_BITS: u32 = 0x7f800000u;
const NO_INDEX: u32 = 0xffffffffu;

var<workgroup> s_best: array<vec4u, WG>;   // (worst score bits, its index, max rel bits, violations)
var<workgroup> s_cnt: array<vec4u, WG>;    // (nan_a, nan_b, inf_a, inf_b)
var<workgroup> s_sum: array<vec4f, WG>;    // (Σ d², Σ a·b, Σ a², Σ b²) over finite pairs
var<workgroup> s_fin: array<u32, WG>;      // finite pairs

// Element i of a tensor of type `ty` as f32 bits, from the word that holds it.
fn to_f32_bits(ty: u32, word: u32, i: u32) -> u32 {
  if (ty == 0u) {
    return word;
  }
  let h = (word >> ((i & 1u) * 16u)) & 0xffffu;
  if (ty == 2u) {
    return h << 16u;
  }
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0x1fu) {
    return sign | INF_BITS | (m << 13u);
  }
  if (e == 0u) {
    // Subnormal f16: m · 2^-24, a normal f32 (exact).
    return sign | bitcast<u32>(f32(m) * 5.9604644775390625e-8);
  }
  return sign | ((e + 112u) << 23u) | (m << 13u);
}

fn load_a(i: u32) -> u32 {
  let w = select(i >> 1u, i, TYPE_A == 0u);
  return to_f32_bits(TYPE_A, a_words[w], i);
}

fn load_b(i: u32) -> u32 {
  let w = select(i >> 1u, i, TYPE_B == 0u);
  return to_f32_bits(TYPE_B, b_words[w], i);
}

fn is_nan_bits(x: u32) -> bool {
  return (x & 0x7fffffffu) > INF_BITS;
}

fn is_finite_bits(x: u32) -> bool {
  return (x & INF_BITS) != INF_BITS;
}

// Worst-element order: larger score first, then lower index.
fn better(x: vec2u, y: vec2u) -> bool {
  return x.x > y.x || (x.x == y.x && x.y < y.y);
}

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let group = wid.y * params.groups_x + wid.x;
  if (group >= params.group_count) {
    return;
  }
  let l = lid.x;
  let base = group * WG * PER_THREAD;

  var best = vec2u(0u, NO_INDEX);
  var max_rel = 0u;
  var violations = 0u;
  var cnt = vec4u(0u);   // nan_a, nan_b, inf_a, inf_b
  var finite = 0u;
  var sums = vec4f(0.0);
  for (var o = 0u; o < PER_THREAD; o += BLOCK) {
    // Blocked summation: a term meets at most BLOCK - 1 roundings inside its block and
    // PER_THREAD / BLOCK - 1 in the running sum.
    var block = vec4f(0.0);
    for (var k = 0u; k < BLOCK; k++) {
      let i = base + l + (o + k) * WG;
      if (i >= params.count) {
        break;
      }
      let ab = load_a(i);
      let bb = load_b(i);
      let nan_a = is_nan_bits(ab);
      let nan_b = is_nan_bits(bb);
      cnt += vec4u(u32(nan_a), u32(nan_b), u32(!nan_a && !is_finite_bits(ab)), u32(!nan_b && !is_finite_bits(bb)));
      var score = 0u;
      var rel = 0u;
      var violation = false;
      if (is_finite_bits(ab) && is_finite_bits(bb)) {
        let a = bitcast<f32>(ab);
        let b = bitcast<f32>(bb);
        let d = abs(a - b);
        let d_bits = bitcast<u32>(d);
        finite += 1u;
        block += vec4f(d * d, a * b, a * a, b * b);
        if (!is_finite_bits(d_bits)) {
          // |a - b| overflowed f32: torch's isfinite(actual_error) check fails.
          score = INF_BITS;
          rel = INF_BITS;
          violation = true;
        } else {
          score = d_bits;
          violation = !(d <= params.atol + params.rtol * abs(b));
          if (d_bits == 0u) {
            rel = 0u;
          } else if ((bb & 0x7fffffffu) == 0u) {
            rel = INF_BITS;
          } else {
            rel = min(bitcast<u32>(d / abs(b)), INF_BITS);
          }
        }
      } else {
        let same = select(ab == bb, params.equal_nan != 0u, nan_a && nan_b) && (nan_a == nan_b);
        if (!same) {
          score = INF_BITS;
          rel = INF_BITS;
          violation = true;
        }
      }
      violations += u32(violation);
      max_rel = max(max_rel, rel);
      // Indices grow along the loop, so `>` keeps the lowest index among equal scores.
      if (score > best.x) {
        best = vec2u(score, params.elem_start + i);
      }
    }
    sums += block;
  }

  s_best[l] = vec4u(best, max_rel, violations);
  s_cnt[l] = cnt;
  s_sum[l] = sums;
  s_fin[l] = finite;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (l < s) {
      let x = s_best[l];
      let y = s_best[l + s];
      let worst = select(x.xy, y.xy, better(y.xy, x.xy));
      s_best[l] = vec4u(worst, max(x.z, y.z), x.w + y.w);
      s_cnt[l] += s_cnt[l + s];
      s_sum[l] += s_sum[l + s];
      s_fin[l] += s_fin[l + s];
    }
    workgroupBarrier();
  }
  if (l == 0u) {
    let rec = (params.record_base + group) * RECORD;
    let top = s_best[0];
    let c = s_cnt[0];
    let t = s_sum[0];
    partials[rec + 0u] = top.x;
    partials[rec + 1u] = top.y;
    partials[rec + 2u] = top.z;
    partials[rec + 3u] = top.w;
    partials[rec + 4u] = c.x;
    partials[rec + 5u] = c.y;
    partials[rec + 6u] = c.z;
    partials[rec + 7u] = c.w;
    partials[rec + 8u] = s_fin[0];
    partials[rec + 9u] = bitcast<u32>(t.x);
    partials[rec + 10u] = bitcast<u32>(t.y);
    partials[rec + 11u] = bitcast<u32>(t.z);
    partials[rec + 12u] = bitcast<u32>(t.w);
  }
}
