/**
 * Typed errors of the `torch.save` reader: the zip container, the restricted pickle interpreter and
 * the tensors it describes. Every message names the file; where there is one, also the entry, the
 * pickle global or opcode, or the tensor key.
 */
import { InputError } from '../errors.js';

/** Why a PyTorch `.bin` file cannot be read. One code per rule, each with its own hint. */
export type TorchFormatErrorCode =
  /** Not a zip archive: the pre-1.6 `torch.save` format (or some other pickle), never unpickled. */
  | 'TORCH_LEGACY_FORMAT'
  /** The zip structure is broken or uses a feature `torch.save` never writes (compression, encryption, several disks). */
  | 'TORCH_ZIP_INVALID'
  /** The archive lacks a record `torch.save` always writes (`data.pkl`, a `data/<key>` storage). */
  | 'TORCH_RECORD_MISSING'
  /** The `byteorder` record says big-endian; lorafuse reads little-endian data only. */
  | 'TORCH_BIG_ENDIAN'
  /** The pickle names a global outside the allow-list (e.g. `os.system`, `builtins.eval`). */
  | 'PICKLE_FORBIDDEN_GLOBAL'
  /** The pickle uses an opcode outside the allow-list (BUILD on an object, INST, OBJ, NEWOBJ, EXT, ...). */
  | 'PICKLE_FORBIDDEN_OPCODE'
  /** The pickle stream is malformed: truncated, stack underflow, unknown memo slot, wrong argument types. */
  | 'PICKLE_INVALID'
  /** The pickle or archive goes past a size, count or nesting limit that a real state dict stays far below. */
  | 'TORCH_LIMIT'
  /** The pickle's top-level object is not a dict of tensor names to tensors. */
  | 'TORCH_NOT_STATE_DICT'
  /** A tensor lorafuse cannot map to a byte range: unsupported storage dtype, non-contiguous, outside its storage. */
  | 'TORCH_TENSOR_UNSUPPORTED';

const HINTS: Record<TorchFormatErrorCode, string> = {
  TORCH_LEGACY_FORMAT:
    'lorafuse reads the zip format torch.save writes since torch 1.6 and never unpickles anything else; re-save it in Python with torch.save(torch.load(path, weights_only=True), path), or as safetensors.',
  TORCH_ZIP_INVALID: 'The file is truncated, corrupt or was not written by torch.save; download or save it again.',
  TORCH_RECORD_MISSING: 'The archive is incomplete; download or save it again.',
  TORCH_BIG_ENDIAN: 'Load it on a big-endian machine and save it as safetensors there, or re-save it with torch on a little-endian machine.',
  PICKLE_FORBIDDEN_GLOBAL:
    'A state dict needs only collections.OrderedDict, torch._utils._rebuild_tensor_v2 and torch storage types; this file asks for more, and lorafuse never runs it. Do not load it with torch.load(weights_only=False) either unless you trust its source.',
  PICKLE_FORBIDDEN_OPCODE:
    'A state dict pickled by torch.save does not need this opcode; lorafuse never runs it. Do not load the file with torch.load(weights_only=False) unless you trust its source.',
  PICKLE_INVALID: 'The file is truncated or corrupt; download or save it again.',
  TORCH_LIMIT: 'A real checkpoint stays far below this limit; the file is corrupt or crafted.',
  TORCH_NOT_STATE_DICT: 'lorafuse reads .bin files that hold a state dict ({name: tensor}), as transformers and PEFT save them.',
  TORCH_TENSOR_UNSUPPORTED: 'Save the state dict with contiguous float32/float16/bfloat16 tensors (or as safetensors) and try again.',
};

/** A PyTorch `.bin` file that lorafuse refuses to read, with the reason. */
export class TorchFormatError extends InputError {
  declare readonly code: TorchFormatErrorCode;
  /** The file's label (path or URL). */
  readonly file: string;

  constructor(code: TorchFormatErrorCode, file: string, detail: string, subject?: string) {
    super(code, `${file}: ${detail}`, { hint: HINTS[code], subject: subject === undefined ? file : `${file}: ${subject}` });
    this.file = file;
  }
}
