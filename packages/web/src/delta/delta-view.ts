/**
 * The page's picture of what the adapter changed: a WebGPU heatmap of |ΔW| for the tensor picked in
 * a select (drag to pan, wheel to zoom, double-click for the whole matrix; the cell under the
 * pointer is read out), a colour bar, and the per-layer bar chart of ‖ΔW‖_F.
 *
 * The heatmap draws from each tensor's kept magnitude grid (delta-picture.ts), uploaded once when
 * the tensor is picked; a redraw only rewrites the 64-byte view uniform. Zooming in samples that
 * grid nearest rather than re-reducing the visible region: the full ΔW is gone once its tensor is
 * merged (keeping ~50 of them, up to 154 MB each, is what the grid avoids), so finer detail would
 * mean recomputing ΔW from A and B; a grid of ≤ 1024 cells a side already holds more than the canvas
 * shows across, and each cell is its block's maximum, so no spike is lost at any zoom.
 *
 * The render device is the page's own, apart from the merge's (which is destroyed after each merge).
 * The render pipeline draws into a texture that is read back into a 2-D canvas, not into a 'webgpu'
 * canvas context: in headless Chromium on SwiftShader (where the tests and the README's picture run)
 * a 'webgpu' canvas presents nothing and can take the GPU process down, 2-D canvases with it. The
 * read-back is one 720 × 360 RGBA frame (1 MB) per redraw, and a redraw only happens on a change.
 */
import { heatmapColorRef } from '@lorafuse/kernels/reference';
import { encodeHeatmap } from '@lorafuse/kernels/view';
import type { OnDelta } from '../merge-in-page.js';
import { captureDeltaPicture, type DeltaPicture } from './delta-picture.js';
import { drawLayerNorms, formatNorm } from './layer-norms-chart.js';
import { cellAt, gridFromPixel, panBy, WHOLE, zoomAbout, type ViewFrame, type ViewState } from './view-transform.js';

/** What main.ts drives: before a merge, `begin` (clears, and gives the hook that keeps each ΔW's picture); after it, `show`. */
export interface DeltaView {
  begin(): OnDelta;
  show(): Promise<void>;
  clear(): void;
}

function make<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, testId?: string): HTMLElementTagNameMap[K] {
  const node = Object.assign(document.createElement(tag), props);
  if (testId !== undefined) node.setAttribute('data-testid', testId);
  return node;
}

/** The colour map as a CSS gradient: its stops, interpolated linearly in sRGB as the shader does. */
function colourBarGradient(): string {
  const stops = Array.from({ length: 8 }, (_, i) => {
    const [r, g, b] = heatmapColorRef(i / 7);
    return `rgb(${Math.round(r * 255)}, ${Math.round(g * 255)}, ${Math.round(b * 255)}) ${((i / 7) * 100).toFixed(2)}%`;
  });
  return `linear-gradient(to right, ${stops.join(', ')})`;
}

