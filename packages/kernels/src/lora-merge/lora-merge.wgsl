// In-place LoRA merge of one row chunk of W (row-major f32 [rows, cols]):
//
//   W[row, col] += scale * sum_k L[row, k] * R[k, col]
//
// Both orientations are this one product with different strides (set by lora-merge.ts):
//   linear      W [out, in]: L = B [out, r] (row stride r, k stride 1),
//                            R = A [r, in]  (k stride in, col stride 1)
//   transposed  W [in, out]: L[i, k] = A[k, i] (row stride 1, k stride in),
//                            R[k, o] = B[o, k] (k stride 1, col stride r)
//
// Two entry points share the bindings' slots and the Params layout:
//
// `main_vec4` (W with a multiple of 4 columns, bound at a 16-byte aligned offset: every GPT-2 shape).
// Each invocation owns 4 adjacent columns (one vec4 of W) and VEC4_ROWS consecutive rows. It keeps
// R[k, its 4 columns] for a block of 8 k's in registers (scale folded in), then walks its rows: 8
// values of L, 8 vec4 multiply-adds, one vec4 read-modify-write of W per row. Ranks above 8 take one
// such pass per block of 8 (then 4, then 1). Few memory operations per output is what matters on
// SwiftShader, where every memory access is a per-lane gather; on GPUs neighbouring invocations read
// neighbouring 16-byte words of W.
//
// `main` (any shape). Each workgroup owns a tile of (WG_Y * TM) x (WG_X * TN) outputs; each
// invocation computes TM x TN of them, reusing TM values of L and TN values of R from registers for
// every k. An invocation's rows and columns are WG_Y and WG_X apart, so neighbouring invocations touch
// neighbouring columns of W.
//
// Tiles are numbered linearly and the dispatch may be folded into 2-D, so the tile index is
// bounds-checked, and so is every row, column and k: every access stays inside its binding.

struct Params {
  rows: u32,         // rows of W in this chunk
  cols: u32,         // columns of W
  rank: u32,         // r
  row_start: u32,    // absolute index of the chunk's first row (L is indexed by absolute rows)
  w_offset: u32,     // f32 offset of the chunk's first row inside the W binding
  l_row_stride: u32,
  l_k_stride: u32,
  r_k_stride: u32,
  r_col_stride: u32,
  tiles_x: u32,      // tiles along the columns
  tile_count: u32,   // tiles in this chunk
  groups_x: u32,     // workgroups along x of the (possibly folded) dispatch
  scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(1) var<storage, read_write> w4: array<vec4f>;
@group(0) @binding(2) var<storage, read> l_mat: array<f32>;
@group(0) @binding(3) var<storage, read> r_mat: array<f32>;

override WG_X: u32 = 16;
override WG_Y: u32 = 16;
// main_vec4: invocations per workgroup (along the columns) and rows per invocation.
override VEC4_WG: u32 = 64;
override VEC4_ROWS: u32 = 32;
// Outputs per invocation; fixed at 4 x 4 because the body below is written out for a vec4 per row.
const TM: u32 = 4u; // rows per invocation
const TN: u32 = 4u; // columns per invocation

// W[row, cols[j]] += scale * acc[j] for the columns inside W.
fn store_row(row: u32, cols: vec4u, acc: vec4f) {
  if (row >= params.rows) {
    return;
  }
  let w_row = params.w_offset + row * params.cols;
  let delta = params.scale * acc;
  if (cols.w < params.cols) {
    // Whole block inside W: no per-column checks.
    w[w_row + cols.x] += delta.x;
    w[w_row + cols.y] += delta.y;
    w[w_row + cols.z] += delta.z;
    w[w_row + cols.w] += delta.w;
    return;
  }
  for (var j = 0u; j < 4u; j++) {
    if (cols[j] < params.cols) {
      w[w_row + cols[j]] += delta[j];
    }
  }
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let tile = wid.y * params.groups_x + wid.x;
  if (tile >= params.tile_count) {
    return;
  }
  let row0 = (tile / params.tiles_x) * (WG_Y * TM) + lid.y;
  let col0 = (tile % params.tiles_x) * (WG_X * TN) + lid.x;

  // Rows and columns past the edge are clamped for loading (no branches in the k loop) and
  // skipped when writing. The TM x TN = 4 x 4 block is written out by hand (vec4 per row) so that
  // it stays in registers: dynamically indexed local arrays may be spilled to memory.
  let last_row = params.rows - 1u;
  let rows4 = vec4u(row0, row0 + WG_Y, row0 + 2u * WG_Y, row0 + 3u * WG_Y);
  let l_base = (params.row_start + min(rows4, vec4u(last_row))) * params.l_row_stride;
  let cols4 = vec4u(col0, col0 + WG_X, col0 + 2u * WG_X, col0 + 3u * WG_X);
  let r_base = min(cols4, vec4u(params.cols - 1u)) * params.r_col_stride;

  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var k = 0u; k < params.rank; k++) {
    let rk = r_base + k * params.r_k_stride;
    let rv = vec4f(r_mat[rk.x], r_mat[rk.y], r_mat[rk.z], r_mat[rk.w]);
    let lk = l_base + k * params.l_k_stride;
    acc0 = fma(vec4f(l_mat[lk.x]), rv, acc0);
    acc1 = fma(vec4f(l_mat[lk.y]), rv, acc1);
    acc2 = fma(vec4f(l_mat[lk.z]), rv, acc2);
    acc3 = fma(vec4f(l_mat[lk.w]), rv, acc3);
  }
  store_row(rows4.x, cols4, acc0);
  store_row(rows4.y, cols4, acc1);
  store_row(rows4.z, cols4, acc2);
  store_row(rows4.w, cols4, acc3);
}

