/**
 * Typed errors of the safetensors reader, writer and shard-index parser.
 */
import { InputError } from '../errors.js';

/**
 * Why a file is not valid safetensors. One code per rule of the reference reader
 * (`SafeTensors::read_metadata`, `Metadata::validate`), checked in this order.
 */
export type SafetensorsFormatErrorCode =
  /** The file is shorter than the 8-byte length prefix. */
  | 'HEADER_TOO_SMALL'
  /** The header length N is above 100,000,000 bytes. */
  | 'HEADER_TOO_LARGE'
  /** 8 + N is beyond the end of the file. */
  | 'INVALID_HEADER_LENGTH'
  /** The header bytes are not valid UTF-8. */
  | 'INVALID_HEADER_UTF8'
  /** The header is not a JSON object of well-formed tensor entries. */
  | 'INVALID_HEADER_JSON'
  /** `__metadata__` is not a map of string to string. */
  | 'INVALID_METADATA'
  /** A tensor's dtype string is not one safetensors knows. */
  | 'UNKNOWN_DTYPE'
  /** A key appears twice at the top level of the header or in `__metadata__`. */
  | 'DUPLICATE_KEY'
  /** A tensor's data does not start where the previous one ends (gap, overlap, end < begin, first not at 0). */
  | 'INVALID_OFFSET'
  /** A tensor's element count or bit size does not fit in u64 (or a dimension is above 2^53 − 1). */
  | 'VALIDATION_OVERFLOW'
  /** A sub-byte dtype tensor whose total bits are not a whole number of bytes. */
  | 'MISALIGNED_SLICE'
  /** A tensor's byte range length is not numel × bits / 8. */
  | 'TENSOR_INVALID_INFO'
  /** The data buffer does not end exactly at the end of the file (trailing bytes, or truncated). */
  | 'METADATA_INCOMPLETE_BUFFER';

const FORMAT_HINTS: Record<SafetensorsFormatErrorCode, string> = {
  HEADER_TOO_SMALL: 'The file is empty or truncated; download or save it again.',
  HEADER_TOO_LARGE: 'The first 8 bytes are not a plausible safetensors header length; check that this is a .safetensors file and not a PyTorch .bin/.pt file.',
  INVALID_HEADER_LENGTH: 'The file is truncated or is not a .safetensors file; download or save it again.',
  INVALID_HEADER_UTF8: 'The file is corrupt or is not a .safetensors file.',
  INVALID_HEADER_JSON: 'The header was not written by a safetensors writer; save the checkpoint again with the safetensors library.',
  INVALID_METADATA: 'safetensors only allows string values in __metadata__; save the checkpoint again with the safetensors library.',
  UNKNOWN_DTYPE: 'The file uses a dtype this reader does not know; convert the checkpoint to F32, F16 or BF16.',
  DUPLICATE_KEY: 'Each tensor name may appear once; save the checkpoint again with the safetensors library.',
  INVALID_OFFSET: 'Tensor byte ranges must be contiguous from 0 without gaps or overlaps; the file is corrupt or crafted.',
  VALIDATION_OVERFLOW: 'A tensor shape is too large to be real; the file is corrupt or crafted.',
  MISALIGNED_SLICE: 'Sub-byte dtype tensors must fill whole bytes; the file is corrupt.',
  TENSOR_INVALID_INFO: 'The byte size does not match dtype and shape; the file is corrupt or crafted.',
  METADATA_INCOMPLETE_BUFFER: 'The file is truncated or has extra bytes appended; download or save it again.',
};

/** A file breaks a rule of the safetensors format. The message names the file and, where there is one, the tensor. */
export class SafetensorsFormatError extends InputError {
  declare readonly code: SafetensorsFormatErrorCode;
  /** The file's label (path or URL). */
  readonly file: string;
  /** The tensor the error is about, if any. */
  readonly tensor: string | undefined;

  constructor(code: SafetensorsFormatErrorCode, file: string, detail: string, tensor?: string) {
    super(code, `${file} is not a valid safetensors file: ${detail}`, {
      hint: FORMAT_HINTS[code],
      subject: tensor === undefined ? file : `${file}: ${tensor}`,
    });
    this.file = file;
    this.tensor = tensor;
  }
}

/** Why a safetensors file cannot be laid out or written as asked. */
export type SafetensorsWriteErrorCode =
  /** Two tensors with the same name. */
  | 'DUPLICATE_TENSOR_NAME'
  /** A name that cannot be written (`__metadata__`, or a string with unpaired surrogates). */
  | 'INVALID_TENSOR_NAME'
  /** A dimension that is not a non-negative safe integer, or a byte size above 2^53 − 1. */
  | 'INVALID_SHAPE'
  /** A sub-byte dtype tensor that does not fill whole bytes. */
  | 'MISALIGNED_SLICE'
  /** A metadata key or value that is not a well-formed string. */
  | 'INVALID_METADATA'
  /** The header would exceed 100,000,000 bytes. */
  | 'HEADER_TOO_LARGE'
  /** Bytes were written before `start()`, after `finish()`, or `start()` was called twice. */
  | 'WRITE_STATE'
  /** A tensor was written out of file order, or is unknown. */
  | 'WRITE_OUT_OF_ORDER'
  /** More bytes were written for a tensor than its size. */
  | 'WRITE_TOO_MANY_BYTES'
  /** `finish()` or the next tensor came before a tensor's bytes were complete. */
  | 'WRITE_INCOMPLETE';

/** A safetensors file cannot be written as asked. The message names the tensor. */
export class SafetensorsWriteError extends InputError {
  declare readonly code: SafetensorsWriteErrorCode;
  constructor(code: SafetensorsWriteErrorCode, message: string, subject?: string) {
    super(code, message, subject === undefined ? {} : { subject });
  }
}

/** Why a `model.safetensors.index.json` cannot be used. */
export type ShardIndexErrorCode =
  /** Not valid JSON, or not a JSON object. */
  | 'INVALID_INDEX_JSON'
  /** `weight_map` missing, not an object, empty, or with a non-string value. */
  | 'INVALID_WEIGHT_MAP'
  /** A tensor name appears twice in `weight_map`, or a top-level key twice. */
  | 'DUPLICATE_KEY'
  /** A shard file name that is not a plain file name in the same folder. */
  | 'INVALID_SHARD_FILE';

/** A sharded-checkpoint index file is malformed. The message names the file and the entry. */
export class ShardIndexError extends InputError {
  declare readonly code: ShardIndexErrorCode;
  /** The index file's label (path or URL). */
  readonly file: string;
  constructor(code: ShardIndexErrorCode, file: string, detail: string, subject?: string) {
    super(code, `${file} is not a valid sharded-checkpoint index: ${detail}`, {
      hint: 'The index must be {"metadata": {...}, "weight_map": {tensor name: shard file name}} as written by transformers save_pretrained.',
      subject: subject === undefined ? file : `${file}: ${subject}`,
    });
    this.file = file;
  }
}