/** Builds the view inside `root` (hidden until a merge has pictures). */
export function mountDeltaView(root: HTMLElement): DeltaView {
  const select = make('select', {}, 'delta-tensor');
  const caption = make('p', { className: 'delta-caption' }, 'delta-caption');
  const canvas = make('canvas', { width: 720, height: 360, title: 'drag to pan, wheel to zoom, double-click to see the whole matrix' }, 'delta-view');
  canvas.style.cssText = 'width: 100%; max-width: 720px; aspect-ratio: 2 / 1; cursor: grab; touch-action: none; display: block; border: 1px solid #ccc';
  const hover = make('p', { className: 'delta-hover', textContent: '\u00a0' }, 'delta-hover');
  const bar = make('span');
  bar.style.cssText = `display: inline-block; width: 256px; height: 12px; vertical-align: middle; border: 1px solid #ccc; background: ${colourBarGradient()}`;
  const barMin = make('span', { textContent: '0 ' });
  const barMax = make('span');
  const legend = make('p', {}, 'delta-legend');
  legend.append('|ΔW|: ', barMin, bar, barMax, ' (each cell: the largest |ΔW| of its block)');
  const chart = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  chart.dataset['testid'] = 'layer-norms';
  chart.style.cssText = 'width: 100%; max-width: 720px; display: block';
  const chartNote = make('p', { textContent: 'Bars: ‖ΔW‖_F (Frobenius norm of Σ s·B·A) per module; above each layer, the norm of all its modules together (√Σ of squares). Hover a bar for its value. Tensors replaced whole (modules_to_save) have no ΔW and are not shown.' });
  root.append(make('h2', { textContent: 'What the adapter changed' }), make('label', { textContent: 'Tensor: ' }), select, caption, canvas, hover, legend, make('h3', { textContent: 'ΔW norm per layer' }), chart, chartNote);

  let device: GPUDevice | undefined;
  const context = canvas.getContext('2d');
  // The texture drawn into and the buffer it is read back through, one frame's worth each.
  let target: { texture: GPUTexture; staging: GPUBuffer; bytesPerRow: number } | undefined;
  let drawing = false;
  let pictures: readonly DeltaPicture[] = [];
  let current: { picture: DeltaPicture; cells: GPUBuffer } | undefined;
  let view: ViewState = WHOLE;
  let frameRequested = false;
  let draws = 0;

  const frame = (): ViewFrame => ({ width: canvas.width, height: canvas.height, gridRows: current?.picture.shape.gridRows ?? 0, gridCols: current?.picture.shape.gridCols ?? 0 });

  async function startDevice(): Promise<void> {
    if (device) return;
    const adapter = await navigator.gpu?.requestAdapter();
    if (!adapter) throw new Error('no WebGPU adapter for the picture');
    device = await adapter.requestDevice({ label: 'lorafuse app ΔW picture device' });
    const bytesPerRow = Math.ceil((canvas.width * 4) / 256) * 256;
    target = {
      texture: device.createTexture({ label: 'ΔW picture target', size: [canvas.width, canvas.height], format: 'rgba8unorm', usage: GPUTextureUsage.RENDER_ATTACHMENT | GPUTextureUsage.COPY_SRC }),
      staging: device.createBuffer({ label: 'ΔW picture read-back', size: bytesPerRow * canvas.height, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }),
      bytesPerRow,
    };
  }

  async function draw(): Promise<void> {
    frameRequested = false;
    if (!device || !target || !context || !current || drawing) return;
    drawing = true;
    try {
      const p = current.picture;
      const encoder = device.createCommandEncoder({ label: 'ΔW picture' });
      const drawn = encodeHeatmap(device, encoder, {
        target: target.texture.createView(), format: 'rgba8unorm',
        cells: current.cells, gridRows: p.shape.gridRows, gridCols: p.shape.gridCols,
        gridFromPixel: gridFromPixel(view, frame()), maxValue: Number.isFinite(p.maxAbs) ? p.maxAbs : 0,
        label: `ΔW picture of ${p.tensor}`,
      });
      encoder.copyTextureToBuffer({ texture: target.texture }, { buffer: target.staging, bytesPerRow: target.bytesPerRow }, [canvas.width, canvas.height]);
      device.queue.submit([encoder.finish()]);
      drawn.destroy();
      await target.staging.mapAsync(GPUMapMode.READ);
      const rows = new Uint8Array(target.staging.getMappedRange());
      const image = context.createImageData(canvas.width, canvas.height);
      for (let y = 0; y < canvas.height; y++) image.data.set(rows.subarray(y * target.bytesPerRow, y * target.bytesPerRow + canvas.width * 4), y * canvas.width * 4);
      target.staging.unmap();
      context.putImageData(image, 0, 0);
      canvas.dataset['tensor'] = p.tensor;
      canvas.dataset['draws'] = String(++draws);
      canvas.dataset['zoom'] = String(view.zoom);
    } finally {
      drawing = false;
    }
    // A change that came in while this frame was read back.
    if (pending) {
      pending = false;
      redraw();
    }
  }
  let pending = false;
  const redraw = () => {
    if (drawing) pending = true;
    else if (!frameRequested) {
      frameRequested = true;
      requestAnimationFrame(() => void draw());
    }
  };

  function pick(tensor: string): void {
    const picture = pictures.find((p) => p.tensor === tensor);
    if (!picture || !device) return;
    current?.cells.destroy();
    const cells = device.createBuffer({ label: `ΔW grid of ${tensor}`, size: Math.max(4, picture.cells.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    if (picture.cells.byteLength > 0) device.queue.writeBuffer(cells, 0, picture.cells as Float32Array<ArrayBuffer>);
    current = { picture, cells };
    view = WHOLE;
    const s = picture.shape;
    caption.textContent = `${tensor}: ΔW [${picture.rows} × ${picture.cols}] as stored, drawn as ${s.gridRows} × ${s.gridCols} cells of ${s.blockRows} × ${s.blockCols}; max |ΔW| = ${formatNorm(picture.maxAbs)}, ‖ΔW‖_F = ${formatNorm(picture.norm)}`;
    barMax.textContent = ` ${formatNorm(picture.maxAbs)}`;
    redraw();
  }

  select.addEventListener('change', () => pick(select.value));

  const toCanvas = (e: MouseEvent) => {
    const r = canvas.getBoundingClientRect();
    return [((e.clientX - r.left) * canvas.width) / r.width, ((e.clientY - r.top) * canvas.height) / r.height] as const;
  };
  let dragFrom: readonly [number, number] | undefined;
  canvas.addEventListener('pointerdown', (e) => {
    dragFrom = toCanvas(e);
    canvas.setPointerCapture(e.pointerId);
    canvas.style.cursor = 'grabbing';
  });
  canvas.addEventListener('pointerup', (e) => {
    dragFrom = undefined;
    canvas.releasePointerCapture(e.pointerId);
    canvas.style.cursor = 'grab';
  });
  canvas.addEventListener('pointermove', (e) => {
    const [x, y] = toCanvas(e);
    if (dragFrom) {
      view = panBy(view, frame(), x - dragFrom[0], y - dragFrom[1]);
      dragFrom = [x, y];
      redraw();
    }
    const cell = current && cellAt(view, frame(), x, y);
    if (current && cell) {
      const s = current.picture.shape;
      const r0 = cell.row * s.blockRows;
      const c0 = cell.col * s.blockCols;
      const span = (a: number, n: number, max: number) => (n === 1 || a + 1 >= max ? `${a}` : `${a}–${Math.min(max, a + n) - 1}`);
      hover.textContent = `row ${span(r0, s.blockRows, s.rows)}, column ${span(c0, s.blockCols, s.cols)}: max |ΔW| = ${current.picture.cells[cell.row * s.gridCols + cell.col]!.toPrecision(4)}`;
    }
  });
  canvas.addEventListener('wheel', (e) => {
    e.preventDefault();
    const [x, y] = toCanvas(e);
    view = zoomAbout(view, frame(), Math.exp(-e.deltaY * 0.002), x, y);
    redraw();
  }, { passive: false });
  canvas.addEventListener('dblclick', () => {
    view = WHOLE;
    redraw();
  });

  let kept: DeltaPicture[] = [];
  let missed: string[] = [];
  const clear = () => {
    pictures = [];
    current?.cells.destroy();
    current = undefined;
    root.hidden = true;
  };
  return {
    begin() {
      clear();
      kept = [];
      missed = [];
      return async (mergeDevice, t, delta) => {
        // A picture that cannot be made must not fail the merge: the tensor is left out and named.
        try {
          kept.push(await captureDeltaPicture(mergeDevice, t.name, t.rows, t.cols, delta));
        } catch (e) {
          missed.push(`${t.name} (${e instanceof Error ? e.message : String(e)})`);
        }
      };
    },
    async show() {
      pictures = kept;
      root.hidden = pictures.length === 0;
      if (pictures.length === 0) return;
      drawLayerNorms(chart, pictures);
      // The select lists tensors in the chart's order: by block, then the others.
      const order = [...chart.querySelectorAll('rect[data-tensor]')].map((r) => r.getAttribute('data-tensor')!);
      select.replaceChildren(...order.map((t) => make('option', { value: t, textContent: t })));
      chartNote.dataset['missed'] = String(missed.length);
      if (missed.length > 0) chartNote.textContent += ` No picture of: ${missed.join('; ')}.`;
      await startDevice();
      pick(order[0]!);
    },
    clear,
  };
}
