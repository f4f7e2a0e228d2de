/**
 * A tiny GPT-2-style tokenizer.json (byte-level BPE, the format `tokenizer.save_pretrained` writes)
 * for fixtures: printable ASCII as single tokens, a few merges, an end-of-text token and optional
 * added tokens, sized to a small test vocabulary.
 */

/** GPT-2's byte-to-character map: printable bytes stand for themselves, the rest move above U+0100. */
export function byteLevelChar(byte: number): string {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  if (printable(byte)) return String.fromCharCode(byte);
  let n = 0;
  for (let b = 0; b < byte; b++) if (!printable(b)) n++;
  return String.fromCharCode(256 + n);
}

/** What the fixture tokenizer holds. */
export interface FixtureTokenizerOptions {
  /** Merges in priority order, as pairs of existing tokens (byte-level spelling: `Ġ` is a space). */
  readonly merges?: ReadonlyArray<readonly [string, string]>;
  /** Special tokens after the end-of-text token (e.g. tokens a resized vocabulary added). */
  readonly added?: readonly string[];
}

/** tokenizer.json text: ids 0–94 are the bytes 0x20–0x7E, then the merges, then `<|endoftext|>`, then `added`. */
export function fixtureTokenizerJson(options: FixtureTokenizerOptions = {}): string {
  const vocab: Record<string, number> = {};
  for (let b = 0x20; b <= 0x7e; b++) vocab[byteLevelChar(b)] = b - 0x20;
  const merges = options.merges ?? [];
  for (const [a, b] of merges) vocab[a + b] = Object.keys(vocab).length;
  const special = ['<|endoftext|>', ...(options.added ?? [])];
  const firstSpecial = Object.keys(vocab).length;
  const addedTokens = special.map((content, i) => ({ id: firstSpecial + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  for (const t of addedTokens) vocab[t.content] = t.id;
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return `${JSON.stringify({
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: byteLevel,
    decoder: byteLevel,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: merges.map(([a, b]) => `${a} ${b}`) },
  }, null, 2)}\n`;
}
