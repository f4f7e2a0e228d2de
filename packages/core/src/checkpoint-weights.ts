/**
 * Where a transformers checkpoint directory keeps its weights, in the order transformers looks:
 * `model.safetensors`, its shard index, `pytorch_model.bin`, its shard index. One search for the
 * CLI (a directory on disk) and the app (picked files); each brings its own reading and its own
 * checks of the listed shards (their messages name a path, or a picked file).
 */
import { parseShardIndex, SHARD_INDEX_FILE } from './safetensors/shard-index.js';

/** transformers' torch.save weight file and the index of its shards. */
export const TORCH_WEIGHTS_FILE = 'pytorch_model.bin';
export const TORCH_INDEX_FILE = 'pytorch_model.bin.index.json';

/** A checkpoint's weight files. */
export interface CheckpointWeightFiles {
  /** The files that make up the weights, index included: never carried into an output. */
  readonly weightFiles: readonly string[];
  /** The files that hold tensors (the one file, or every shard the index lists, sorted). */
  readonly dataFiles: readonly string[];
}

/** How {@link findCheckpointWeightFiles} reads an index and checks the shards it lists. */
export interface CheckpointWeightsAccess {
  /** The index file's text and its label for messages (a path, a picked file). */
  readIndex(name: string): Promise<{ text: string; label: string }>;
  /** Throws, naming the index (`indexLabel`), when a listed shard is missing or not a regular file. */
  checkShards(indexLabel: string, shards: readonly string[]): Promise<void>;
}

/** The weight files among `names`, or undefined when there are none; a malformed index throws its `ShardIndexError`. */
export async function findCheckpointWeightFiles(names: ReadonlySet<string>, access: CheckpointWeightsAccess): Promise<CheckpointWeightFiles | undefined> {
  for (const [single, indexName] of [['model.safetensors', SHARD_INDEX_FILE], [TORCH_WEIGHTS_FILE, TORCH_INDEX_FILE]] as const) {
    if (names.has(single)) return { weightFiles: [single], dataFiles: [single] };
    if (names.has(indexName)) {
      const { text, label } = await access.readIndex(indexName);
      const index = parseShardIndex(text, label);
      await access.checkShards(label, index.shardFiles);
      return { weightFiles: [indexName, ...index.shardFiles], dataFiles: index.shardFiles };
    }
  }
  return undefined;
}
