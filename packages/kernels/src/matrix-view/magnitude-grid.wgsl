// Reduces a row-major f32 matrix M [rows, cols] (one chunk of its block rows) to a display grid:
// cell (gr, gc) covers the block of rows [gr·BR, min(rows, (gr+1)·BR)) and columns
// [gc·BC, min(cols, (gc+1)·BC)) and holds the largest |M| of the block (max pooling, so one spike
// in a block of thousands still shows) and Σ M² over it (so the Frobenius norm is Σ of the cells).
//
// Bindings: 0 params (uniform); 1 m_words, the chunk's rows as f32 bits, starting `elem_offset`
// words into the binding (the binding is aligned to minStorageBufferOffsetAlignment, the chunk's
// first row need not be); 2 max_bits, the grid's max |M| as f32 bits, [grid_rows, grid_cols];
// 3 sum_sq, the grid's Σ M² (f32), [grid_rows, grid_cols].
//
// Geometry: one invocation per cell of the chunk, WG invocations per workgroup, the workgroups of
// a dispatch folded into 2-D past 65,535 (linear workgroup index = wid.y · groups_x + wid.x); the
// last workgroup is bounds-checked. A cell's block lies wholly inside one chunk (chunks are whole
// block rows), so every cell is written by exactly one invocation and needs no atomics.
//
// WGSL lets implementations assume that no Inf or NaN occurs in f32 arithmetic, so |M| is taken by
// clearing the sign bit and the maximum is taken on those u32 bit patterns (the same order as the
// values for non-negative floats; NaN's patterns sort above +Inf, so a NaN in a block shows as NaN).
// Σ M² is defined for finite blocks only.

struct Params {
  rows: u32,          // rows of M
  cols: u32,          // columns of M
  block_rows: u32,    // BR
  block_cols: u32,    // BC
  grid_cols: u32,
  cell_start: u32,    // first cell of this chunk (grid row · grid_cols)
  cell_count: u32,    // cells of this chunk
  first_row: u32,     // row of M at word elem_offset of the binding
  elem_offset: u32,
  groups_x: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> m_words: array<u32>;
@group(0) @binding(2) var<storage, read_write> max_bits: array<u32>;
@group(0) @binding(3) var<storage, read_write> sum_sq: array<f32>;

override WG: u32 = 64;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let local = (wid.y * params.groups_x + wid.x) * WG + lid;
  if (local >= params.cell_count) {
    return;
  }
  let cell = params.cell_start + local;
  let gr = cell / params.grid_cols;
  let gc = cell % params.grid_cols;
  let r0 = gr * params.block_rows;
  let r1 = min(params.rows, r0 + params.block_rows);
  let c0 = gc * params.block_cols;
  let c1 = min(params.cols, c0 + params.block_cols);
  var best = 0u;
  var sum = 0.0;
  for (var r = r0; r < r1; r++) {
    let base = params.elem_offset + (r - params.first_row) * params.cols;
    for (var c = c0; c < c1; c++) {
      let bits = m_words[base + c];
      best = max(best, bits & 0x7fffffffu);
      let v = bitcast<f32>(bits);
      sum += v * v;
    }
  }
  max_bits[cell] = best;
  sum_sq[cell] = sum;
}
