// y[r, col0 + j] (+)= alpha * (x[r, :] . W[:, j]) + bias[j] for one row chunk of the weight.
// order 0: W stored [in, out] (Conv1D); order 1: W stored [out, in] (Linear), this chunk's rows only.
// Each invocation computes a 4 x 4 block of y (4 rows, 4 columns): per k it loads 4 values of x and
// 4 of W for 16 multiply-adds, which is what makes it fast on SwiftShader and GPUs alike; a single
// row (decoding) takes a 1 x 4 block.
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

const B: u32 = 4u;
// The weight's layout (0: [in, out], 1: [out, in]) and rows of y per invocation (4, or 1 for a
// single row, as in decoding: the 4-row block would compute three rows of nothing), as pipeline
// constants: on SwiftShader a pipeline pays for the code it holds even where a branch skips it.
override ORDER: u32 = 0u;
override ROWS: u32 = 4u;

// W[k, jj] for the 4 columns jj: in-out W is [in, out] (k's row), out-in W is [out, in] (jj's rows).
fn w_at(k: u32, jj: vec4<u32>, wj: vec4<u32>) -> vec4<f32> {
  if (ORDER == 0u) {
    let wo = k * p.out_dim;
    return vec4<f32>(w[wo + jj.x], w[wo + jj.y], w[wo + jj.z], w[wo + jj.w]);
  }
  return vec4<f32>(w[wj.x + k], w[wj.y + k], w[wj.z + k], w[wj.w + k]);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j0 = gid.x * B;
  let r0 = gid.y * ROWS;
  if (j0 >= p.out_dim || r0 >= p.rows) {
    return;
  }
  // Rows and columns past the edge read the last row/column (always there) and are not written.
  let jj = min(vec4<u32>(j0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.out_dim - 1u));
  let rr = min(vec4<u32>(r0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.rows - 1u)) * p.in_dim;
  let wj = jj * p.in_dim;
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  // Four k's per iteration (a loop iteration costs SwiftShader more than its body), in order, so
  // the sums are the one-k loop's.
  let k4 = p.in_dim & ~3u;
  var k = 0u;
  for (; k < k4; k = k + 4u) {
    let w0 = w_at(k, jj, wj);
    let w1 = w_at(k + 1u, jj, wj);
    let w2 = w_at(k + 2u, jj, wj);
    let w3 = w_at(k + 3u, jj, wj);
    a0 = fma(vec4<f32>(x[rr.x + k + 3u]), w3, fma(vec4<f32>(x[rr.x + k + 2u]), w2, fma(vec4<f32>(x[rr.x + k + 1u]), w1, fma(vec4<f32>(x[rr.x + k]), w0, a0))));
    if (ROWS == 4u) {
      a1 = fma(vec4<f32>(x[rr.y + k + 3u]), w3, fma(vec4<f32>(x[rr.y + k + 2u]), w2, fma(vec4<f32>(x[rr.y + k + 1u]), w1, fma(vec4<f32>(x[rr.y + k]), w0, a1))));
      a2 = fma(vec4<f32>(x[rr.z + k + 3u]), w3, fma(vec4<f32>(x[rr.z + k + 2u]), w2, fma(vec4<f32>(x[rr.z + k + 1u]), w1, fma(vec4<f32>(x[rr.z + k]), w0, a2))));
      a3 = fma(vec4<f32>(x[rr.w + k + 3u]), w3, fma(vec4<f32>(x[rr.w + k + 2u]), w2, fma(vec4<f32>(x[rr.w + k + 1u]), w1, fma(vec4<f32>(x[rr.w + k]), w0, a3))));
    }
  }
  for (; k < p.in_dim; k = k + 1u) {
    let wv = w_at(k, jj, wj);
    a0 = fma(vec4<f32>(x[rr.x + k]), wv, a0);
    if (ROWS == 4u) {
      a1 = fma(vec4<f32>(x[rr.y + k]), wv, a1);
      a2 = fma(vec4<f32>(x[rr.z + k]), wv, a2);
      a3 = fma(vec4<f32>(x[rr.w + k]), wv, a3);
    }
  }
  var acc = array<vec4<f32>, 4>(a0, a1, a2, a3);
  for (var t = 0u; t < ROWS; t = t + 1u) {
    let r = r0 + t;
    if (r >= p.rows) {
      break;
    }
    for (var c = 0u; c < B; c = c + 1u) {
      let j = j0 + c;
      if (j >= p.out_dim) {
        break;
      }
      var s = p.alpha * acc[t][c];
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
  }
}
