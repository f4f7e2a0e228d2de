/** Summaries of repeated measurements. */

/** min / median / max of a series of samples, with the samples themselves. */
export interface Summary {
  readonly unit: string;
  readonly n: number;
  readonly min: number;
  readonly median: number;
  readonly max: number;
  readonly samples: readonly number[];
}

/** Median of a non-empty list (mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Summarises `samples` (rounded to 4 significant digits for the JSON). */
export function summarize(samples: readonly number[], unit: string): Summary {
  if (samples.length === 0) throw new Error('summarize: no samples');
  const round = (x: number) => Number(x.toPrecision(4));
  return {
    unit,
    n: samples.length,
    min: round(Math.min(...samples)),
    median: round(median(samples)),
    max: round(Math.max(...samples)),
    samples: samples.map(round),
  };
}

/** Maps every sample through `f` (e.g. ms → GB/s); min and max swap when `f` is decreasing. */
export function mapSummary(s: Summary, unit: string, f: (x: number) => number): Summary {
  return summarize(s.samples.map(f), unit);
}

/** Ratio of two medians, rounded to 3 significant digits. */
export function ratio(numerator: number, denominator: number): number {
  return Number((numerator / denominator).toPrecision(3));
}
