// One workgroup per row: mean, then the biased variance (two passes, as the CPU twin), then
// (x - mean) / sqrt(var + eps) * weight + bias.
struct Params {
  rows: u32,
  dim: u32,
  eps: f32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

// reduce_sum comes from workgroup-reduce.wgsl, prepended by forward-kernels.ts.

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let r = wid.x;
  let o = r * p.dim;
  var s = 0.0;
  for (var i = t; i < p.dim; i = i + 64u) {
    s = s + x[o + i];
  }
  let mean = reduce_sum(t, s) / f32(p.dim);
  var v = 0.0;
  for (var i = t; i < p.dim; i = i + 64u) {
    let d = x[o + i] - mean;
    v = v + d * d;
  }
  let inv = 1.0 / sqrt(reduce_sum(t, v) / f32(p.dim) + p.eps);
  for (var i = t; i < p.dim; i = i + 64u) {
    y[o + i] = (x[o + i] - mean) * inv * weight[i] + bias[i];
  }
}
