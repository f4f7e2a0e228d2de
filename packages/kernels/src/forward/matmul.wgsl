// y[r, col0 + j] (+)= alpha * (x[r, :] . W[:, j]) + bias[j] for one row chunk of the weight.
// order 0: W stored [in, out] (Conv1D); order 1: W stored [out, in] (Linear), this chunk's rows only.
//
// On SwiftShader every storage access with a computed index is a per-lane gather, so what sets the
// speed is multiply-adds per value loaded. Two entry points:
// `main_block` (several rows, as in a prefill): each invocation computes an 8 x 8 block of y, loading
// 8 values of x and 8 of W per k for 64 multiply-adds (a 4 x 4 block did 16 for 8 loads, and ran
// ~1.4x slower on SwiftShader's 2 CPU threads, measured on the c_attn and lm_head shapes).
// `main` (a single row, as in decoding): a 1 x 4 block; more columns per invocation did not help there.
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

// The weight's layout (0: [in, out], 1: [out, in]) as a pipeline constant: on SwiftShader a pipeline
// pays for the code it holds even where a branch skips it.
override ORDER: u32 = 0u;

// W[k, jj] for 4 columns jj: in-out W is [in, out] (k's row), out-in W is [out, in] (jj's rows).
fn w_at(k: u32, jj: vec4<u32>, wj: vec4<u32>) -> vec4<f32> {
  if (ORDER == 0u) {
    let wo = k * p.out_dim;
    return vec4<f32>(w[wo + jj.x], w[wo + jj.y], w[wo + jj.z], w[wo + jj.w]);
  }
  return vec4<f32>(w[wj.x + k], w[wj.y + k], w[wj.z + k], w[wj.w + k]);
}

// y[r, j .. j + 3] (+)= alpha * a + bias, for the columns inside y and a row inside it.
fn store4(r: u32, j: u32, a: vec4<f32>) {
  if (r >= p.rows) {
    return;
  }
  for (var c = 0u; c < 4u; c = c + 1u) {
    if (j + c >= p.out_dim) {
      return;
    }
    var s = p.alpha * a[c];
    if (p.has_bias == 1u) {
      s = s + bias[j + c];
    }
    let o = r * p.y_stride + p.y_col0 + j + c;
    if (p.accumulate == 1u) {
      y[o] = y[o] + s;
    } else {
      y[o] = s;
    }
  }
}

// Offsets of the 8 rows of x a block reads (rows past the edge read the last row, never written).
struct Rows8 {
  r0: u32, r1: u32, r2: u32, r3: u32, r4: u32, r5: u32, r6: u32, r7: u32,
}

fn rows8(r0: u32) -> Rows8 {
  let last = p.rows - 1u;
  let n = p.in_dim;
  return Rows8(min(r0, last) * n, min(r0 + 1u, last) * n, min(r0 + 2u, last) * n, min(r0 + 3u, last) * n,
    min(r0 + 4u, last) * n, min(r0 + 5u, last) * n, min(r0 + 6u, last) * n, min(r0 + 7u, last) * n);
}

// An 8 x 8 block's sums: columns j0 .. j0 + 3 in aN, j0 + 4 .. j0 + 7 in bN, of row r0 + N. Named
// fields, not an array indexed in a loop: SwiftShader turns a computed index into a private array
// into a memory access per lane.
struct Block {
  a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>, a4: vec4<f32>, a5: vec4<f32>, a6: vec4<f32>, a7: vec4<f32>,
  b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>, b4: vec4<f32>, b5: vec4<f32>, b6: vec4<f32>, b7: vec4<f32>,
}

