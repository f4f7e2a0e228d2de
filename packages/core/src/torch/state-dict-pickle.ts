/**
 * What the pickle of a `torch.save`d state dict may mean: the allow-list of globals and the
 * meaning of REDUCE, BUILD and BINPERSID for them. A state dict written by transformers or PEFT
 * (`torch.save(state_dict)`, default protocol 2) needs exactly:
 *
 * - `collections.OrderedDict`, called with no arguments (then SETITEMS), optionally followed by
 *   BUILD with a dict of attributes (`state_dict()` keeps `_metadata` there), which is dropped;
 * - `torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
 *   backward_hooks[, metadata])`, with empty hooks and metadata;
 * - storage classes `torch.FloatStorage` / `HalfStorage` / `BFloat16Storage`, which only ever appear
 *   inside a persistent id `('storage', <class>, key, location, numel)` (BINPERSID) naming the
 *   record `data/<key>` of the archive.
 *
 * Everything else (another global, `_rebuild_parameter`, REDUCE on anything but the two callables,
 * BUILD on anything but an OrderedDict) is refused by name. Nothing is imported or called: the
 * values below are descriptions, and the tensor bytes stay in the file.
 */
import type { Dtype } from '../safetensors/dtype.js';
import { TorchFormatError } from './errors.js';
import { describePickleValue, PickleDict, PickleTuple, runRestrictedPickle, type PickleHooks, type PickleOpaque, type PickleValue } from './pickle.js';

/** The storage classes lorafuse reads, with the dtype of their elements. */
const STORAGE_DTYPES: ReadonlyMap<string, Dtype> = new Map([
  ['FloatStorage', 'F32'],
  ['HalfStorage', 'F16'],
  ['BFloat16Storage', 'BF16'],
]);

/** Storage classes torch has that lorafuse does not read: refused with a message about dtypes, not safety. */
const OTHER_STORAGES = new Set(['DoubleStorage', 'LongStorage', 'IntStorage', 'ShortStorage', 'CharStorage', 'ByteStorage', 'BoolStorage', 'ComplexFloatStorage', 'ComplexDoubleStorage', 'UntypedStorage']);

/** A global on the allow-list, as the pickle holds it. */
class AllowedGlobal implements PickleOpaque {
  readonly opaque: string;
  constructor(
    readonly kind: 'ordered-dict' | 'rebuild-tensor' | 'storage',
    readonly qualifiedName: string,
    readonly dtype?: Dtype,
  ) {
    this.opaque = `the global ${qualifiedName}`;
  }
}

/** A storage a persistent id names: the bytes of record `data/<key>`. */
export class TorchStorageRef implements PickleOpaque {
  readonly opaque = 'a storage';
  constructor(
    readonly key: string,
    readonly dtype: Dtype,
    /** Elements (not bytes) the storage holds. */
    readonly numel: number,
    /** Where torch had it (`cpu`, `cuda:0`): irrelevant to the bytes. */
    readonly location: string,
  ) {}
}

/** A tensor as `_rebuild_tensor_v2` describes it: a strided view of a storage. Counts in elements. */
export class TorchTensorView implements PickleOpaque {
  readonly opaque = 'a tensor';
  constructor(
    readonly storage: TorchStorageRef,
    readonly storageOffset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
  ) {}
}

function allowedGlobal(module: string, name: string): AllowedGlobal | undefined {
  if (module === 'collections' && name === 'OrderedDict') return new AllowedGlobal('ordered-dict', 'collections.OrderedDict');
  if (module === 'torch._utils' && name === '_rebuild_tensor_v2') return new AllowedGlobal('rebuild-tensor', 'torch._utils._rebuild_tensor_v2');
  const dtype = module === 'torch' ? STORAGE_DTYPES.get(name) : undefined;
  if (dtype) return new AllowedGlobal('storage', `torch.${name}`, dtype);
  return undefined;
}

/** The refusal of a global outside the allow-list, with a reason where the global is a known torch one. */
function forbiddenGlobal(label: string, module: string, name: string, at: number): TorchFormatError {
  const qualified = `${module}.${name}`;
  const why = module === 'torch' && OTHER_STORAGES.has(name)
    ? `: lorafuse reads float32, float16 and bfloat16 tensors only`
    : qualified === 'torch._utils._rebuild_parameter'
      ? ': it rebuilds a torch.nn.Parameter, which state_dict() never saves (it saves plain tensors)'
      : '';
  return new TorchFormatError('PICKLE_FORBIDDEN_GLOBAL', label, `the pickle in data.pkl asks for the global ${qualified} (GLOBAL at byte ${at}), which is not on lorafuse's allow-list${why}; nothing was run`, qualified);
}

function safeInt(v: PickleValue): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) ? v : undefined;
}

function intTuple(v: PickleValue): number[] | undefined {
  if (!(v instanceof PickleTuple)) return undefined;
  const out: number[] = [];
  for (const x of v.items) {
    const n = safeInt(x);
    if (n === undefined) return undefined;
    out.push(n);
  }
  return out;
}

function isEmptyDict(v: PickleValue): boolean {
  return v instanceof PickleDict && v.entries.size === 0;
}

