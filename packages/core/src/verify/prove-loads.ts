/**
 * The proof, one implementation for `lorafuse merge` (on the file it just wrote), `lorafuse verify`
 * (on any directory) and the browser app (on the bytes it is about to offer): emulate what transformers v4 and v5 load from a checkpoint, and check every
 * loaded parameter against what was meant. A parameter transformers would draw at random fails, and
 * so does one whose loaded bytes are not the intended ones (the tie case names `lm_head.weight`).
 */
import { compareRef } from '@lorafuse/kernels/reference';
import type { ByteSource } from '../io.js';
import { canonicalName } from '../gpt2/architecture.js';
import { configShapeMismatches } from '../gpt2/config-shapes.js';
import { emulateTransformersLoad, type LoadedParam } from '../load/index.js';
import type { PlannedTensor } from '../plan/types.js';
import type { SafetensorsHeader } from '../safetensors/header.js';
import type { TensorRef } from '../safetensors/tensor-ref.js';
import { rangesEqualBySlices } from './ranges-equal.js';
import { verifyLoads, type ParamCheck, type VerifyReport } from './verify-load.js';

/**
 * What a parameter was meant to be: the SHA-256 of bytes this run computed; an input byte range
 * copied as is (compared byte for byte: cheaper than hashing 500 MB twice); a planned tensor to
 * recompute (another tool's output, judged within tolerance); or anything, for a loss the user forced.
 */
export type Intended =
  | { readonly kind: 'digest'; readonly digest: string }
  | { readonly kind: 'range'; readonly ref: TensorRef }
  | { readonly kind: 'tensor'; readonly tensor: PlannedTensor }
  | { readonly kind: 'accept-any'; readonly reason: string };

/** Inputs of {@link proveLoads}. */
export interface ProveInput {
  /** The checkpoint transformers would load: its config and the headers of its weight files. */
  readonly config: Record<string, unknown>;
  readonly headers: readonly SafetensorsHeader[];
  /** Bytes of any file named in a header or an intent. */
  readonly sourceOf: (file: string) => ByteSource;
  /** The intent for a parameter (canonical name); undefined when nothing was meant. */
  readonly intendedOf: (canonicalName: string) => Intended | undefined;
  /** Who meant the values, for messages: `the merge`, `base + adapter`. */
  readonly meantBy: string;
  /**
   * How close a recomputed tensor must be; omitted: bytes must match exactly. F16/BF16 tensors get
   * at least one unit of their rounding as relative tolerance (a re-encoding rounds once more).
   */
  readonly tolerance?: { readonly atol: number; readonly rtol: number; readonly equalNan?: boolean };
  /** Computes a planned tensor's bytes in its dtype (merges, trainable-token rows) for `tensor` intents. */
  readonly compute?: (tensor: PlannedTensor) => Promise<Uint8Array>;
  /**
   * Pairs of ranges already compared byte for byte by the caller (many small tensors compared as one
   * run): `true` when `a`'s bytes are known to equal `b`'s.
   */
  readonly knownEqual?: (a: TensorRef, b: TensorRef) => boolean;
  /** Checks in flight at once (default 1: a check that computes holds whole tensors in memory). */
  readonly concurrency?: number;
  /** Called as each check starts (progress). */
  readonly onCheck?: (param: LoadedParam) => void;
  /** SHA-256 (hex) of a byte range: the host's hashing (Node's crypto, the page's SubtleCrypto). */
  readonly digestRange: (source: ByteSource, offset: number, length: number) => Promise<string>;
  /** Whether two byte ranges of one length are equal (default: read both whole and compare). */
  readonly rangesEqual?: (a: ByteSource, offsetA: number, b: ByteSource, offsetB: number, length: number) => Promise<boolean>;
}

function elementTypeOf(ref: { readonly name: string; readonly dtype: string }): 'f32' | 'f16' | 'bf16' {
  if (ref.dtype === 'F32') return 'f32';
  if (ref.dtype === 'F16') return 'f16';
  if (ref.dtype === 'BF16') return 'bf16';
  throw new Error(`internal: ${ref.name} (${ref.dtype}) is not a float tensor the compare kernel reads`);
}

const UNIT_ROUNDOFF: Record<string, number> = { F32: 0, F16: 2 ** -10, BF16: 2 ** -7 };