// The block's sums after the products of k: 8 values of W (columns jl | jh) times 8 of x (rows xr).
fn block_step(s: Block, k: u32, xr: Rows8, jl: vec4<u32>, jh: vec4<u32>, wjl: vec4<u32>, wjh: vec4<u32>) -> Block {
  let wl = w_at(k, jl, wjl);
  let wh = w_at(k, jh, wjh);
  let x0 = vec4<f32>(x[xr.r0 + k]);
  let x1 = vec4<f32>(x[xr.r1 + k]);
  let x2 = vec4<f32>(x[xr.r2 + k]);
  let x3 = vec4<f32>(x[xr.r3 + k]);
  let x4 = vec4<f32>(x[xr.r4 + k]);
  let x5 = vec4<f32>(x[xr.r5 + k]);
  let x6 = vec4<f32>(x[xr.r6 + k]);
  let x7 = vec4<f32>(x[xr.r7 + k]);
  return Block(
    fma(x0, wl, s.a0), fma(x1, wl, s.a1), fma(x2, wl, s.a2), fma(x3, wl, s.a3),
    fma(x4, wl, s.a4), fma(x5, wl, s.a5), fma(x6, wl, s.a6), fma(x7, wl, s.a7),
    fma(x0, wh, s.b0), fma(x1, wh, s.b1), fma(x2, wh, s.b2), fma(x3, wh, s.b3),
    fma(x4, wh, s.b4), fma(x5, wh, s.b5), fma(x6, wh, s.b6), fma(x7, wh, s.b7),
  );
}

@compute @workgroup_size(32)
fn main_block(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j0 = gid.x * 8u;
  let r0 = gid.y * 8u;
  if (j0 >= p.out_dim || r0 >= p.rows) {
    return;
  }
  // Columns past the edge read the last column (always there) and are not written.
  let last_j = vec4<u32>(p.out_dim - 1u);
  let jl = min(vec4<u32>(j0) + vec4<u32>(0u, 1u, 2u, 3u), last_j);
  let jh = min(vec4<u32>(j0) + vec4<u32>(4u, 5u, 6u, 7u), last_j);
  let wjl = jl * p.in_dim;
  let wjh = jh * p.in_dim;
  let xr = rows8(r0);
  let zero = vec4<f32>(0.0);
  var s = Block(zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero);
  // Two k's per iteration (a loop iteration costs SwiftShader more than its body), in order, so
  // the sums are the one-k loop's.
  let k2 = p.in_dim & ~1u;
  var k = 0u;
  for (; k < k2; k = k + 2u) {
    s = block_step(s, k, xr, jl, jh, wjl, wjh);
    s = block_step(s, k + 1u, xr, jl, jh, wjl, wjh);
  }
  if (k < p.in_dim) {
    s = block_step(s, k, xr, jl, jh, wjl, wjh);
  }
  store4(r0, j0, s.a0); store4(r0, j0 + 4u, s.b0);
  store4(r0 + 1u, j0, s.a1); store4(r0 + 1u, j0 + 4u, s.b1);
  store4(r0 + 2u, j0, s.a2); store4(r0 + 2u, j0 + 4u, s.b2);
  store4(r0 + 3u, j0, s.a3); store4(r0 + 3u, j0 + 4u, s.b3);
  store4(r0 + 4u, j0, s.a4); store4(r0 + 4u, j0 + 4u, s.b4);
  store4(r0 + 5u, j0, s.a5); store4(r0 + 5u, j0 + 4u, s.b5);
  store4(r0 + 6u, j0, s.a6); store4(r0 + 6u, j0 + 4u, s.b6);
  store4(r0 + 7u, j0, s.a7); store4(r0 + 7u, j0 + 4u, s.b7);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j0 = gid.x * 4u;
  let r = gid.y;
  if (j0 >= p.out_dim || r >= p.rows) {
    return;
  }
  let jj = min(vec4<u32>(j0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.out_dim - 1u));
  let wj = jj * p.in_dim;
  let xo = r * p.in_dim;
  var a = vec4<f32>(0.0);
  // Four k's per iteration, in order (as above).
  let k4 = p.in_dim & ~3u;
  var k = 0u;
  for (; k < k4; k = k + 4u) {
    let w0 = w_at(k, jj, wj);
    let w1 = w_at(k + 1u, jj, wj);
    let w2 = w_at(k + 2u, jj, wj);
    let w3 = w_at(k + 3u, jj, wj);
    a = fma(vec4<f32>(x[xo + k + 3u]), w3, fma(vec4<f32>(x[xo + k + 2u]), w2, fma(vec4<f32>(x[xo + k + 1u]), w1, fma(vec4<f32>(x[xo + k]), w0, a))));
  }
  for (; k < p.in_dim; k = k + 1u) {
    a = fma(vec4<f32>(x[xo + k]), w_at(k, jj, wj), a);
  }
  store4(r, j0, a);
}
