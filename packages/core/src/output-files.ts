/**
 * Which files a merged checkpoint carries besides its config.json and weights, decided once for the
 * CLI (directories on disk) and the app (picked files): the base's other files (tokenizer,
 * generation_config.json, ...), and an adapter's tokenizer instead of the base's when it saved one
 * (it is the tokenizer training used: it knows the tokens a resized vocabulary added).
 */
import { InputError } from './errors.js';

/** The files of a Hugging Face tokenizer, as `tokenizer.save_pretrained` writes them. */
export const TOKENIZER_FILES: ReadonlySet<string> = new Set(['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json', 'vocab.json', 'merges.txt', 'chat_template.jinja']);

const CHECKPOINT_FILE = /^(?:config\.json|model\.safetensors(?:\.index\.json)?|model-\d+-of-\d+\.safetensors|pytorch_model\.bin(?:\.index\.json)?|pytorch_model-\d+-of-\d+\.bin)$/;

/** A directory's tokenizer files (sorted), when they make a tokenizer (`tokenizer.json` or `tokenizer_config.json`); else none. */
export function tokenizerFilesOf(names: Iterable<string>): string[] {
  const found = [...names].filter((n) => TOKENIZER_FILES.has(n)).sort();
  return found.includes('tokenizer.json') || found.includes('tokenizer_config.json') ? found : [];
}

/**
 * The base's files the output carries: never its config or weights in any format (the output's are
 * the merge's own, and a stale index would send transformers to them), never adapter files
 * (transformers would apply the adapter again on load), and not its tokenizer files when an adapter
 * brings its own tokenizer (they are replaced as a set).
 */
export function baseFilesCarried(baseFiles: Iterable<string>, adapterHasTokenizer: boolean): string[] {
  return [...baseFiles].filter((name) => !CHECKPOINT_FILE.test(name) && name !== 'adapter_config.json' && !name.startsWith('adapter_model.') && !(adapterHasTokenizer && TOKENIZER_FILES.has(name)));
}

/** One adapter's directory and its file names, for {@link adapterTokenizer}. */
export interface AdapterFiles {
  /** The adapter directory, for messages. */
  readonly dir: string;
  readonly names: Iterable<string>;
}

/**
 * The adapter whose tokenizer the output carries when several are merged, and its files: the first
 * that saved one. Another that saved one too must hold the same files with the same bytes
 * (`sameBytes` compares one file of two adapters); otherwise the adapters were trained with
 * different tokenizers and no single one is right: `ADAPTER_TOKENIZERS_DIFFER`.
 */
export async function adapterTokenizer<A extends AdapterFiles>(adapters: readonly A[], sameBytes: (a: A, b: A, name: string) => Promise<boolean>): Promise<{ readonly adapter: A; readonly names: string[] } | null> {
  let chosen: { adapter: A; names: string[] } | null = null;
  for (const adapter of adapters) {
    const names = tokenizerFilesOf(adapter.names);
    if (names.length === 0) continue;
    if (!chosen) {
      chosen = { adapter, names };
      continue;
    }
    let differs: string | null = names.join() !== chosen.names.join() ? `their files differ (${chosen.names.join(', ')} against ${names.join(', ')})` : null;
    for (const name of differs === null ? names : []) {
      if (!(await sameBytes(chosen.adapter, adapter, name))) {
        differs = `their ${name} differ`;
        break;
      }
    }
    if (differs) {
      throw new InputError('ADAPTER_TOKENIZERS_DIFFER', `adapters ${chosen.adapter.dir} and ${adapter.dir} both carry a tokenizer, and ${differs}`, {
        subject: 'tokenizer.json',
        hint: 'Adapters merged together must share one tokenizer; remove the tokenizer files from all but one of them if they encode text alike, or merge them separately.',
      });
    }
  }
  return chosen;
}
