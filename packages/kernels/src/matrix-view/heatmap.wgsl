// Draws a grid of non-negative magnitudes (a magnitude grid: row-major [grid_rows, grid_cols] f32
// bits) as a heatmap filling the render target. One full-screen triangle; the fragment shader maps
// its pixel centre through `grid_from_pixel` (pixel (x, y) from the target's top left, in pixels →
// grid (column, row) in cells), so pan and zoom are a change of that one uniform and the grid is
// never uploaded again. The cell under the pixel is taken nearest (no filtering: a cell of a max-
// pooled grid is a block's maximum, and blending neighbours would invent values no block has).
//
// Bindings: 0 params (uniform); 1 cells, the grid as f32 bits.
//
// Colour: t = cell / max_value clamped to [0, 1] (0 when max_value is 0), through a piecewise-linear
// map of 8 stops (dark for 0, light for the maximum; the same stops as heatmap.ref.ts). Pixels
// outside the grid get BACKGROUND; a NaN cell gets NAN_COLOUR. NaN and Inf are recognised from the
// bit patterns, since WGSL may assume finite arithmetic.

struct Params {
  grid_from_pixel: mat3x3f,
  grid_rows: u32,
  grid_cols: u32,
  max_value: f32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> cells: array<u32>;

const STOPS = array<vec3f, 8>(
  vec3f(0.000, 0.000, 0.016),
  vec3f(0.157, 0.043, 0.329),
  vec3f(0.396, 0.082, 0.431),
  vec3f(0.624, 0.165, 0.388),
  vec3f(0.831, 0.282, 0.259),
  vec3f(0.961, 0.490, 0.082),
  vec3f(0.980, 0.753, 0.157),
  vec3f(0.988, 1.000, 0.643),
);
const BACKGROUND = vec4f(0.925, 0.925, 0.925, 1.0);
const NAN_COLOUR = vec4f(0.0, 0.8, 1.0, 1.0);
const INF_BITS: u32 = 0x7f800000u;

@vertex
fn vs(@builtin(vertex_index) i: u32) -> @builtin(position) vec4f {
  let xy = array<vec2f, 3>(vec2f(-1.0, -1.0), vec2f(3.0, -1.0), vec2f(-1.0, 3.0));
  return vec4f(xy[i], 0.0, 1.0);
}

@fragment
fn fs(@builtin(position) pos: vec4f) -> @location(0) vec4f {
  let g = params.grid_from_pixel * vec3f(pos.xy, 1.0);
  if (g.x < 0.0 || g.y < 0.0 || g.x >= f32(params.grid_cols) || g.y >= f32(params.grid_rows)) {
    return BACKGROUND;
  }
  let bits = cells[u32(g.y) * params.grid_cols + u32(g.x)] & 0x7fffffffu;
  if (bits > INF_BITS) {
    return NAN_COLOUR;
  }
  var t = 0.0;
  if (bits == INF_BITS) {
    t = 1.0;
  } else if (params.max_value > 0.0) {
    t = clamp(bitcast<f32>(bits) / params.max_value, 0.0, 1.0);
  }
  let s = t * 7.0;
  let i = min(u32(s), 6u);
  return vec4f(mix(STOPS[i], STOPS[i + 1u], s - f32(i)), 1.0);
}
