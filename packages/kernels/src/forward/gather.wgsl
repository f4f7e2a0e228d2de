// out[i, c] (+)= alpha * table value for ids[i]:
//   mode 0 (rows): row ids[i] - row_start of a [rows, dim] table chunk (ids outside the chunk skipped);
//   mode 1 (columns): column ids[i] of a [dim, table_rows] matrix (PEFT's lora_embedding_A).
struct Params {
  count: u32,
  dim: u32,
  mode: u32,
  row_start: u32,
  row_count: u32,
  table_rows: u32,
  accumulate: u32,
  alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = gid.y * nwg.x * 64u + gid.x;
  if (k >= p.count * p.dim) {
    return;
  }
  let i = k / p.dim;
  let c = k % p.dim;
  let id = ids[i];
  var v = 0.0;
  if (p.mode == 0u) {
    if (id < p.row_start || id >= p.row_start + p.row_count) {
      return;
    }
    v = table[(id - p.row_start) * p.dim + c];
  } else {
    v = table[c * p.table_rows + id];
  }
  v = p.alpha * v;
  if (p.accumulate == 1u) {
    out[k] = out[k] + v;
  } else {
    out[k] = v;
  }
}
