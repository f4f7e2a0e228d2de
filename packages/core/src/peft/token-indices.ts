/** Which embedding rows a trainable-tokens adapter trained: only adapter_config.json records them. */
import { canonicalName } from '../gpt2/architecture.js';
import type { LoraAdapterConfig } from './adapter-config.js';

/**
 * PEFT's `trainable_token_indices` for a module: a list targets the input embedding; a dict names
 * modules (matched by full path, by suffix, or in either GPT-2 key layout).
 */
export function trainableTokenIndicesFor(config: LoraAdapterConfig, modulePath: string, isInputEmbedding: boolean): readonly number[] | undefined {
  const tti = config.trainableTokenIndices;
  if (tti === null) return undefined;
  if (Array.isArray(tti)) return isInputEmbedding ? (tti as readonly number[]) : undefined;
  const dict = tti as Readonly<Record<string, readonly number[]>>;
  const key = Object.keys(dict).find((k) => modulePath === k || modulePath.endsWith(`.${k}`) || canonicalName(modulePath) === canonicalName(k));
  return key === undefined ? undefined : dict[key];
}
