// y[r, col0 + j] (+)= alpha * (x[r, :] . W[:, j]) + bias[j] for one row chunk of the weight.
// order 0: W stored [in, out] (Conv1D); order 1: W stored [out, in] (Linear), this chunk's rows only.
struct Params {
  rows: u32,
  in_dim: u32,
  out_dim: u32,
  order: u32,
  alpha: f32,
  accumulate: u32,
  has_bias: u32,
  y_stride: u32,
  y_col0: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = gid.x;
  let r = gid.y;
  if (j >= p.out_dim || r >= p.rows) {
    return;
  }
  var s = 0.0;
  let xo = r * p.in_dim;
  if (p.order == 0u) {
    for (var k = 0u; k < p.in_dim; k = k + 1u) {
      s = s + x[xo + k] * w[k * p.out_dim + j];
    }
  } else {
    let wo = j * p.in_dim;
    for (var k = 0u; k < p.in_dim; k = k + 1u) {
      s = s + x[xo + k] * w[wo + k];
    }
  }
  s = p.alpha * s;
  if (p.has_bias == 1u) {
    s = s + bias[j];
  }
  let o = r * p.y_stride + p.y_col0 + j;
  if (p.accumulate == 1u) {
    y[o] = y[o] + s;
  } else {
    y[o] = s;
  }
}