/** Emulates both versions' loads and checks every parameter; never throws for a mismatch (the report says). */
export async function proveLoads(input: ProveInput): Promise<VerifyReport> {
  const digests = new Map<string, Promise<string>>();
  const digestOf = (ref: TensorRef) => {
    const key = `${ref.file}@${ref.fileOffset}`;
    let d = digests.get(key);
    if (!d) {
      d = input.digestRange(input.sourceOf(ref.file), ref.fileOffset, ref.byteLength);
      digests.set(key, d);
    }
    return d;
  };
  // v4 and v5 often load the same range for a parameter (a tied lm_head is wte in both): compare a pair once.
  const compares = new Map<string, Promise<boolean>>();
  const sameBytes = async (a: TensorRef, b: TensorRef): Promise<boolean> => {
    if (a.dtype !== b.dtype || a.byteLength !== b.byteLength) return false;
    if (input.knownEqual?.(a, b) === true) return true;
    const [x, y] = [`${a.file}@${a.fileOffset}`, `${b.file}@${b.fileOffset}`].sort();
    const key = `${x}|${y}|${a.byteLength}`;
    let same = compares.get(key);
    if (!same) {
      same = (input.rangesEqual ?? rangesEqualBySlices)(input.sourceOf(a.file), a.fileOffset, input.sourceOf(b.file), b.fileOffset, a.byteLength);
      compares.set(key, same);
    }
    return same;
  };
  const equal = async (a: TensorRef, b: TensorRef) => a.dtype === b.dtype && a.byteLength === b.byteLength && (await digestOf(a)) === (await digestOf(b));
  const emulations = [
    await emulateTransformersLoad({ config: input.config, files: input.headers, version: 'v4', equal }),
    await emulateTransformersLoad({ config: input.config, files: input.headers, version: 'v5', equal }),
  ];
  let lastComputed: { tensor: PlannedTensor; bytes: Uint8Array } | undefined;
  const computeOnce = async (tensor: PlannedTensor): Promise<Uint8Array> => {
    if (lastComputed?.tensor === tensor) return lastComputed.bytes;
    if (!input.compute) throw new Error(`internal: no way to compute ${tensor.name}`);
    lastComputed = { tensor, bytes: await input.compute(tensor) };
    return lastComputed.bytes;
  };

  const report = await verifyLoads(emulations, async (param): Promise<ParamCheck> => {
    input.onCheck?.(param);
    const loaded = param.ref!;
    const via = param.via ? { via: param.via } : {};
    const viaText = param.via ? ` (loaded through the tie from ${loaded.name})` : '';
    const intended = input.intendedOf(param.name);
    if (intended === undefined) return { name: param.name, ok: false, status: 'no-intent', detail: `loaded from "${loaded.name}", but ${input.meantBy} meant no value for it` };
    if (intended.kind === 'accept-any') return { name: param.name, ok: true, status: 'equal', detail: `accepted: ${intended.reason}`, ...via };
    const equalCheck: ParamCheck = { name: param.name, ok: true, status: 'equal', detail: `byte-identical to the intended tensor${viaText}`, ...via };
    const differsCheck: ParamCheck = { name: param.name, ok: false, status: 'differs', detail: `the loaded values differ from the intended tensor${viaText}`, ...via };
    if (intended.kind === 'digest') return (await digestOf(loaded)) === intended.digest ? equalCheck : differsCheck;
    if (intended.kind === 'range') return (await sameBytes(loaded, intended.ref)) ? equalCheck : differsCheck;

    const want = intended.tensor;
    if (want.shape.length !== loaded.shape.length || want.shape.some((d, i) => d !== loaded.shape[i])) {
      return { name: param.name, ok: false, status: 'shape', detail: `loaded [${loaded.shape.join(', ')}]${viaText}, meant [${want.shape.join(', ')}]` };
    }
    const src = want.source;
    if ((src.kind === 'copy' || src.kind === 'replace') && (await sameBytes(src.from, loaded))) return equalCheck;
    if (!input.tolerance) return differsCheck;
    const wantBytes = src.kind === 'copy' || src.kind === 'replace' ? await input.sourceOf(src.from.file).read(src.from.fileOffset, src.from.byteLength) : await computeOnce(want);
    const gotBytes = await input.sourceOf(loaded.file).read(loaded.fileOffset, loaded.byteLength);
    const { atol } = input.tolerance;
    const rtol = Math.max(input.tolerance.rtol, UNIT_ROUNDOFF[loaded.dtype] ?? 0, UNIT_ROUNDOFF[want.dtype] ?? 0);
    const count = want.shape.reduce((a, b) => a * b, 1);
    const stats = compareRef({ count, a: { type: elementTypeOf(loaded), bytes: gotBytes }, b: { type: elementTypeOf(want), bytes: wantBytes }, atol, rtol, equalNan: input.tolerance.equalNan === true });
    if (stats.violations === 0) {
      return { name: param.name, ok: true, status: stats.maxAbsDiff === 0 ? 'equal' : 'close', detail: `within atol ${atol} / rtol ${rtol} (max |difference| ${stats.maxAbsDiff.toPrecision(3)})${viaText}`, maxAbsDiff: stats.maxAbsDiff, ...via };
    }
    return { name: param.name, ok: false, status: 'differs', detail: `${stats.violations} of ${count} values differ from the effective weight beyond atol ${atol} / rtol ${rtol}, max |difference| ${stats.maxAbsDiff.toPrecision(4)}${viaText}`, maxAbsDiff: stats.maxAbsDiff, ...via };
  }, { concurrency: input.concurrency ?? 1 });
  // transformers builds the model from config.json: a config that disagrees with the stored shapes
  // makes the checkpoint unloadable, whatever the tensors hold.
  const shapes = new Map(input.headers.flatMap((h) => h.tensors.map((t) => [canonicalName(t.name), t.shape] as const)));
  const mismatches = configShapeMismatches(input.config, shapes);
  if (mismatches.length === 0) return report;
  const failures = mismatches.map((m) => ({ name: 'config.json', ok: false, status: 'shape' as const, detail: `${m.message}: transformers cannot load the checkpoint`, versions: emulations.map((e) => e.version) }));
  return { ...report, ok: false, failures: [...report.failures, ...failures] };
}
