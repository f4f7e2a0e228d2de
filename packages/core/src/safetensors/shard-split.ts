/**
 * Sharded checkpoints as transformers' `save_pretrained` writes them: the size limit parsed as
 * huggingface_hub parses it, the order transformers hands the tensors over in, the greedy split of
 * `split_torch_state_dict_into_shards`, the shard file names, and the text of
 * `model.safetensors.index.json`.
 */
import { compareCodePoints } from './writer.js';

/** transformers 5's `save_pretrained(max_shard_size=...)` default: "50GB", i.e. 50·10⁹ bytes. */
export const DEFAULT_MAX_SHARD_SIZE = 50_000_000_000;

/**
 * The units huggingface_hub's `parse_size_to_int` knows, all decimal: "GB" is 10⁹ bytes. There is
 * no "GiB": huggingface_hub refuses it, so lorafuse does too rather than guess which was meant.
 */
const SIZE_UNITS: Readonly<Record<string, number>> = { TB: 1e12, GB: 1e9, MB: 1e6, KB: 1e3 };

/** A number as Python's `float()` reads it, without its `inf`/`nan` words and `_` digit groups. */
const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/** The outcome of {@link parseShardSize}: bytes, or why the text is not a size. */
export type ParsedShardSize = { readonly ok: true; readonly bytes: number } | { readonly ok: false; readonly reason: string };

/**
 * Parses a shard size limit: plain bytes (`"1048576"`, what transformers takes as an int), or a
 * number and a unit of TB, GB, MB, KB, case-insensitive, as huggingface_hub's `parse_size_to_int`
 * reads it: the last two characters are the unit, the rest (spaces trimmed) a decimal number, and
 * the bytes `int(value · unit)` (so `"0.1MB"` is 100000 and `"3.999999KB"` 3999). A limit must be
 * at least one byte and a safe integer.
 */
export function parseShardSize(text: string): ParsedShardSize {
  const s = text.trim();
  let bytes: number;
  if (/^\d+$/.test(s)) {
    bytes = Number(s);
  } else {
    const unit = s.slice(-2).toUpperCase();
    const multiplier = SIZE_UNITS[unit];
    if (multiplier === undefined) {
      const binary = /^[KMGT]IB$/i.test(s.slice(-3)) ? ` (binary units such as ${s.slice(-3)} are not accepted; GB means 10^9 bytes, as in transformers)` : '';
      return { ok: false, reason: `"${text}" has no unit lorafuse knows${binary}; give plain bytes or a number followed by TB, GB, MB or KB, e.g. 5GB or 500MB` };
    }
    const value = s.slice(0, -2).trim();
    if (!DECIMAL.test(value)) return { ok: false, reason: `"${text}": "${value}" is not a number; give e.g. 5GB, 1.5GB or 500MB` };
    // The same double multiplication and truncation as Python's int(float * int).
    bytes = Math.trunc(Number(value) * multiplier);
  }
  if (!Number.isSafeInteger(bytes)) return { ok: false, reason: `"${text}" is too large a size` };
  if (bytes < 1) return { ok: false, reason: `"${text}" is ${bytes} bytes; a shard size limit must be at least 1 byte` };
  return { ok: true, bytes };
}

/** One dot-separated part of a name as transformers 5 sorts it: a number, or text with an optional numeric suffix. */
type NamePart = { readonly num: bigint } | { readonly text: string; readonly suffix: bigint | undefined };

function namePartsOf(name: string): NamePart[] {
  return name.split('.').map((part) => {
    if (/^[0-9]+$/.test(part)) return { num: BigInt(part) };
    const digits = /[0-9]*$/.exec(part)![0];
    return { text: part.slice(0, part.length - digits.length), suffix: digits === '' ? undefined : BigInt(digits) };
  });
}

function comparePart(a: NamePart, b: NamePart): number {
  if ('num' in a || 'num' in b) {
    if ('num' in a && 'num' in b) return a.num < b.num ? -1 : a.num > b.num ? 1 : 0;
    return 'num' in a ? -1 : 1;
  }
  const text = compareCodePoints(a.text, b.text);
  if (text !== 0) return text;
  if (a.suffix === undefined || b.suffix === undefined) return a.suffix === b.suffix ? 0 : a.suffix === undefined ? -1 : 1;
  return a.suffix < b.suffix ? -1 : a.suffix > b.suffix ? 1 : 0;
}

