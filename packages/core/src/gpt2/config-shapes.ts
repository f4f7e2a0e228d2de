/**
 * A GPT-2 config.json against the checkpoint's tensors. transformers builds the model from the config
 * (absent fields take GPT2Config's defaults) and refuses to load tensors of other shapes, so a config
 * that disagrees with the weights gives a checkpoint nobody can load, however right its tensors are.
 */
import { BODY_PREFIX, TIED_INPUT_WEIGHT } from './architecture.js';

/** GPT2Config's defaults for the fields that fix tensor shapes. */
export const GPT2_CONFIG_DEFAULTS = { vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12 } as const;

/** One field that disagrees with the tensors, in words. */
export interface ConfigShapeMismatch {
  readonly field: string;
  readonly message: string;
}

/**
 * Compares the shape-fixing fields with the tensors (shapes by canonical name). Returns every
 * mismatch; empty when transformers can build the model the tensors describe.
 */
export function configShapeMismatches(config: Record<string, unknown>, shapes: ReadonlyMap<string, readonly number[]>): ConfigShapeMismatch[] {
  const field = (name: keyof typeof GPT2_CONFIG_DEFAULTS): number => {
    const v = config[name];
    return typeof v === 'number' ? v : GPT2_CONFIG_DEFAULTS[name];
  };
  const said = (name: keyof typeof GPT2_CONFIG_DEFAULTS) => (typeof config[name] === 'number' ? `config.json says ${name}: ${field(name)}` : `config.json has no ${name}, so transformers uses its default ${field(name)}`);
  const out: ConfigShapeMismatch[] = [];
  const wte = shapes.get(TIED_INPUT_WEIGHT);
  if (wte && wte.length === 2) {
    if (wte[0] !== field('vocab_size')) out.push({ field: 'vocab_size', message: `${said('vocab_size')}, but wte.weight has ${wte[0]} rows` });
    if (wte[1] !== field('n_embd')) out.push({ field: 'n_embd', message: `${said('n_embd')}, but wte.weight is ${wte[1]} wide` });
  }
  const wpe = shapes.get(`${BODY_PREFIX}wpe.weight`);
  if (wpe && wpe.length === 2 && wpe[0] !== field('n_positions')) out.push({ field: 'n_positions', message: `${said('n_positions')}, but wpe.weight has ${wpe[0]} rows` });
  const layers = new Set<number>();
  for (const name of shapes.keys()) {
    const m = name.match(/^transformer\.h\.(\d+)\./);
    if (m) layers.add(Number(m[1]));
  }
  if (layers.size > 0) {
    const count = Math.max(...layers) + 1;
    if (count !== field('n_layer') || layers.size !== count) {
      const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !layers.has(i));
      out.push({ field: 'n_layer', message: `${said('n_layer')}, but the tensors hold ${layers.size} block(s) h.0..h.${count - 1}${missing.length > 0 ? ` (missing h.${missing.join(', h.')})` : ''}` });
    }
  }
  const nHead = field('n_head');
  if (field('n_embd') % nHead !== 0) out.push({ field: 'n_head', message: `${said('n_head')}, which does not divide n_embd ${field('n_embd')}` });
  return out;
}
