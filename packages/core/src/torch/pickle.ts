/**
 * A restricted pickle interpreter: a stack machine over plain data that never imports or calls
 * anything. It knows only the opcodes a state dict pickled by `torch.save` (protocol 2, or 4 when
 * asked) uses; every other opcode is refused by name. What GLOBAL, REDUCE, BUILD and BINPERSID
 * mean is left to {@link PickleHooks}, so the allow-list of globals lives with the torch semantics
 * and not here. Nothing is recursive: hostile nesting costs a counter, never the call stack.
 */
import { TorchFormatError } from './errors.js';

/** An immutable pickle tuple. */
export class PickleTuple {
  constructor(
    readonly items: readonly PickleValue[],
    /** How deeply containers nest inside it, itself included. */
    readonly depth: number,
  ) {}
}

/** A pickle list. */
export class PickleList {
  readonly items: PickleValue[] = [];
  /** How deeply containers nest inside it, itself included (grows as items are appended). */
  depth = 1;
}

/** A dict key: the hashable plain values a state dict can use. */
export type PickleKey = string | number | bigint | boolean | null;

/** A pickle dict (or `collections.OrderedDict`); insertion order kept, a repeated key overwrites as in Python. */
export class PickleDict {
  readonly entries = new Map<PickleKey, PickleValue>();
  /** How deeply containers nest inside it, itself included (grows as items are set). */
  depth = 1;
  constructor(
    /** True for an `OrderedDict` made by REDUCE, false for a plain `{}`. */
    readonly ordered: boolean,
  ) {}
}

/** An object the hooks made (a global's stand-in, a storage, a tensor). The interpreter only moves it around. */
export interface PickleOpaque {
  readonly opaque: string;
}

/** A value on the machine's stack. Integers beyond ±2^53 stay bigint. */
export type PickleValue = null | boolean | number | bigint | string | PickleTuple | PickleList | PickleDict | PickleOpaque;

/** What the opcodes that reach outside plain data mean. Each hook throws to refuse. */
export interface PickleHooks {
  /** GLOBAL / STACK_GLOBAL `module name`: the stand-in for an allowed global. */
  global(module: string, name: string, at: number): PickleValue;
  /** REDUCE: `callable(*args)`, for an allowed callable only. */
  reduce(callable: PickleValue, args: PickleTuple, at: number): PickleValue;
  /** BUILD: `target.__setstate__(state)` for the allowed cases; returns what stays on the stack. */
  build(target: PickleValue, state: PickleValue, at: number): PickleValue;
  /** BINPERSID: the object a persistent id stands for. */
  persistentLoad(pid: PickleValue, at: number): PickleValue;
}

/** The limits that keep a hostile pickle small: values far above what a real state dict needs. */
export interface PickleLimits {
  /** Most values on the stack at once. */
  readonly maxStack: number;
  /** Most memo slots. */
  readonly maxMemo: number;
  /** Most open MARKs at once. */
  readonly maxMarks: number;
  /** Deepest nesting of tuples, lists and dicts. */
  readonly maxDepth: number;
}

/** The default {@link PickleLimits}. A GPT-2 XL state dict needs a few thousand values, nesting 3 deep. */
export const DEFAULT_PICKLE_LIMITS: PickleLimits = { maxStack: 1_000_000, maxMemo: 1_000_000, maxMarks: 64, maxDepth: 32 };

/** Opcode names, for messages about the opcodes that are refused as well as those that are run. */
const OPCODE_NAMES: Record<number, string> = {
  0x28: 'MARK', 0x2e: 'STOP', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP', 0x46: 'FLOAT', 0x49: 'INT', 0x4a: 'BININT',
  0x4b: 'BININT1', 0x4c: 'LONG', 0x4d: 'BININT2', 0x4e: 'NONE', 0x50: 'PERSID', 0x51: 'BINPERSID', 0x52: 'REDUCE',
  0x53: 'STRING', 0x54: 'BINSTRING', 0x55: 'SHORT_BINSTRING', 0x56: 'UNICODE', 0x58: 'BINUNICODE', 0x61: 'APPEND',
  0x62: 'BUILD', 0x63: 'GLOBAL', 0x64: 'DICT', 0x7d: 'EMPTY_DICT', 0x65: 'APPENDS', 0x67: 'GET', 0x68: 'BINGET',
  0x69: 'INST', 0x6a: 'LONG_BINGET', 0x6c: 'LIST', 0x5d: 'EMPTY_LIST', 0x6f: 'OBJ', 0x70: 'PUT', 0x71: 'BINPUT',
  0x72: 'LONG_BINPUT', 0x73: 'SETITEM', 0x74: 'TUPLE', 0x29: 'EMPTY_TUPLE', 0x75: 'SETITEMS', 0x47: 'BINFLOAT',
  0x80: 'PROTO', 0x81: 'NEWOBJ', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x85: 'TUPLE1', 0x86: 'TUPLE2',
  0x87: 'TUPLE3', 0x88: 'NEWTRUE', 0x89: 'NEWFALSE', 0x8a: 'LONG1', 0x8b: 'LONG4', 0x42: 'BINBYTES',
  0x43: 'SHORT_BINBYTES', 0x8c: 'SHORT_BINUNICODE', 0x8d: 'BINUNICODE8', 0x8e: 'BINBYTES8', 0x8f: 'EMPTY_SET',
  0x90: 'ADDITEMS', 0x91: 'FROZENSET', 0x92: 'NEWOBJ_EX', 0x93: 'STACK_GLOBAL', 0x94: 'MEMOIZE', 0x95: 'FRAME',
  0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
};