/**
 * Orders tensor names as transformers 5's `save_pretrained` hands a loaded model's state dict to the
 * split (`revert_weight_conversion` sorts it by `dot_natural_key`): part by part, numbers before
 * text and by value (`h.2` before `h.10`), text by code point, a numeric suffix by value
 * (`shard_2` before `shard_11`). Names that compare equal (`h.07`, `h.7`) keep their given order.
 * Only ASCII digits count as digits.
 */
export function compareDotNatural(a: string, b: string): number {
  const x = namePartsOf(a);
  const y = namePartsOf(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const c = comparePart(x[i]!, y[i]!);
    if (c !== 0) return c;
  }
  return x.length - y.length;
}

/** One tensor to place: its name and its stored size in bytes (what the index's total counts). */
export interface ShardTensor {
  readonly name: string;
  readonly byteLength: number;
}

/** One output file and the tensors it holds, in the order they were placed. */
export interface ShardFile {
  readonly file: string;
  readonly tensors: readonly string[];
}

/** How a checkpoint's tensors are split into files. */
export interface ShardSplit {
  /** One file (`model.safetensors`, no index) or several (`model-0000i-of-0000n.safetensors`). */
  readonly files: readonly ShardFile[];
  /** More than one file: the checkpoint needs `model.safetensors.index.json`. */
  readonly sharded: boolean;
  /** The sum of every tensor's bytes (the index's `metadata.total_size`; headers not counted). */
  readonly totalSize: number;
  /** Tensor name → the file holding it. */
  readonly weightMap: ReadonlyMap<string, string>;
}

/** The name of shard `index` (0-based) of `count`: `model-00001-of-00003.safetensors`. */
export function shardFileName(index: number, count: number): string {
  const five = (n: number) => String(n).padStart(5, '0');
  return `model-${five(index + 1)}-of-${five(count)}.safetensors`;
}

/**
 * Splits tensors, given in the order transformers hands them over (see {@link compareDotNatural}), into files of at most `maxShardSize` bytes the way
 * huggingface_hub's `split_torch_state_dict_into_shards` does: greedily in that order, starting a
 * new file when the next tensor would pass the limit; a tensor bigger than the limit gets a file of
 * its own, placed before the file still being filled (so it may come first). No tensors share
 * storage here, so each counts its own bytes. One resulting file is called `model.safetensors`.
 */
export function splitIntoShards(tensors: readonly ShardTensor[], maxShardSize: number): ShardSplit {
  const shards: string[][] = [];
  let current: string[] = [];
  let currentSize = 0;
  let totalSize = 0;
  for (const t of tensors) {
    totalSize += t.byteLength;
    if (t.byteLength > maxShardSize) {
      shards.push([t.name]);
      continue;
    }
    if (currentSize + t.byteLength > maxShardSize) {
      shards.push(current);
      current = [];
      currentSize = 0;
    }
    current.push(t.name);
    currentSize += t.byteLength;
  }
  if (current.length > 0) shards.push(current);
  const files = shards.length === 1
    ? [{ file: 'model.safetensors', tensors: shards[0]! }]
    : shards.map((names, i) => ({ file: shardFileName(i, shards.length), tensors: names }));
  const weightMap = new Map(files.flatMap((f) => f.tensors.map((name) => [name, f.file] as const)));
  return { files, sharded: files.length > 1, totalSize, weightMap };
}

/** Python's `json.dumps` of a string with `ensure_ascii`: everything outside space..~ escaped as \uXXXX. */
function pythonJsonString(s: string): string {
  return JSON.stringify(s).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * The text of `model.safetensors.index.json` byte for byte as transformers writes it:
 * `json.dumps({"metadata": {"total_parameters", "total_size"}, "weight_map"}, indent=2,
 * sort_keys=True) + "\n"` (keys in code-point order, non-ASCII escaped).
 */
export function renderShardIndex(split: ShardSplit, totalParameters: number): string {
  const names = [...split.weightMap.keys()].sort(compareCodePoints);
  const lines = names.map((n) => `    ${pythonJsonString(n)}: ${pythonJsonString(split.weightMap.get(n)!)}`);
  return [
    '{',
    '  "metadata": {',
    `    "total_parameters": ${totalParameters},`,
    `    "total_size": ${split.totalSize}`,
    '  },',
    '  "weight_map": {',
    lines.join(',\n'),
    '  }',
    '}',
    '',
  ].join('\n');
}
