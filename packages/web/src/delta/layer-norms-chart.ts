/**
 * The per-layer bar chart of ‖ΔW‖_F as SVG: one group of bars per GPT-2 block (a bar per module,
 * coloured by module, with a legend), labelled axes, the group's norm above it and every bar's exact
 * value in its tooltip and in `data-norm` (full precision, for tests and for copying).
 */
import { groupLayerNorms, niceAxis } from './layer-norms.js';

const SVG = 'http://www.w3.org/2000/svg';
/** Module colours (colour-blind-safe Okabe–Ito), in the legend's order. */
const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#000000'];
const WIDTH = 720;
const HEIGHT = 260;
const MARGIN = { left: 64, right: 12, top: 28, bottom: 44 };

function el<K extends keyof SVGElementTagNameMap>(name: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A norm for labels: 4 significant digits. */
export const formatNorm = (v: number) => (v === 0 ? '0' : v.toPrecision(4));

/** Draws the chart of `entries` (tensor and ‖ΔW‖_F) into `svg`, replacing what it held. */
export function drawLayerNorms(svg: SVGSVGElement, entries: readonly { tensor: string; norm: number }[]): void {
  const { groups, modules } = groupLayerNorms(entries);
  svg.replaceChildren();
  svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', 'Frobenius norm of ΔW per layer and module');
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const max = Math.max(0, ...groups.flatMap((g) => g.bars.map((b) => b.norm)));
  const { top, step } = niceAxis(max);
  const y = (v: number) => MARGIN.top + plotH - (v / top) * plotH;
  const style = { 'font-size': 11, 'font-family': 'system-ui, sans-serif', fill: '#333' };

  for (let v = 0; v <= top + step / 2; v += step) {
    svg.append(el('line', { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(v), y2: y(v), stroke: v === 0 ? '#333' : '#ddd' }));
    svg.append(el('text', { ...style, x: MARGIN.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, String(Number(v.toPrecision(12)))));
  }
  svg.append(el('text', { ...style, x: 14, y: MARGIN.top + plotH / 2, 'text-anchor': 'middle', transform: `rotate(-90 14 ${MARGIN.top + plotH / 2})` }, '‖ΔW‖_F'));
  svg.append(el('text', { ...style, x: MARGIN.left + plotW / 2, y: HEIGHT - 6, 'text-anchor': 'middle' }, 'layer (transformer.h.N), then tensors outside the blocks'));

  const groupW = plotW / Math.max(1, groups.length);
  const barW = (groupW * 0.8) / Math.max(1, Math.max(...groups.map((g) => g.bars.length)));
  groups.forEach((g, i) => {
    const x0 = MARGIN.left + i * groupW + groupW * 0.1;
    const node = el('g', { 'data-group': g.label, 'data-group-norm': g.norm });
    g.bars.forEach((bar, j) => {
      const rect = el('rect', {
        x: x0 + j * barW, y: y(bar.norm), width: Math.max(1, barW - 1), height: Math.max(0, y(0) - y(bar.norm)),
        fill: PALETTE[modules.indexOf(bar.module) % PALETTE.length]!,
        'data-tensor': bar.tensor, 'data-module': bar.module, 'data-norm': bar.norm,
      });
      rect.append(el('title', {}, `${bar.tensor}: ‖ΔW‖_F = ${bar.norm}`));
      node.append(rect);
    });
    node.append(el('text', { ...style, x: x0 + (g.bars.length * barW) / 2, y: HEIGHT - MARGIN.bottom + 14, 'text-anchor': 'middle' }, g.label));
    if (g.bars.length > 1 || groups.length <= 16) {
      const tallest = Math.max(...g.bars.map((b) => b.norm));
      node.append(el('text', { ...style, 'font-size': 9, x: x0 + (g.bars.length * barW) / 2, y: y(tallest) - 3, 'text-anchor': 'middle' }, formatNorm(g.norm)));
    }
    svg.append(node);
  });

  let lx = MARGIN.left;
  for (const [k, module] of modules.entries()) {
    svg.append(el('rect', { x: lx, y: 8, width: 10, height: 10, fill: PALETTE[k % PALETTE.length]! }));
    const label = el('text', { ...style, x: lx + 14, y: 17 }, module);
    svg.append(label);
    lx += 22 + module.length * 6.5;
  }
}