// R[k, c..c+3] times the scale.
fn r_block(c: u32, k: u32) -> vec4f {
  let stride = params.r_col_stride;
  let at = c * stride + k * params.r_k_stride;
  return params.scale * vec4f(r_mat[at], r_mat[at + stride], r_mat[at + 2u * stride], r_mat[at + 3u * stride]);
}

@compute @workgroup_size(VEC4_WG, 1, 1)
fn main_vec4(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let tile = wid.y * params.groups_x + wid.x;
  if (tile >= params.tile_count) {
    return;
  }
  let cols4 = params.cols / 4u;
  let col4 = (tile % params.tiles_x) * VEC4_WG + lid.x;
  if (col4 >= cols4) {
    return;
  }
  let c = col4 * 4u;
  let row0 = (tile / params.tiles_x) * VEC4_ROWS;
  let row_end = min(row0 + VEC4_ROWS, params.rows);
  let w_base = params.w_offset / 4u + col4;
  let lk = params.l_k_stride;
  let l_row0 = params.row_start * params.l_row_stride;
  var k = 0u;
  for (; k + 8u <= params.rank; k += 8u) {
    let r0 = r_block(c, k);
    let r1 = r_block(c, k + 1u);
    let r2 = r_block(c, k + 2u);
    let r3 = r_block(c, k + 3u);
    let r4 = r_block(c, k + 4u);
    let r5 = r_block(c, k + 5u);
    let r6 = r_block(c, k + 6u);
    let r7 = r_block(c, k + 7u);
    for (var row = row0; row < row_end; row++) {
      let l = l_row0 + row * params.l_row_stride + k * lk;
      let delta = l_mat[l] * r0 + l_mat[l + lk] * r1 + l_mat[l + 2u * lk] * r2 + l_mat[l + 3u * lk] * r3
        + l_mat[l + 4u * lk] * r4 + l_mat[l + 5u * lk] * r5 + l_mat[l + 6u * lk] * r6 + l_mat[l + 7u * lk] * r7;
      let i = w_base + row * cols4;
      w4[i] = w4[i] + delta;
    }
  }
  if (k + 4u <= params.rank) {
    let r0 = r_block(c, k);
    let r1 = r_block(c, k + 1u);
    let r2 = r_block(c, k + 2u);
    let r3 = r_block(c, k + 3u);
    for (var row = row0; row < row_end; row++) {
      let l = l_row0 + row * params.l_row_stride + k * lk;
      let i = w_base + row * cols4;
      w4[i] = w4[i] + (l_mat[l] * r0 + l_mat[l + lk] * r1 + l_mat[l + 2u * lk] * r2 + l_mat[l + 3u * lk] * r3);
    }
    k += 4u;
  }
  for (; k < params.rank; k++) {
    let r0 = r_block(c, k);
    for (var row = row0; row < row_end; row++) {
      let i = w_base + row * cols4;
      w4[i] = w4[i] + l_mat[l_row0 + row * params.l_row_stride + k * lk] * r0;
    }
  }
}
