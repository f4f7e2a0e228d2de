// Causal self-attention as three dispatches over a block of queries, with no workgroup barriers:
// on SwiftShader a shader with a barrier runs every 4-lane group as a coroutine that yields at each
// barrier, and a one-workgroup-per-(query, head) kernel with its reductions spent ~0.3 ms per
// workgroup on that alone. Queries are the last `queries` of the cached positions; this block holds
// queries q0 .. q0 + block - 1. q is read from the fused qkv rows (stride q_stride).
//
//   scores:  e[h, i, j] = (q_i . k_j) * scale                 for the visible j (j <= past + i)
//   softmax: e[h, i, j] = exp(e[h, i, j] - max_j), total[h, i] = sum_j of them (in order of j)
//   weigh:   o[i, h, d] = (sum_j e[h, i, j] * v[j, h, d]) / total[h, i]
struct Params {
  queries: u32,
  past: u32,
  heads: u32,
  head_dim: u32,
  scale: f32,
  q_stride: u32,
  q0: u32,      // first query of this block
  block: u32,   // queries in this block
  span: u32,    // row stride of e: past + queries
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> keys: array<f32>;
@group(0) @binding(3) var<storage, read> values: array<f32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;
@group(0) @binding(5) var<storage, read_write> e: array<f32>;
@group(0) @binding(6) var<storage, read_write> total: array<f32>;

// Row of e (and index of total) for head h and block query b.
fn row_of(h: u32, b: u32) -> u32 {
  return h * p.block + b;
}

// One invocation per (key j, block query b, head h): gid = (j, b, h).
@compute @workgroup_size(64)
fn scores(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = gid.x;
  let b = gid.y;
  let h = gid.z;
  let i = p.q0 + b;
  if (b >= p.block || j > p.past + i) {
    return;
  }
  let width = p.heads * p.head_dim;
  let qo = i * p.q_stride + h * p.head_dim;
  let ko = j * width + h * p.head_dim;
  var s = 0.0;
  for (var d = 0u; d < p.head_dim; d = d + 1u) {
    s = s + qkv[qo + d] * keys[ko + d];
  }
  e[row_of(h, b) * p.span + j] = s * p.scale;
}

// One invocation per (block query b, head h): gid = (b, h).
@compute @workgroup_size(64)
fn softmax(@builtin(global_invocation_id) gid: vec3<u32>) {
  let b = gid.x;
  let h = gid.y;
  if (b >= p.block || h >= p.heads) {
    return;
  }
  let visible = p.past + p.q0 + b + 1u;
  let r = row_of(h, b) * p.span;
  var m = -3.0e38;
  for (var j = 0u; j < visible; j = j + 1u) {
    m = max(m, e[r + j]);
  }
  var sum = 0.0;
  for (var j = 0u; j < visible; j = j + 1u) {
    let x = exp(e[r + j] - m);
    e[r + j] = x;
    sum = sum + x;
  }
  total[row_of(h, b)] = sum;
}

// One invocation per (dimension d, block query b, head h): gid = (d, b, h).
@compute @workgroup_size(64)
fn weigh(@builtin(global_invocation_id) gid: vec3<u32>) {
  let d = gid.x;
  let b = gid.y;
  let h = gid.z;
  if (d >= p.head_dim || b >= p.block) {
    return;
  }
  let i = p.q0 + b;
  let visible = p.past + i + 1u;
  let width = p.heads * p.head_dim;
  let r = row_of(h, b) * p.span;
  let vo = h * p.head_dim + d;
  var acc = 0.0;
  for (var j = 0u; j < visible; j = j + 1u) {
    acc = acc + e[r + j] * values[j * width + vo];
  }
  o[i * width + vo] = acc / total[row_of(h, b)];
}
