/**
 * `histogramQuantile`: estimate a quantile from cumulative histogram buckets, the way
 * Prometheus's `histogram_quantile()` does.
 *
 * @module
 */

/**
 * Estimates the `q` quantile of observations counted in cumulative buckets: finds the bucket
 * holding rank `q × count` and interpolates linearly inside it (the first bucket starts at 0).
 * A rank beyond the last finite bound answers that bound, as Prometheus does; no observations
 * answer `undefined`. The estimate is only as fine as the buckets.
 *
 * @param q quantile in [0, 1]
 * @param bounds upper bounds, strictly increasing (the `+Inf` bucket is implied)
 * @param cumulative observations `<= bounds[i]`, aligned to `bounds`
 * @param count every observation (the `+Inf` bucket)
 *
 * @example
 * ```ts
 * import { histogramQuantile } from "./histogram_quantile.ts";
 *
 * // 10 observations: 4 up to 0.01, 10 up to 0.1.
 * histogramQuantile(0.5, [0.01, 0.1], [4, 10], 10); // 0.025: rank 5 is 1/6 into (0.01, 0.1]
 * ```
 */
export function histogramQuantile(
  q: number,
  bounds: readonly number[],
  cumulative: readonly number[],
  count: number,
): number | undefined {
  if (!(q >= 0 && q <= 1)) {
    throw new RangeError(
      `Cannot estimate a quantile as 'q' must be in [0, 1]: current value is ${q}`,
    );
  }
  if (bounds.length === 0 || bounds.length !== cumulative.length) {
    throw new RangeError(
      `Cannot estimate a quantile as 'cumulative' must have one count per bound (${bounds.length}): current length is ${cumulative.length}`,
    );
  }
  if (!(count > 0)) return undefined;
  const rank = q * count;
  const bucket = cumulative.findIndex((below) => below >= rank);
  if (bucket === -1) return bounds[bounds.length - 1];
  const lower = bucket === 0 ? 0 : bounds[bucket - 1];
  const countBelow = bucket === 0 ? 0 : cumulative[bucket - 1];
  const inBucket = cumulative[bucket] - countBelow;
  if (inBucket === 0) return lower;
  return lower + (bounds[bucket] - lower) * (rank - countBelow) / inBucket;
}
