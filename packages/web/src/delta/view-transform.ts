/**
 * Pan and zoom of the ΔW heatmap as one affine map, built with wgpu-matrix's mat3 (the layout of
 * WGSL's mat3x3f, so the inverse goes to the shader as it is). The grid is stretched to fill the
 * canvas at zoom 1 (a 50257 × 768 embedding would be a one-pixel sliver at its true aspect), zoom
 * magnifies about a fixed point, and the pan is clamped so the picture always covers the canvas.
 */
import { mat3, vec2 } from 'wgpu-matrix';

/** The view: magnification and offset of the zoomed picture, in canvas pixels (device pixels). */
export interface ViewState {
  /** ≥ 1; 1 shows the whole grid. */
  readonly zoom: number;
  /** Where the grid's top-left corner is drawn (≤ 0 once zoomed in). */
  readonly panX: number;
  readonly panY: number;
}

/** The canvas (device pixels) and the grid (cells) a view maps between. */
export interface ViewFrame {
  readonly width: number;
  readonly height: number;
  readonly gridRows: number;
  readonly gridCols: number;
}

/** The most a view zooms in: enough to make one cell of a 1024-cell side fill a large canvas. */
export const MAX_ZOOM = 1024;

/** The whole grid on the whole canvas. */
export const WHOLE: ViewState = { zoom: 1, panX: 0, panY: 0 };

/** Canvas pixel ← grid cell (column, row): translate(pan) · scale(zoom) · scale(fill). */
export function pixelFromGrid(view: ViewState, frame: ViewFrame): Float32Array {
  const fill = mat3.scaling([frame.width / Math.max(1, frame.gridCols), frame.height / Math.max(1, frame.gridRows)]);
  const zoomed = mat3.multiply(mat3.scaling([view.zoom, view.zoom]), fill);
  return mat3.multiply(mat3.translation([view.panX, view.panY]), zoomed);
}

/** Grid cell (column, row) ← canvas pixel: the uniform the heatmap shader maps each pixel with. */
export function gridFromPixel(view: ViewState, frame: ViewFrame): Float32Array {
  return mat3.inverse(pixelFromGrid(view, frame));
}

/** The grid cell (column, row) under a canvas pixel, or undefined off the grid. */
export function cellAt(view: ViewState, frame: ViewFrame, x: number, y: number): { row: number; col: number } | undefined {
  const g = vec2.transformMat3([x, y], gridFromPixel(view, frame));
  const col = Math.floor(g[0]!);
  const row = Math.floor(g[1]!);
  return col >= 0 && row >= 0 && col < frame.gridCols && row < frame.gridRows ? { row, col } : undefined;
}

/** Keeps the picture over the whole canvas: zoom in [1, MAX_ZOOM], pan in [size − size·zoom, 0]. */
export function clampView(view: ViewState, frame: ViewFrame): ViewState {
  const zoom = Math.min(MAX_ZOOM, Math.max(1, view.zoom));
  const clamp = (pan: number, size: number) => Math.min(0, Math.max(size - size * zoom, pan));
  return { zoom, panX: clamp(view.panX, frame.width), panY: clamp(view.panY, frame.height) };
}

/** Zoom by `factor` keeping the grid point under canvas pixel (x, y) where it is. */
export function zoomAbout(view: ViewState, frame: ViewFrame, factor: number, x: number, y: number): ViewState {
  const zoom = Math.min(MAX_ZOOM, Math.max(1, view.zoom * factor));
  const k = zoom / view.zoom;
  return clampView({ zoom, panX: x - (x - view.panX) * k, panY: y - (y - view.panY) * k }, frame);
}

/** Move the picture by (dx, dy) canvas pixels. */
export function panBy(view: ViewState, frame: ViewFrame, dx: number, dy: number): ViewState {
  return clampView({ zoom: view.zoom, panX: view.panX + dx, panY: view.panY + dy }, frame);
}
