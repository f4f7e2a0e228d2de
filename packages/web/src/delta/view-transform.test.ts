import { describe, expect, it } from 'vitest';
import { cellAt, clampView, gridFromPixel, panBy, WHOLE, zoomAbout, type ViewFrame } from './view-transform.js';

const frame: ViewFrame = { width: 800, height: 400, gridRows: 100, gridCols: 50 };
/** (x, y) through a WGSL-layout mat3 (column-major, columns padded to 4). */
const apply = (m: Float32Array, x: number, y: number) => [m[0]! * x + m[4]! * y + m[8]!, m[1]! * x + m[5]! * y + m[9]!];

describe('heatmap view transform', () => {
  it('at zoom 1 stretches the grid over the canvas', () => {
    const m = gridFromPixel(WHOLE, frame);
    expect(apply(m, 0, 0)).toEqual([0, 0]);
    expect(apply(m, 800, 400)).toEqual([50, 100]);
    expect(cellAt(WHOLE, frame, 799.5, 399.5)).toEqual({ row: 99, col: 49 });
    expect(cellAt(WHOLE, frame, 800.5, 10)).toBeUndefined();
  });

  it('zooms about the cursor: the cell under it stays under it', () => {
    const before = apply(gridFromPixel(WHOLE, frame), 200, 100);
    const zoomed = zoomAbout(WHOLE, frame, 4, 200, 100);
    expect(zoomed.zoom).toBe(4);
    const after = apply(gridFromPixel(zoomed, frame), 200, 100);
    expect(after[0]).toBeCloseTo(before[0]!, 4);
    expect(after[1]).toBeCloseTo(before[1]!, 4);
    // A cell is 16 pixels wide at zoom 1, 64 at zoom 4.
    expect(apply(gridFromPixel(zoomed, frame), 264, 100)[0]! - after[0]!).toBeCloseTo(1, 4);
  });

  it('never zooms out past the whole grid nor pans it off the canvas', () => {
    expect(zoomAbout(WHOLE, frame, 0.5, 10, 10)).toEqual(WHOLE);
    const zoomed = zoomAbout(WHOLE, frame, 2, 400, 200);
    expect(panBy(zoomed, frame, 10_000, 10_000)).toEqual({ zoom: 2, panX: 0, panY: 0 });
    expect(panBy(zoomed, frame, -10_000, -10_000)).toEqual({ zoom: 2, panX: -800, panY: -400 });
    expect(clampView({ zoom: 1e9, panX: 0, panY: 0 }, frame).zoom).toBe(1024);
  });
});
