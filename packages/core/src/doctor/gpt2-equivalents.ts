/** Suggestions for adapters trained with another architecture's module names. */

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

/**
 * The model a `base_model_name_or_path` / `_name_or_path` names, for comparing two of them: a Hub id
 * without its namespace (`openai-community/gpt2` and `gpt2` are one repository, moved under an
 * organisation; `distilbert/distilgpt2` is `distilgpt2`), a local directory by its last segment, and
 * a Hub cache snapshot (`…/models--openai-community--gpt2/snapshots/<hash>`) by its repository.
 * Lower-cased. Fine-tunes such as `microsoft/DialoGPT-small` stay themselves: same shapes as gpt2,
 * other weights.
 */
export function modelNameOf(nameOrPath: string): string {
  const path = nameOrPath.replace(/\\/g, '/').replace(/\/+$/, '');
  const cached = path.match(/(?:^|\/)models--([^/]+?)(?:\/snapshots\/[^/]+)?$/);
  const name = cached ? cached[1]!.split('--').pop()! : path.split('/').pop()!;
  return name.toLowerCase();
}