/** The name of a pickle opcode byte, e.g. `INST`, or its hex value when pickle has no such opcode. */
export function opcodeName(op: number): string {
  return OPCODE_NAMES[op] ?? `0x${op.toString(16).padStart(2, '0')}`;
}

const MARK = Symbol('mark');
type Slot = PickleValue | typeof MARK;

const utf8 = new TextDecoder('utf-8', { fatal: true });

function depthOf(v: PickleValue): number {
  return v instanceof PickleTuple || v instanceof PickleList || v instanceof PickleDict ? v.depth : 0;
}

/** A short description of a value's type for messages. */
export function describePickleValue(v: PickleValue): string {
  if (v === null) return 'None';
  if (typeof v === 'boolean') return 'a bool';
  if (typeof v === 'number' || typeof v === 'bigint') return 'an int';
  if (typeof v === 'string') return 'a str';
  if (v instanceof PickleTuple) return `a tuple of ${v.items.length}`;
  if (v instanceof PickleList) return 'a list';
  if (v instanceof PickleDict) return v.ordered ? 'an OrderedDict' : 'a dict';
  return v.opaque;
}

/**
 * Runs the pickle `bytes` (the `data.pkl` record of file `label`) and returns the value STOP leaves.
 * Throws `TorchFormatError`: PICKLE_FORBIDDEN_OPCODE (naming the opcode and its byte position),
 * PICKLE_INVALID, TORCH_LIMIT, or whatever the hooks refuse.
 */
