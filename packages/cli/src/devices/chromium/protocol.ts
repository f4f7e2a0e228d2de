/**
 * Control messages between the CLI and its runner pages (merge and compare): URLs, shapes, scales,
 * types and tolerances, never tensor bytes. Compare statistics come back as JSON text in which
 * non-finite numbers are the strings "Infinity", "-Infinity" and "NaN" (DevTools results cannot
 * carry them inside objects).
 */
import type { FloatCodecDtype } from '@lorafuse/core';
import type { CompareElementType, CompareStats } from '@lorafuse/kernels';

/** A tensor the page downloads from the runner server. */
export interface PageTensorRef {
  readonly url: string;
  readonly dtype: FloatCodecDtype;
}

/**
 * `loraDelta`: ΔW = Σ scale · delta (row-major `rows` x `cols`, deltas applied in order to a zero
 * matrix by the merge kernel), uploaded to `uploadUrl` as f32. W itself never enters the page: Node
 * adds ΔW to it while it writes the output, which halves the bytes crossing the loopback.
 */
export interface PageDeltaRequest {
  readonly name: string;
  readonly rows: number;
  readonly cols: number;
  readonly deltas: ReadonlyArray<{
    readonly modulePath: string;
    readonly a: PageTensorRef;
    readonly b: PageTensorRef;
    readonly rank: number;
    readonly scale: number;
    readonly orientation: 'linear' | 'transposed';
  }>;
  readonly uploadUrl: string;
}

export interface PageDeltaResult {
  /** Bytes uploaded (rows · cols · 4). */
  readonly bytes: number;
}

/** `compareTensors`: compare `count` elements of the tensors at `a.url` and `b.url`. */
export interface PageCompareRequest {
  readonly name: string;
  readonly count: number;
  readonly a: { readonly url: string; readonly type: CompareElementType };
  readonly b: { readonly url: string; readonly type: CompareElementType };
  readonly atol: number;
  readonly rtol: number;
  readonly equalNan: boolean;
}

/** JSON text of a value, non-finite numbers as strings. */
export function statsToWire(stats: CompareStats): string {
  return JSON.stringify(stats, (_key, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
}

/** The inverse of {@link statsToWire}. */
export function statsFromWire(text: string): CompareStats {
  return JSON.parse(text, (_key, v: unknown) => (v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : v === 'NaN' ? NaN : v)) as CompareStats;
}
