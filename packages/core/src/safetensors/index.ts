/**
 * safetensors: dtypes and f32 codecs, strict header reading, reference-identical writing, and
 * sharded-checkpoint indexes.
 */
export {
  DTYPES,
  DTYPE_BITS,
  isDtype,
  dtypeRank,
  isFloatDtype,
  floatCodecBytes,
  f16BitsToF32,
  f32ToF16Bits,
  bf16BitsToF32,
  f32ToBf16Bits,
  decodeToF32,
  encodeFromF32,
  type Dtype,
  type FloatCodecDtype,
} from './dtype.js';
export {
  SafetensorsFormatError,
  SafetensorsWriteError,
  ShardIndexError,
  type SafetensorsFormatErrorCode,
  type SafetensorsWriteErrorCode,
  type ShardIndexErrorCode,
} from './errors.js';
export {
  MAX_HEADER_SIZE,
  METADATA_KEY,
  readHeaderLength,
  parseSafetensorsHeader,
  parseSafetensorsBytes,
  readSafetensorsHeader,
  readTensorBytes,
  type TensorInfo,
  type SafetensorsHeader,
} from './header.js';
export {
  layoutSafetensors,
  SafetensorsPositionalWriter,
  SafetensorsStreamWriter,
  type TensorSpec,
  type SafetensorsLayout,
  type SafetensorsLayoutEntry,
} from './writer.js';
export { SHARD_INDEX_FILE, parseShardIndex, type ShardIndex } from './shard-index.js';
export {
  DEFAULT_MAX_SHARD_SIZE,
  compareDotNatural,
  parseShardSize,
  renderShardIndex,
  shardFileName,
  splitIntoShards,
  type ParsedShardSize,
  type ShardFile,
  type ShardSplit,
  type ShardTensor,
} from './shard-split.js';
export { tensorRefOf, type TensorRef } from './tensor-ref.js';
