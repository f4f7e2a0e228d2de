/**
 * Control messages between the CLI and its compare page: URLs, types and tolerances, never tensor
 * bytes. Statistics come back as JSON text in which non-finite numbers are the strings "Infinity",
 * "-Infinity" and "NaN" (DevTools results cannot carry them inside objects).
 */
import type { CompareElementType, CompareStats } from '@lorafuse/kernels';

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
