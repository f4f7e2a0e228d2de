/**
 * What each tensor key of `adapter_model.safetensors` means: a LoRA factor, a full
 * replacement tensor (modules_to_save, saved embeddings, trained biases), or a feature lorafuse
 * does not merge yet.
 */

/** The prefix PEFT puts before module paths; adapters saved through transformers' own PEFT integration lack it. */
export const PEFT_KEY_PREFIX = 'base_model.model.';

/** One adapter tensor key, interpreted. `modulePath` never carries `base_model.model.`. */
export type AdapterKey =
  | { kind: 'lora_A' | 'lora_B'; modulePath: string; key: string }
  | { kind: 'lora_embedding_A' | 'lora_embedding_B'; modulePath: string; key: string }
  | { kind: 'lora_magnitude_vector'; modulePath: string; key: string }
  | { kind: 'lora_bias'; modulePath: string; key: string }
  | { kind: 'trainable_tokens'; modulePath: string; key: string }
  /**
   * A full tensor that replaces the base tensor `tensorPath` (`.base_layer` removed). `fromBaseLayer`:
   * saved under a LoRA-wrapped module's `base_layer` (save_embedding_layers on a targeted embedding):
   * the module's new base weight, onto which its own LoRA delta still goes.
   */
  | { kind: 'replacement'; tensorPath: string; key: string; fromBaseLayer: boolean; wrapperCopy?: boolean }
  /**
   * `<module>.original_module.<param>`: the untrained module a ModulesToSaveWrapper keeps beside its
   * trained copy. Saved by save_embedding_layers on a resized vocabulary; the forward pass never uses it.
   */
  | { kind: 'original_module'; tensorPath: string; key: string }
  /** A `lora_*` key of a shape lorafuse does not know (e.g. a named adapter left in the key). */
  | { kind: 'unknown_lora'; key: string };

/** Interprets one adapter tensor key. */
export function parseAdapterKey(key: string): AdapterKey {
  const path = key.startsWith(PEFT_KEY_PREFIX) ? key.slice(PEFT_KEY_PREFIX.length) : key;
  let m: RegExpMatchArray | null;
  if ((m = path.match(/^(.*)\.lora_([AB])\.weight$/))) return { kind: m[2] === 'A' ? 'lora_A' : 'lora_B', modulePath: m[1]!, key };
  if ((m = path.match(/^(.*)\.lora_embedding_([AB])$/))) return { kind: m[2] === 'A' ? 'lora_embedding_A' : 'lora_embedding_B', modulePath: m[1]!, key };
  if ((m = path.match(/^(.*)\.lora_magnitude_vector$/))) return { kind: 'lora_magnitude_vector', modulePath: m[1]!, key };
  if ((m = path.match(/^(.*)\.lora_B\.bias$/))) return { kind: 'lora_bias', modulePath: m[1]!, key };
  if ((m = path.match(/^(.*)\.token_adapter\.trainable_tokens_delta$/))) return { kind: 'trainable_tokens', modulePath: m[1]!, key };
  if (/(^|\.)lora_/.test(path)) return { kind: 'unknown_lora', key };
  if ((m = path.match(/^(.*)\.original_module\.([^.]+)$/))) return { kind: 'original_module', tensorPath: `${m[1]!}.${m[2]!}`, key };
  // The trained copy under its in-memory wrapper name: the same tensor as `<module>.<param>`.
  if ((m = path.match(/^(.*)\.modules_to_save\.(?:default\.)?([^.]+)$/))) return { kind: 'replacement', tensorPath: `${m[1]!}.${m[2]!}`, key, fromBaseLayer: false, wrapperCopy: true };
  // A trainable-tokens wrapper's base layer (saved with a resized vocabulary): the embedding itself.
  if ((m = path.match(/^(.*)\.token_adapter\.base_layer\.([^.]+)$/))) return { kind: 'replacement', tensorPath: `${m[1]!}.${m[2]!}`, key, fromBaseLayer: true };
  const fromBaseLayer = /\.base_layer\.[^.]+$/.test(path);
  return { kind: 'replacement', tensorPath: path.replace(/\.base_layer\.([^.]+)$/, '.$1'), key, fromBaseLayer };
}
