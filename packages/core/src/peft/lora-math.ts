/**
 * LoRA hyper-parameters per module: which rank and alpha apply, and the resulting scale (docs/merge-math.md).
 * Kept apart from key mapping and planning, as PEFT keeps `layer.py` apart from `model.py`.
 */
import type { LoraAdapterConfig } from './adapter-config.js';
import { patternKeyMatches } from './pattern.js';

/**
 * PEFT's `get_pattern_key`: the first pattern key (in file order) whose regex `(.*\.)?(key)$` matches
 * the module path from its start; `undefined` when none does.
 */
export function findPatternKey(patternKeys: readonly string[], modulePath: string, field = 'rank_pattern'): string | undefined {
  for (const key of patternKeys) {
    if (patternKeyMatches(key, modulePath, { field: `${field}.${key}` })) return key;
  }
  return undefined;
}

/** `alpha / r`, or `alpha / sqrt(r)` with rsLoRA. */
export function loraScale(alpha: number, rank: number, useRslora: boolean): number {
  return useRslora ? alpha / Math.sqrt(rank) : alpha / rank;
}

/** The rank, alpha and scale one module uses. */
export interface ModuleHyperparams {
  /** From `lora_A`'s first dimension: the saved factors have the trained rank, whatever `r` / `rank_pattern` say. */
  readonly rank: number;
  /** What `r` / `rank_pattern` say; differs from `rank` only in an inconsistent adapter. */
  readonly configuredRank: number;
  readonly alpha: number;
  readonly scale: number;
  /** The `rank_pattern` / `alpha_pattern` keys that applied, if any. */
  readonly rankPatternKey?: string;
  readonly alphaPatternKey?: string;
}

/**
 * Resolves rank and alpha for a module. `modulePath` is the path PEFT matched patterns against: the
 * adapter key without `base_model.model.` and without the `.lora_*` suffix (`transformer.h.1.mlp.c_proj`).
 */
export function moduleHyperparams(config: LoraAdapterConfig, modulePath: string, rankFromShape: number): ModuleHyperparams {
  const rankKey = findPatternKey(config.rankPattern.map(([k]) => k), modulePath, 'rank_pattern');
  const alphaKey = findPatternKey(config.alphaPattern.map(([k]) => k), modulePath, 'alpha_pattern');
  const configuredRank = rankKey === undefined ? config.r : (config.rankPattern.find(([k]) => k === rankKey)?.[1] ?? config.r);
  const alpha = alphaKey === undefined ? config.loraAlpha : (config.alphaPattern.find(([k]) => k === alphaKey)?.[1] ?? config.loraAlpha);
  return {
    rank: rankFromShape,
    configuredRank,
    alpha,
    scale: loraScale(alpha, rankFromShape, config.useRslora),
    ...(rankKey === undefined ? {} : { rankPatternKey: rankKey }),
    ...(alphaKey === undefined ? {} : { alphaPatternKey: alphaKey }),
  };
}
