// Causal self-attention, one workgroup per (query, head): scores against every visible cached key,
// a softmax that subtracts the maximum, then the weighted sum of the values. Queries are the last
// `queries` of the cached positions. q is read from the fused qkv rows (stride q_stride).
struct Params {
  queries: u32,
  past: u32,
  heads: u32,
  head_dim: u32,
  scale: f32,
  q_stride: u32,
  _pad0: u32,
  _pad1: u32,
}

const MAX_POSITIONS: u32 = 2048u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> keys: array<f32>;
@group(0) @binding(3) var<storage, read> values: array<f32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;

var<workgroup> scores: array<f32, MAX_POSITIONS>;
// reduce_max and reduce_sum come from workgroup-reduce.wgsl, prepended by forward-kernels.ts.

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let i = wid.x;
  let h = wid.y;
  let width = p.heads * p.head_dim;
  let visible = p.past + i + 1u;
  let qo = i * p.q_stride + h * p.head_dim;
  let ho = h * p.head_dim;

  var local_max = -3.0e38;
  for (var j = t; j < visible; j = j + 64u) {
    var s = 0.0;
    for (var d = 0u; d < p.head_dim; d = d + 1u) {
      s = s + qkv[qo + d] * keys[j * width + ho + d];
    }
    s = s * p.scale;
    scores[j] = s;
    local_max = max(local_max, s);
  }
  let m = reduce_max(t, local_max);

  var local_sum = 0.0;
  for (var j = t; j < visible; j = j + 64u) {
    let e = exp(scores[j] - m);
    scores[j] = e;
    local_sum = local_sum + e;
  }
  let total = reduce_sum(t, local_sum);

  for (var d = t; d < p.head_dim; d = d + 64u) {
    var acc = 0.0;
    for (var j = 0u; j < visible; j = j + 1u) {
      acc = acc + scores[j] * values[j * width + ho + d];
    }
    o[i * width + ho + d] = acc / total;
  }
}
