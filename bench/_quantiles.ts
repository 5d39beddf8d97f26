/**
 * Nearest-rank quantiles of a sample, the way the gateway benchmark reports latencies.
 *
 * @module
 */

/** Latency quantiles in ms, plus how many values they summarise. */
export interface Quantiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/**
 * The nearest-rank `q`-quantile of ascending `sorted` (the smallest value with at least a
 * fraction `q` of the sample at or below it); NaN for an empty sample.
 *
 * @example
 * ```ts
 * import { quantile } from "./_quantiles.ts";
 * quantile([1, 2, 3, 4], 0.5); // 2
 * ```
 */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/**
 * p50, p90, p99, p99.9 and max of `values` (in any order).
 *
 * @example
 * ```ts
 * import { summarize } from "./_quantiles.ts";
 * summarize([5, 1, 3]).max; // 5
 * ```
 */
export function summarize(values: readonly number[]): Quantiles {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    p99: quantile(sorted, 0.99),
    p999: quantile(sorted, 0.999),
    max: sorted.length === 0 ? NaN : sorted[sorted.length - 1],
  };
}

/**
 * The median of `values` (the mean of the two middle ones for an even count).
 *
 * @example
 * ```ts
 * import { median } from "./_quantiles.ts";
 * median([3, 1, 2]); // 2
 * ```
 */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
