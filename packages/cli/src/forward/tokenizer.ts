/**
 * Text in and out: a checkpoint's `tokenizer.json` (the Hugging Face tokenizers format) read with the
 * maintained JS port of that library. Without one, token ids are the only way in.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Tokenizer } from '@huggingface/tokenizers';
import { InputError } from '@lorafuse/core';
import { fromFsError } from '../fs/fs-error.js';

/** Encodes and decodes text for one model. */
export interface TextCodec {
  readonly path: string;
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
}

/** tokenizer.json files larger than this are refused instead of parsed (GPT-2's is about 1.4 MB). */
const MAX_TOKENIZER_BYTES = 64 * 1024 * 1024;

async function readJsonFile(path: string): Promise<unknown | undefined> {
  let size: number;
  try {
    const s = await stat(path);
    if (!s.isFile()) return undefined;
    size = s.size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fromFsError(e, path, 'read', 'input');
  }
  if (size > MAX_TOKENIZER_BYTES) throw new InputError('TOKENIZER_INVALID', `${path} is ${size} bytes, more than a tokenizer file can plausibly be`, { subject: path });
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw fromFsError(e, path, 'read', 'input');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new InputError('TOKENIZER_INVALID', `${path} is not valid JSON: ${(e as Error).message}`, { subject: path, hint: 'Save the tokenizer again with `tokenizer.save_pretrained(dir)`.' });
  }
}

/** The tokenizer of the first of `dirs` that has a tokenizer.json; undefined when none has. */
export async function findTokenizer(dirs: readonly string[]): Promise<TextCodec | undefined> {
  for (const dir of dirs) {
    const path = join(dir, 'tokenizer.json');
    const json = await readJsonFile(path);
    if (json === undefined) continue;
    const config = (await readJsonFile(join(dir, 'tokenizer_config.json'))) ?? {};
    // Loaded here, not with the CLI: every other command (merge above all) starts without it.
    const { Tokenizer: TokenizerClass } = await import('@huggingface/tokenizers');
    let tokenizer: Tokenizer;
    try {
      tokenizer = new TokenizerClass(json as object, config as object);
    } catch (e) {
      throw new InputError('TOKENIZER_INVALID', `${path} could not be read as a tokenizer: ${(e as Error).message}`, { subject: path, hint: 'Save the tokenizer again with `tokenizer.save_pretrained(dir)`.' });
    }
    return {
      path,
      // GPT-2's tokenizer adds no special tokens; the prompt's ids are exactly its text's.
      encode: (text) => tokenizer.encode(text, { add_special_tokens: false }).ids,
      decode: (ids) => tokenizer.decode([...ids], { skip_special_tokens: false }),
    };
  }
  return undefined;
}

/** The tokenizer, or an error saying `--prompt` needs one and `--ids` works without. */
export async function requireTokenizer(dirs: readonly string[]): Promise<TextCodec> {
  const codec = await findTokenizer(dirs);
  if (!codec) {
    throw new InputError('TOKENIZER_MISSING', `--prompt needs a tokenizer, and there is no tokenizer.json in ${dirs.join(' or ')}`, {
      subject: 'tokenizer.json',
      hint: 'Give token ids with --ids 1,2,3, or save the tokenizer beside the weights (`tokenizer.save_pretrained(dir)`).',
    });
  }
  return codec;
}
