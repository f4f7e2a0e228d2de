/** The checks a base checkpoint's config.json passes before anything is planned from it. */
import { InputError } from '../errors.js';

/**
 * A base config.json (`path` names it in messages): the fields lorafuse reads or writes must have the
 * types transformers gives them, and the model must be a GPT-2.
 */
export function checkBaseConfig(config: Record<string, unknown>, path: string): void {
  const bad = (field: string, want: string) =>
    new InputError('CONFIG_FIELD', `${path}: field "${field}" must be ${want}, got ${JSON.stringify(config[field])}`, {
      subject: field,
      hint: 'config.json must be the file transformers writes with save_pretrained; fix or regenerate it.',
    });
  for (const field of ['vocab_size', 'n_embd', 'n_layer', 'n_head', 'n_positions']) {
    const v = config[field];
    if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v > 0)) throw bad(field, 'a positive integer');
  }
  if (config['tie_word_embeddings'] !== undefined && typeof config['tie_word_embeddings'] !== 'boolean') throw bad('tie_word_embeddings', 'true or false');
  const arch = config['architectures'];
  if (arch !== undefined && arch !== null && !(Array.isArray(arch) && arch.every((a) => typeof a === 'string'))) throw bad('architectures', 'a list of class names');
  if (config['model_type'] !== undefined && config['model_type'] !== 'gpt2') {
    throw new InputError('BASE_NOT_GPT2', `${path}: model_type is ${JSON.stringify(config['model_type'])}; lorafuse merges into GPT-2 checkpoints`, { subject: 'model_type' });
  }
}
