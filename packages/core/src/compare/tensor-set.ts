/**
 * The two sides of a diff as sets of tensors keyed by canonical name, and matching them by name
 * (never by position or file order).
 */
import { canonicalName } from '../gpt2/architecture.js';
import { InputError } from '../errors.js';
import { PEFT_KEY_PREFIX } from '../peft/adapter-keys.js';
import type { TensorRef } from '../safetensors/tensor-ref.js';
import type { SafetensorsHeader } from '../safetensors/header.js';

/**
 * How stored keys become the names tensors are matched by:
 * - `'checkpoint'`: GPT-2 checkpoint keys, with or without the `transformer.` prefix ({@link canonicalName});
 * - `'adapter'`: PEFT adapter keys, with or without `base_model.model.`, then as a checkpoint key.
 */
export type KeyNaming = 'checkpoint' | 'adapter';

/** The name a stored key is matched by under `naming`. */
export function canonicalTensorKey(name: string, naming: KeyNaming): string {
  const path = naming === 'adapter' && name.startsWith(PEFT_KEY_PREFIX) ? name.slice(PEFT_KEY_PREFIX.length) : name;
  return canonicalName(path);
}

/**
 * Whether a set of stored keys looks like a PEFT adapter (a `lora_` key or a `base_model.model.`
 * prefix), for a bare `.safetensors` file whose directory says nothing.
 */
export function looksLikeAdapterKeys(names: Iterable<string>): boolean {
  for (const n of names) if (n.startsWith(PEFT_KEY_PREFIX) || /(^|\.)lora_/.test(n)) return true;
  return false;
}

/** One side of a diff. */
export interface TensorSet {
  /** The side's path or label, for messages. */
  readonly label: string;
  /** Tensors by canonical name. */
  readonly tensors: ReadonlyMap<string, TensorRef>;
  /** How a tensor got its value when not by its own key (as-loaded sides: `tied-to-wte`, ...). */
  readonly via?: ReadonlyMap<string, string>;
}

/**
 * Collects the tensors of one side (a file, or the shards of a checkpoint) by canonical name.
 *
 * @throws InputError `DUPLICATE_TENSOR` when two stored keys (in one file or across shards) have the
 *   same canonical name, e.g. `wte.weight` and `transformer.wte.weight`: which one a loader would
 *   take is not a question a diff should guess.
 */
export function tensorSetFromHeaders(label: string, headers: readonly SafetensorsHeader[], naming: KeyNaming): TensorSet {
  const tensors = new Map<string, TensorRef>();
  for (const h of headers) {
    for (const t of h.tensors) {
      const key = canonicalTensorKey(t.name, naming);
      const prior = tensors.get(key);
      if (prior !== undefined) {
        const where = prior.file === h.label ? `in ${h.label}` : `in ${prior.file} and ${h.label}`;
        throw new InputError('DUPLICATE_TENSOR', `${label}: "${prior.name}" and "${t.name}" (${where}) are the same tensor ${key}`, {
          subject: key,
          hint: 'A checkpoint must store each tensor once; re-save it with save_pretrained.',
        });
      }
      tensors.set(key, { file: h.label, name: t.name, dtype: t.dtype, shape: [...t.shape], fileOffset: t.fileOffset, byteLength: t.byteLength });
    }
  }
  return { label, tensors };
}

/** Keys of two sides matched by name, each list sorted by canonical name. */
export interface TensorMatch {
  readonly onlyInA: ReadonlyArray<{ readonly key: string; readonly ref: TensorRef }>;
  readonly onlyInB: ReadonlyArray<{ readonly key: string; readonly ref: TensorRef }>;
  readonly pairs: ReadonlyArray<{ readonly key: string; readonly a: TensorRef; readonly b: TensorRef }>;
}

/** Matches two sides by canonical name. */
export function matchTensorSets(a: TensorSet, b: TensorSet): TensorMatch {
  const keys = [...new Set([...a.tensors.keys(), ...b.tensors.keys()])].sort();
  const onlyInA: Array<{ key: string; ref: TensorRef }> = [];
  const onlyInB: Array<{ key: string; ref: TensorRef }> = [];
  const pairs: Array<{ key: string; a: TensorRef; b: TensorRef }> = [];
  for (const key of keys) {
    const x = a.tensors.get(key);
    const y = b.tensors.get(key);
    if (x && y) pairs.push({ key, a: x, b: y });
    else if (x) onlyInA.push({ key, ref: x });
    else if (y) onlyInB.push({ key, ref: y });
  }
  return { onlyInA, onlyInB, pairs };
}
