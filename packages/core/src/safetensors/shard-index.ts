/**
 * `model.safetensors.index.json`, the index of a sharded checkpoint:
 * `{"metadata": {"total_parameters": int, "total_size": int}, "weight_map": {tensor: shard file}}`.
 * Loaders need only `weight_map` and its set of files.
 */
import { ShardIndexError } from './errors.js';
import { describeJson, firstDuplicateKey, isPlainUnsignedInteger, JsonSyntaxError, parseJsonStrict, type JsonValue } from './json.js';

/** The default index file name transformers writes next to the shards. */
export const SHARD_INDEX_FILE = 'model.safetensors.index.json';

/** A parsed shard index. */
export interface ShardIndex {
  /** The index's label (path or URL). */
  readonly label: string;
  /** Tensor name → shard file name (a plain name, relative to the index's folder), in file order. */
  readonly weightMap: Map<string, string>;
  /** The distinct shard file names, sorted (as transformers' `get_checkpoint_shard_files` does). */
  readonly shardFiles: string[];
  /** `metadata.total_size` in bytes: the sum of unique storage sizes, if present. */
  readonly totalSize: number | undefined;
  /** `metadata.total_parameters`, if present. */
  readonly totalParameters: number | undefined;
}

// Loaders ignore `metadata`, so a malformed count is dropped rather than failing the checkpoint.
function optionalCount(metadata: Map<string, JsonValue>, key: string): number | undefined {
  const v = metadata.get(key);
  if (v === undefined || v.kind !== 'number' || !isPlainUnsignedInteger(v.text)) return undefined;
  const n = Number(v.text);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * Parses and validates the text of a `model.safetensors.index.json`. `weight_map` must be a
 * non-empty object of string values, each a plain file name (no folder parts, so an index cannot
 * point outside its folder); tensor names and top-level keys must be unique. `metadata` is
 * optional and, as loaders ignore it, never an error: malformed counts read as undefined. Throws {@link ShardIndexError}.
 */
export function parseShardIndex(text: string, label: string): ShardIndex {
  let root: JsonValue;
  try {
    // A UTF-8 BOM is tolerated: Python's json.load of a text file opened with utf-8-sig would be too.
    root = parseJsonStrict(text.startsWith('\ufeff') ? text.slice(1) : text);
  } catch (error) {
    if (error instanceof JsonSyntaxError) throw new ShardIndexError('INVALID_INDEX_JSON', label, `not valid JSON (${error.message})`);
    throw error;
  }
  if (root.kind !== 'object') throw new ShardIndexError('INVALID_INDEX_JSON', label, `the index must be a JSON object, got ${describeJson(root)}`);
  const top = firstDuplicateKey(root.entries);
  if (top !== undefined) throw new ShardIndexError('DUPLICATE_KEY', label, `top-level key ${JSON.stringify(top)} appears twice`, top);
  const fields = new Map(root.entries);

  const weightMapValue = fields.get('weight_map');
  if (weightMapValue === undefined) throw new ShardIndexError('INVALID_WEIGHT_MAP', label, 'the "weight_map" field is missing', 'weight_map');
  if (weightMapValue.kind !== 'object') {
    throw new ShardIndexError('INVALID_WEIGHT_MAP', label, `"weight_map" must be an object of tensor name → shard file, got ${describeJson(weightMapValue)}`, 'weight_map');
  }
  if (weightMapValue.entries.length === 0) throw new ShardIndexError('INVALID_WEIGHT_MAP', label, '"weight_map" is empty', 'weight_map');

  const weightMap = new Map<string, string>();
  for (const [tensor, file] of weightMapValue.entries) {
    if (file.kind !== 'string') {
      throw new ShardIndexError('INVALID_WEIGHT_MAP', label, `"weight_map" entry ${JSON.stringify(tensor)} must be a shard file name, got ${describeJson(file)}`, tensor);
    }
    const name = file.value;
    if (name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name)) {
      throw new ShardIndexError('INVALID_SHARD_FILE', label, `"weight_map" entry ${JSON.stringify(tensor)} names ${JSON.stringify(name)}, which is not a plain file name`, tensor);
    }
    if (weightMap.has(tensor)) throw new ShardIndexError('DUPLICATE_KEY', label, `tensor ${JSON.stringify(tensor)} appears twice in "weight_map"`, tensor);
    weightMap.set(tensor, name);
  }

  let totalSize: number | undefined;
  let totalParameters: number | undefined;
  const metadataValue = fields.get('metadata');
  if (metadataValue !== undefined && metadataValue.kind === 'object') {
    const metadata = new Map(metadataValue.entries);
    totalSize = optionalCount(metadata, 'total_size');
    totalParameters = optionalCount(metadata, 'total_parameters');
  }

  const shardFiles = [...new Set(weightMap.values())].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return { label, weightMap, shardFiles, totalSize, totalParameters };
}