/** The hooks that give a state-dict pickle its meaning (see the module comment). */
function stateDictHooks(label: string): PickleHooks {
  const storages = new Map<string, TorchStorageRef>();
  const bad = (at: number, detail: string): never => {
    throw new TorchFormatError('PICKLE_INVALID', label, `the pickle in data.pkl at byte ${at}: ${detail}`);
  };
  return {
    global(module, name, at) {
      const g = allowedGlobal(module, name);
      if (!g) throw forbiddenGlobal(label, module, name, at);
      return g;
    },
    reduce(callable, args, at) {
      if (!(callable instanceof AllowedGlobal) || callable.kind === 'storage') {
        throw new TorchFormatError('PICKLE_FORBIDDEN_OPCODE', label, `the pickle in data.pkl calls ${describePickleValue(callable)} (REDUCE at byte ${at}); lorafuse calls only collections.OrderedDict and torch._utils._rebuild_tensor_v2, and only as descriptions`, 'REDUCE');
      }
      if (callable.kind === 'ordered-dict') {
        if (args.items.length !== 0) bad(at, `collections.OrderedDict is called with ${args.items.length} arguments; torch.save calls it with none`);
        return new PickleDict(true);
      }
      const [storage, offset, size, stride, requiresGrad, hooks, metadata] = args.items;
      if (args.items.length !== 6 && args.items.length !== 7) bad(at, `_rebuild_tensor_v2 takes 6 or 7 arguments, got ${args.items.length}`);
      if (!(storage instanceof TorchStorageRef)) return bad(at, `_rebuild_tensor_v2's storage is ${describePickleValue(storage!)}, not a persistent storage id`);
      const storageOffset = safeInt(offset!);
      const shape = intTuple(size!);
      const strides = intTuple(stride!);
      if (storageOffset === undefined || storageOffset < 0) return bad(at, '_rebuild_tensor_v2: the storage offset must be a non-negative int');
      if (!shape || shape.some((d) => d < 0)) return bad(at, '_rebuild_tensor_v2: the size must be a tuple of non-negative ints');
      if (!strides || strides.length !== shape.length) return bad(at, '_rebuild_tensor_v2: the stride must be a tuple of ints, one per dimension');
      if (typeof requiresGrad !== 'boolean') bad(at, '_rebuild_tensor_v2: requires_grad must be a bool');
      // Hooks or tensor metadata would need more globals to mean anything; empty ones are what torch writes.
      if (!isEmptyDict(hooks!)) bad(at, `_rebuild_tensor_v2: backward_hooks must be an empty OrderedDict, got ${describePickleValue(hooks!)}`);
      if (metadata !== undefined && metadata !== null && !isEmptyDict(metadata)) {
        throw new TorchFormatError('TORCH_TENSOR_UNSUPPORTED', label, `a tensor at byte ${at} of data.pkl carries tensor metadata (${describePickleValue(metadata)}), which lorafuse does not interpret`);
      }
      return new TorchTensorView(storage, storageOffset, shape, strides);
    },
    build(target, state, at) {
      // state_dict() returns an OrderedDict with a `_metadata` attribute (module versions); pickling
      // it sets that attribute with BUILD. The attributes carry no weights and are dropped.
      if (target instanceof PickleDict && target.ordered && state instanceof PickleDict) return target;
      throw new TorchFormatError('PICKLE_FORBIDDEN_OPCODE', label, `the pickle in data.pkl uses BUILD at byte ${at} on ${describePickleValue(target)} with ${describePickleValue(state)}; lorafuse allows BUILD only to set an OrderedDict's attributes`, 'BUILD');
    },
    persistentLoad(pid, at) {
      const items = pid instanceof PickleTuple ? pid.items : [];
      const [tag, type, key, location, numel] = items;
      if (items.length !== 5 || tag !== 'storage') return bad(at, `a persistent id must be ('storage', type, key, location, numel), got ${describePickleValue(pid)}`);
      if (!(type instanceof AllowedGlobal) || type.kind !== 'storage') return bad(at, `the persistent id's storage type is ${describePickleValue(type!)}`);
      if (typeof key !== 'string' || typeof location !== 'string') return bad(at, "the persistent id's key and location must be strings");
      const n = safeInt(numel!);
      if (n === undefined || n < 0) return bad(at, "the persistent id's element count must be a non-negative int");
      const seen = storages.get(key);
      if (seen) {
        if (seen.dtype !== type.dtype || seen.numel !== n) bad(at, `storage ${JSON.stringify(key)} appears as ${seen.numel} ${seen.dtype} and as ${n} ${type.dtype!} elements`);
        return seen;
      }
      const ref = new TorchStorageRef(key, type.dtype!, n, location);
      storages.set(key, ref);
      return ref;
    },
  };
}

/** A state dict read from a pickle: tensor names to tensor views, in the dict's order. */
export type TorchStateDict = ReadonlyMap<string, TorchTensorView>;

/**
 * Interprets the `data.pkl` bytes of `torch.save` archive `label` as a state dict, running nothing.
 * Throws `TorchFormatError` naming the refused global or opcode, or what is not a state dict.
 */
export function readStateDictPickle(bytes: Uint8Array, label: string): TorchStateDict {
  const root = runRestrictedPickle(bytes, label, stateDictHooks(label));
  if (!(root instanceof PickleDict)) {
    throw new TorchFormatError('TORCH_NOT_STATE_DICT', label, `data.pkl holds ${describePickleValue(root)}, not a state dict`);
  }
  const out = new Map<string, TorchTensorView>();
  for (const [key, value] of root.entries) {
    if (typeof key !== 'string') throw new TorchFormatError('TORCH_NOT_STATE_DICT', label, `the state dict has a key that is ${describePickleValue(key)}, not a tensor name`);
    if (!(value instanceof TorchTensorView)) {
      throw new TorchFormatError('TORCH_NOT_STATE_DICT', label, `the state dict's entry ${JSON.stringify(key)} is ${describePickleValue(value)}, not a tensor`, key);
    }
    out.set(key, value);
  }
  return out;
}
