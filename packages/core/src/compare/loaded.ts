/**
 * Diffing what transformers would load from two checkpoints rather than what the files store: each
 * side goes through {@link emulateTransformersLoad} (ties applied, prefixes normalised, buffers and
 * unexpected keys dropped) under v5 and v4 rules, and the loaded parameters are diffed by name. A
 * tied checkpoint without `lm_head.weight` and the same weights with a copy of it are then equal.
 */
import type { CompareStats, CompareTolerance } from '@lorafuse/kernels';
import { emulateTransformersLoad, type LoadEmulation, type TransformersVersion } from '../load/emulate-load.js';
import type { TensorRef } from '../safetensors/tensor-ref.js';
import type { SafetensorsHeader } from '../safetensors/header.js';
import { diffTensorSets, type DiffOptions, type TensorComparer, type TensorSetDiff } from './diff.js';
import type { TensorSet } from './tensor-set.js';

/** A checkpoint directory as the loader sees it. */
export interface LoadableCheckpoint {
  readonly label: string;
  /** Parsed `config.json`. */
  readonly config: Record<string, unknown>;
  /** The safetensors headers of its weight files (one, or every shard). */
  readonly files: readonly SafetensorsHeader[];
}

/** What one side's emulated load did besides giving each parameter a value. */
export interface LoadSummary {
  readonly architecture: string;
  /** Whether lm_head and wte are one parameter after loading. */
  readonly tied: boolean;
  /** Parameters without a stored value: transformers initialises them randomly. */
  readonly randomlyInitialised: readonly string[];
  /** Stored tensors whose values the load throws away (a stored lm_head under a tied config in v4), and why. */
  readonly discarded: ReadonlyArray<{ readonly name: string; readonly reason: string }>;
  /** Stored keys the model does not use (old attention buffers, heads of other architectures). */
  readonly ignored: readonly string[];
  readonly notes: readonly string[];
}

/** The diff under one or more transformers versions that gave the same result. */
export interface LoadedDiffGroup {
  readonly versions: readonly TransformersVersion[];
  readonly a: LoadSummary;
  readonly b: LoadSummary;
  readonly diff: TensorSetDiff;
  /** `diff.equal`, and no parameter is randomly initialised on either side. */
  readonly equal: boolean;
}

/** The result of {@link diffAsLoaded}. */
export interface LoadedDiff {
  readonly equal: boolean;
  /** One group when v5 and v4 give the same result, else one per version (v5 first). */
  readonly groups: readonly LoadedDiffGroup[];
  readonly verdict: string;
}

/** The transformers versions whose loading rules `diffAsLoaded` applies, in report order. */
export const DIFF_LOAD_VERSIONS: readonly TransformersVersion[] = ['v5', 'v4'];

const refKey = (r: TensorRef) => `${r.file}\u0000${r.fileOffset}\u0000${r.byteLength}\u0000${r.dtype}`;

/** Caches a comparer's answers per pair of byte ranges, so a tensor pair met under both versions is read once. */
function memoize(comparer: TensorComparer): TensorComparer {
  const equal = new Map<string, Promise<boolean>>();
  const stats = new Map<string, Promise<CompareStats>>();
  return {
    bytesEqual(a, b) {
      const k = `${refKey(a)}|${refKey(b)}`;
      let p = equal.get(k);
      if (p === undefined) equal.set(k, (p = comparer.bytesEqual(a, b)));
      return p;
    },
    compare(a, b, tolerance: CompareTolerance) {
      const k = `${refKey(a)}|${refKey(b)}|${tolerance.atol}|${tolerance.rtol}|${tolerance.equalNan}`;
      let p = stats.get(k);
      if (p === undefined) stats.set(k, (p = comparer.compare(a, b, tolerance)));
      // Each caller gets its own copy (worst lists are arrays).
      return p.then((s) => structuredClone(s));
    },
  };
}

function loadedSet(label: string, emulation: LoadEmulation): TensorSet {
  const tensors = new Map<string, TensorRef>();
  const via = new Map<string, string>();
  for (const p of emulation.params.values()) {
    if (p.ref === null) continue;
    tensors.set(p.name, p.ref);
    if (p.via) via.set(p.name, p.via);
  }
  return { label, tensors, via };
}

function summaryOf(e: LoadEmulation): LoadSummary {
  return { architecture: e.architecture, tied: e.tied, randomlyInitialised: [...e.randomlyInitialised], discarded: e.discarded.map((d) => ({ ...d })), ignored: [...e.ignored], notes: [...e.notes] };
}

/**
 * Diffs the parameters transformers would load from checkpoints `a` and `b`, under each of
 * {@link DIFF_LOAD_VERSIONS}; versions with identical outcomes are reported together.
 */
export async function diffAsLoaded(a: LoadableCheckpoint, b: LoadableCheckpoint, comparer: TensorComparer, options: DiffOptions): Promise<LoadedDiff> {
  const cached = memoize(comparer);
  // The loader ties only on byte equality of the stored pair; different shapes or dtypes never are.
  const equal = (x: TensorRef, y: TensorRef) =>
    x.dtype === y.dtype && x.byteLength === y.byteLength && x.shape.length === y.shape.length && x.shape.every((d, i) => d === y.shape[i])
      ? cached.bytesEqual(x, y)
      : Promise.resolve(false);
  const groups: LoadedDiffGroup[] = [];
  for (const version of DIFF_LOAD_VERSIONS) {
    const [ea, eb] = await Promise.all([
      emulateTransformersLoad({ config: a.config, files: a.files, version, equal }),
      emulateTransformersLoad({ config: b.config, files: b.files, version, equal }),
    ]);
    const diff = await diffTensorSets(loadedSet(a.label, ea), loadedSet(b.label, eb), cached, options);
    const group: LoadedDiffGroup = {
      versions: [version],
      a: summaryOf(ea),
      b: summaryOf(eb),
      diff,
      equal: diff.equal && ea.randomlyInitialised.length === 0 && eb.randomlyInitialised.length === 0,
    };
    const same = groups.find((g) => sameOutcome(g, group));
    if (same) (same.versions as TransformersVersion[]).push(version);
    else groups.push(group);
  }
  const isEqual = groups.every((g) => g.equal);
  return { equal: isEqual, groups, verdict: loadedVerdict(groups) };
}

function sameOutcome(x: LoadedDiffGroup, y: LoadedDiffGroup): boolean {
  const strip = (g: LoadedDiffGroup) => JSON.stringify({ a: g.a, b: g.b, diff: g.diff, equal: g.equal });
  return strip(x) === strip(y);
}

function loadedVerdict(groups: readonly LoadedDiffGroup[]): string {
  const parts = groups.map((g) => {
    const who = `transformers ${g.versions.join(' and ')}`;
    const random = [
      ...(g.a.randomlyInitialised.length > 0 ? [`a leaves ${g.a.randomlyInitialised.join(', ')} randomly initialised`] : []),
      ...(g.b.randomlyInitialised.length > 0 ? [`b leaves ${g.b.randomlyInitialised.join(', ')} randomly initialised`] : []),
    ];
    const [word, rest] = splitVerdict(g.diff.verdict);
    if (g.equal) return `equal as loaded by ${who}: ${rest}`;
    if (word === 'equal') return `differs as loaded by ${who}: ${random.join('; ')}`;
    return `differs as loaded by ${who}: ${[rest, ...random].join('; ')}`;
  });
  return parts.join(' | ');
}

function splitVerdict(v: string): [string, string] {
  const i = v.indexOf(': ');
  return i < 0 ? [v, ''] : [v.slice(0, i), v.slice(i + 2)];
}