export function runRestrictedPickle(bytes: Uint8Array, label: string, hooks: PickleHooks, limits: PickleLimits = DEFAULT_PICKLE_LIMITS): PickleValue {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: Slot[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PickleValue>();
  let pos = 0;
  let opAt = 0;
  let op = 0;

  const fail = (detail: string): never => {
    throw new TorchFormatError('PICKLE_INVALID', label, `malformed pickle in data.pkl: ${opcodeName(op)} at byte ${opAt}: ${detail}`);
  };
  const limit = (detail: string): never => {
    throw new TorchFormatError('TORCH_LIMIT', label, `the pickle in data.pkl ${detail} (${opcodeName(op)} at byte ${opAt})`);
  };
  const take = (n: number): number => {
    if (n > bytes.byteLength - pos) fail(`needs ${n} bytes, only ${bytes.byteLength - pos} are left`);
    const at = pos;
    pos += n;
    return at;
  };
  const push = (v: PickleValue): void => {
    if (stack.length >= limits.maxStack) limit(`holds more than ${limits.maxStack} values at once`);
    if (depthOf(v) > limits.maxDepth) limit(`nests containers deeper than ${limits.maxDepth}`);
    stack.push(v);
  };
  const pop = (): PickleValue => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1]!)) fail('the stack is empty');
    const v = stack.pop()!;
    return v as PickleValue;
  };
  const top = (): PickleValue => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1]!)) fail('the stack is empty');
    return stack[stack.length - 1] as PickleValue;
  };
  const popMark = (): PickleValue[] => {
    const m = marks.pop();
    if (m === undefined) fail('no MARK before it');
    const items = stack.splice(m!) as PickleValue[];
    return items;
  };
  const tuple = (items: PickleValue[]): PickleTuple => new PickleTuple(items, 1 + items.reduce<number>((d, v) => Math.max(d, depthOf(v)), 0));
  const text = (n: number): string => {
    const at = take(n);
    try {
      return utf8.decode(bytes.subarray(at, at + n));
    } catch {
      return fail('the string is not valid UTF-8');
    }
  };
  const putMemo = (index: number): void => {
    if (!memo.has(index) && memo.size >= limits.maxMemo) limit(`uses more than ${limits.maxMemo} memo slots`);
    memo.set(index, top());
  };
  const getMemo = (index: number): void => {
    if (!memo.has(index)) fail(`memo slot ${index} was never stored`);
    push(memo.get(index)!);
  };
  const setItems = (dict: PickleValue, items: PickleValue[]): void => {
    if (!(dict instanceof PickleDict)) return fail(`sets items on ${describePickleValue(dict)}, not a dict`);
    if (items.length % 2 !== 0) fail('an odd number of keys and values');
    for (let i = 0; i < items.length; i += 2) {
      const key = items[i]!;
      if (key !== null && typeof key === 'object') fail(`a dict key must be a str or an int, got ${describePickleValue(key)}`);
      const value = items[i + 1]!;
      dict.depth = Math.max(dict.depth, depthOf(value) + 1);
      if (dict.depth > limits.maxDepth) limit(`nests containers deeper than ${limits.maxDepth}`);
      dict.entries.set(key as PickleKey, value);
    }
  };
  const append = (list: PickleValue, items: PickleValue[]): void => {
    if (!(list instanceof PickleList)) return fail(`appends to ${describePickleValue(list)}, not a list`);
    for (const v of items) {
      list.depth = Math.max(list.depth, depthOf(v) + 1);
      if (list.depth > limits.maxDepth) limit(`nests containers deeper than ${limits.maxDepth}`);
      list.items.push(v);
    }
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail('the line has no end');
    const s = new TextDecoder('latin1').decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };

  while (pos < bytes.byteLength) {
    opAt = pos;
    op = bytes[pos++]!;
    switch (op) {
      case 0x80: { // PROTO
        const version = bytes[take(1)]!;
        if (version > 5) fail(`protocol ${version} is unknown`);
        break;
      }
      case 0x95: take(8); break; // FRAME: a length prefix only; the bytes follow in place
      case 0x2e: { // STOP
        const v = pop();
        if (stack.length !== 0 || marks.length !== 0) fail('values left on the stack');
        return v;
      }
      case 0x28: // MARK
        if (marks.length >= limits.maxMarks) limit(`opens more than ${limits.maxMarks} MARKs at once`);
        marks.push(stack.length);
        break;
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x4e: push(null); break; // NONE
      case 0x88: push(true); break; // NEWTRUE
      case 0x89: push(false); break; // NEWFALSE
      case 0x4b: push(bytes[take(1)]!); break; // BININT1
      case 0x4d: push(dv.getUint16(take(2), true)); break; // BININT2
      case 0x4a: push(dv.getInt32(take(4), true)); break; // BININT
      case 0x8a: { // LONG1: little-endian two's complement
        const n = bytes[take(1)]!;
        const at = take(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[at + i]!);
        if (n > 0 && bytes[at + n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
        push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: push(dv.getFloat64(take(8), false)); break; // BINFLOAT (big-endian, as pickle writes it)
      case 0x58: push(text(dv.getUint32(take(4), true))); break; // BINUNICODE
      case 0x8c: push(text(bytes[take(1)]!)); break; // SHORT_BINUNICODE
      case 0x8d: { // BINUNICODE8
        const n = dv.getBigUint64(take(8), true);
        if (n > BigInt(bytes.byteLength - pos)) fail(`a string of ${n} bytes, only ${bytes.byteLength - pos} are left`);
        push(text(Number(n)));
        break;
      }
      case 0x29: push(new PickleTuple([], 1)); break; // EMPTY_TUPLE
      case 0x74: push(tuple(popMark())); break; // TUPLE
      case 0x85: push(tuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); push(tuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); push(tuple([a, b, c])); break; } // TUPLE3
      case 0x5d: push(new PickleList()); break; // EMPTY_LIST
      case 0x61: { const v = pop(); append(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); append(top(), items); break; } // APPENDS
      case 0x7d: push(new PickleDict(false)); break; // EMPTY_DICT
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x71: putMemo(bytes[take(1)]!); break; // BINPUT
      case 0x72: putMemo(dv.getUint32(take(4), true)); break; // LONG_BINPUT
      case 0x94: putMemo(memo.size); break; // MEMOIZE
      case 0x68: getMemo(bytes[take(1)]!); break; // BINGET
      case 0x6a: getMemo(dv.getUint32(take(4), true)); break; // LONG_BINGET
      case 0x63: { // GLOBAL: "module\nname\n"
        const module = line();
        const name = line();
        push(hooks.global(module, name, opAt));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('module and name must be strings');
        push(hooks.global(module as string, name as string, opAt));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const callable = pop();
        if (!(args instanceof PickleTuple)) fail(`the arguments must be a tuple, got ${describePickleValue(args)}`);
        push(hooks.reduce(callable, args as PickleTuple, opAt));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const target = pop();
        push(hooks.build(target, state, opAt));
        break;
      }
      case 0x51: push(hooks.persistentLoad(pop(), opAt)); break; // BINPERSID
      default:
        throw new TorchFormatError('PICKLE_FORBIDDEN_OPCODE', label, `the pickle in data.pkl uses opcode ${opcodeName(op)} at byte ${opAt}, which lorafuse does not run`, opcodeName(op));
    }
  }
  op = 0x2e;
  opAt = pos;
  return fail('the pickle ends without STOP');
}
