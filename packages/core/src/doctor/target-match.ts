/**
 * PEFT's `check_target_module_exists` rules (SPEC §1.2), to tell which GPT-2 modules an adapter
 * config's `target_modules` select. Used by the doctor only: merges follow the adapter's tensor keys.
 */
import type { LoraAdapterConfig } from '../peft/adapter-config.js';
import { fullMatches, layerIndexAfter } from '../peft/pattern.js';

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

/** Modules PEFT would wrap with LoRA for this config, among `modules` (leaf module paths). */
export function selectLoraTargets(config: LoraAdapterConfig, modules: readonly string[]): string[] {
  const targets = config.targetModules ?? ['c_attn']; // PEFT's default for gpt2
  if (typeof targets === 'string' && targets.toLowerCase() === 'all-linear') {
    return modules.filter((m) => /\.(c_attn|c_proj|c_fc|q_attn)$/.test(m));
  }
  return modules.filter((m) => {
    if (config.excludeModules !== null && matchesTargets(config.excludeModules, m, 'exclude_modules')) return false;
    if ((config.modulesToSave ?? []).some((s) => new RegExp(`(^|.*\\.)${escapeRegex(s)}($|\\..*)`).test(m))) return false;
    if (!matchesTargets(targets, m)) return false;
    if (typeof targets !== 'string' && config.layersToTransform !== null) {
      const layer = layerIndexOf(m, config.layersPattern);
      if (layer === undefined || !config.layersToTransform.includes(layer)) return false;
    }
    return true;
  });
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** GPT-2 names for modules of other architectures, for suggestions. */
export const GPT2_EQUIVALENTS: Readonly<Record<string, string>> = {
  query: 'c_attn',
  key: 'c_attn',
  value: 'c_attn',
  q_proj: 'c_attn',
  k_proj: 'c_attn',
  v_proj: 'c_attn',
  qkv_proj: 'c_attn',
  query_key_value: 'c_attn',
  Wqkv: 'c_attn',
  dense: 'attn.c_proj',
  o_proj: 'attn.c_proj',
  out_proj: 'attn.c_proj',
  fc1: 'c_fc',
  up_proj: 'c_fc',
  gate_proj: 'c_fc',
  dense_h_to_4h: 'c_fc',
  fc2: 'mlp.c_proj',
  down_proj: 'mlp.c_proj',
  dense_4h_to_h: 'mlp.c_proj',
  embed_tokens: 'wte',
  word_embeddings: 'wte',
};
