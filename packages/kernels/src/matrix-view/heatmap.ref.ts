/**
 * CPU twin of the heatmap render pipeline: the same colour stops, the same pixel → cell mapping
 * (pixel centres through `gridFromPixel`, nearest cell), computed in f64 and rounded to 8 bits.
 */

/** The colour map's stops (linear RGB in [0, 1]) for t = 0, 1/7, …, 1; the same as heatmap.wgsl. */
export const HEATMAP_STOPS: readonly (readonly [number, number, number])[] = [
  [0.0, 0.0, 0.016],
  [0.157, 0.043, 0.329],
  [0.396, 0.082, 0.431],
  [0.624, 0.165, 0.388],
  [0.831, 0.282, 0.259],
  [0.961, 0.49, 0.082],
  [0.98, 0.753, 0.157],
  [0.988, 1.0, 0.643],
];
/** Colour of pixels outside the grid. */
export const HEATMAP_BACKGROUND: readonly [number, number, number] = [0.925, 0.925, 0.925];
/** Colour of a NaN cell. */
export const HEATMAP_NAN: readonly [number, number, number] = [0.0, 0.8, 1.0];

/** The colour map at t (clamped to [0, 1]), RGB in [0, 1]. */
export function heatmapColorRef(t: number): [number, number, number] {
  const s = Math.min(1, Math.max(0, t)) * 7;
  const i = Math.min(Math.floor(s), 6);
  const f = s - i;
  const a = HEATMAP_STOPS[i]!;
  const b = HEATMAP_STOPS[i + 1]!;
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

/** Parameters of {@link heatmapRef}. */
export interface HeatmapRefParams {
  /** The grid, row-major f32 `[gridRows, gridCols]`, values ≥ 0 (or NaN). */
  cells: Float32Array;
  gridRows: number;
  gridCols: number;
  /** Size of the picture in pixels. */
  width: number;
  height: number;
  /** Pixel (x, y) → grid (column, row): a 3×3 column-major matrix in WGSL's mat3x3f layout (12 floats, each column padded to 4). */
  gridFromPixel: ArrayLike<number>;
  /** The value drawn with the map's last colour. */
  maxValue: number;
}

/** The picture the heatmap pipeline draws: RGBA8, row-major from the top left, `width · height · 4` bytes. */
export function heatmapRef(p: HeatmapRefParams): Uint8Array {
  const out = new Uint8Array(p.width * p.height * 4);
  const m = p.gridFromPixel;
  const cellBits = new Uint32Array(p.cells.buffer, p.cells.byteOffset, p.cells.length);
  for (let y = 0; y < p.height; y++) {
    for (let x = 0; x < p.width; x++) {
      const px = x + 0.5;
      const py = y + 0.5;
      const gx = m[0]! * px + m[4]! * py + m[8]!;
      const gy = m[1]! * px + m[5]! * py + m[9]!;
      let rgb: readonly [number, number, number];
      if (gx < 0 || gy < 0 || gx >= p.gridCols || gy >= p.gridRows) rgb = HEATMAP_BACKGROUND;
      else {
        const bits = cellBits[Math.floor(gy) * p.gridCols + Math.floor(gx)]! & 0x7fffffff;
        if (bits > 0x7f800000) rgb = HEATMAP_NAN;
        else if (bits === 0x7f800000) rgb = heatmapColorRef(1);
        else rgb = heatmapColorRef(p.maxValue > 0 ? Math.abs(p.cells[Math.floor(gy) * p.gridCols + Math.floor(gx)]!) / p.maxValue : 0);
      }
      const o = (y * p.width + x) * 4;
      out[o] = Math.round(rgb[0] * 255);
      out[o + 1] = Math.round(rgb[1] * 255);
      out[o + 2] = Math.round(rgb[2] * 255);
      out[o + 3] = 255;
    }
  }
  return out;
}
