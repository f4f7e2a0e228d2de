/**
 * The bar chart's data: ‖ΔW‖_F of each merged tensor, grouped by GPT-2 block (`transformer.h.N.`),
 * one bar per module of the block; tensors outside the blocks (wte, lm_head) in groups of their own
 * after the blocks. Pure; layer-norms-chart.ts draws it.
 */
import { canonicalName } from '@lorafuse/core';

/** One bar: a merged tensor and its norm. */
export interface NormBar {
  readonly tensor: string;
  /** The module within its group (`attn.c_attn`, or `wte` for a group of its own). */
  readonly module: string;
  readonly norm: number;
}

/** The bars of one block (or of one tensor outside the blocks). */
export interface NormGroup {
  /** `0`, `1`, … for blocks; the module's name otherwise. */
  readonly label: string;
  readonly layer: number | undefined;
  readonly bars: readonly NormBar[];
  /** ‖ΔW‖_F of the whole group: √Σ of its bars' squared norms. */
  readonly norm: number;
}

const BLOCK = /^transformer\.h\.(\d+)\.(.+?)(?:\.weight)?$/;
/** GPT-2's block modules in the order they run, so the bars of every block line up. */
const MODULE_ORDER = ['attn.c_attn', 'attn.q_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'];

/** Groups `entries` by block; the modules seen, in a stable order (for colours and the legend). */
export function groupLayerNorms(entries: readonly { tensor: string; norm: number }[]): { groups: NormGroup[]; modules: string[] } {
  const blocks = new Map<number, NormBar[]>();
  const others: NormBar[] = [];
  for (const { tensor, norm } of entries) {
    const m = BLOCK.exec(canonicalName(tensor));
    if (m) {
      const layer = Number(m[1]);
      blocks.set(layer, [...(blocks.get(layer) ?? []), { tensor, module: m[2]!, norm }]);
    } else {
      others.push({ tensor, module: canonicalName(tensor).replace(/^transformer\./, '').replace(/\.weight$/, ''), norm });
    }
  }
  const rank = (module: string) => (MODULE_ORDER.includes(module) ? MODULE_ORDER.indexOf(module) : MODULE_ORDER.length);
  const byModule = (a: NormBar, b: NormBar) => rank(a.module) - rank(b.module) || a.module.localeCompare(b.module);
  const group = (label: string, layer: number | undefined, bars: NormBar[]): NormGroup => ({ label, layer, bars: bars.sort(byModule), norm: Math.sqrt(bars.reduce((s, b) => s + b.norm * b.norm, 0)) });
  const groups = [...blocks.entries()].sort(([a], [b]) => a - b).map(([layer, bars]) => group(String(layer), layer, bars));
  for (const bar of others.sort(byModule)) groups.push(group(bar.module, undefined, [bar]));
  const modules = [...new Set(groups.flatMap((g) => g.bars.map((b) => b.module)))].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  return { groups, modules };
}

/** A round axis top and tick step for values up to `max` (1, 2 or 5 times a power of ten). */
export function niceAxis(max: number, ticks = 4): { top: number; step: number } {
  if (!(max > 0) || !Number.isFinite(max)) return { top: 1, step: 0.5 };
  const raw = max / ticks;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * power).find((s) => s >= raw)!;
  return { top: Math.ceil(max / step) * step, step };
}
