/**
 * PEFT's `check_target_module_exists` rules, to tell which GPT-2 modules an adapter config's
 * `target_modules` select: `exclude_modules` and `modules_to_save` are checked first and win; a string
 * is a regex that must match the whole module path; a list entry matches the path itself or its last
 * dot-separated segments; a layer filter applies to lists only. PEFT builds its LoRA layers from these
 * rules when it loads an adapter and ignores saved tensors of modules they do not select, so the planner
 * checks that the config and the tensors agree. (PEFT may rewrite `target_modules` before saving, into
 * the names it matched or a shorter set of suffixes; either still selects the trained modules.)
 */
import { moduleKind } from '../gpt2/architecture.js';
import type { LoraAdapterConfig } from './adapter-config.js';
import { fullMatches, layerIndexAfter } from './pattern.js';

/** Whether `modulePath` is selected by a `target_modules` / `exclude_modules` entry or regex. */
export function matchesTargets(targets: readonly string[] | string, modulePath: string, field = 'target_modules'): boolean {
  if (typeof targets === 'string') return fullMatches(targets, modulePath, { field });
  return targets.some((t) => modulePath === t || modulePath.endsWith(`.${t}`));
}

/** The layer index PEFT reads from a module path (`transformer.h.3.attn.c_attn` → 3). */
export function layerIndexOf(modulePath: string, layersPattern: readonly string[] | null): number | undefined {
  const patterns = layersPattern ?? [null];
  for (const p of patterns) {
    const layer = layerIndexAfter(p, modulePath);
    if (layer !== undefined) return layer;
  }
  return undefined;
}

/**
 * The parameter of `modulePath` that `target_parameters` selects (`weight`), or undefined. PEFT's rule:
 * `<module>.<param>` equals an entry or ends with `.` + the entry. GPT-2 modules have one 2-D
 * parameter, their weight (PEFT wraps only 2-D and 3-D parameters).
 */
export function targetParameterOf(config: LoraAdapterConfig, modulePath: string): string | undefined {
  const key = `${modulePath}.weight`;
  return (config.targetParameters ?? []).some((t) => key === t || key.endsWith(`.${t}`)) ? 'weight' : undefined;
}

/** Modules PEFT would wrap with LoRA for this config, among `modules` (leaf module paths). */
export function selectLoraTargets(config: LoraAdapterConfig, modules: readonly string[]): string[] {
  return modules.filter((m) => whyNotLoraTarget(config, m) === null);
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Why PEFT would not put a LoRA layer on `modulePath` (as PEFT names it: `transformer.h.0.attn.c_attn`)
 * under this config, naming the field; `null` when it would.
 */
export function whyNotLoraTarget(config: LoraAdapterConfig, modulePath: string): string | null {
  // Parameters are wrapped on their own pass, which looks at target_parameters alone.
  if (targetParameterOf(config, modulePath) !== undefined) return null;
  const targets = config.targetModules ?? ['c_attn']; // PEFT's default for gpt2
  if (config.excludeModules !== null && matchesTargets(config.excludeModules, modulePath, 'exclude_modules')) return `exclude_modules ${JSON.stringify(config.excludeModules)} excludes it`;
  const saved = (config.modulesToSave ?? []).find((s) => new RegExp(`(^|.*\\.)${escapeRegex(s)}($|\\..*)`).test(modulePath));
  if (saved !== undefined) return `modules_to_save lists "${saved}", which PEFT trains whole instead of with LoRA`;
  if (typeof targets === 'string' && targets.toLowerCase() === 'all-linear') {
    const kind = moduleKind(modulePath);
    if ((kind === 'conv1d' || kind === 'linear') && modulePath !== 'lm_head') return null;
    return 'target_modules "all-linear" covers only Linear and Conv1D layers other than the output embedding';
  }
  if (Array.isArray(targets) && targets.length === 0) return 'target_modules is empty';
  if (!matchesTargets(targets, modulePath)) return `target_modules ${JSON.stringify(targets)} does not match it`;
  if (typeof targets !== 'string' && config.layersToTransform !== null) {
    const layer = layerIndexOf(modulePath, config.layersPattern);
    const field = config.layersPattern ? `layers_to_transform ${JSON.stringify(config.layersToTransform)} with layers_pattern ${JSON.stringify(config.layersPattern)}` : `layers_to_transform ${JSON.stringify(config.layersToTransform)}`;
    if (layer === undefined) return `${field} selects layers, and PEFT finds no layer index in its path`;
    if (!config.layersToTransform.includes(layer)) return `${field} leaves out its layer ${layer}`;
  }
  return null;
}
