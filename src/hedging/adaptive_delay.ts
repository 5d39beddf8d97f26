/**
 * `AdaptiveDelay`: a hedge delay that follows one downstream's recent latency quantile, kept in a
 * DDSketch (`_quantile_sketch.ts`).
 *
 * @module
 */
import { QuantileSketch } from "./_quantile_sketch.ts";

/**
 * Where a hedge reads its delay from and reports the primary attempt's latency to. A number is
 * the fixed form; {@linkcode AdaptiveDelay} is the learning one.
 *
 * @example
 * ```ts
 * import type { HedgeDelay } from "./adaptive_delay.ts";
 * const fixed: HedgeDelay = { delayMs: () => 20, observe: () => {} };
 * ```
 */
export interface HedgeDelay {
  /** How long to wait for the primary attempt before sending a hedge, in ms. */
  delayMs(): number;
  /** A primary attempt took `ms` (or was still running after `ms` when another attempt won). */
  observe(ms: number): void;
}

/**
 * Options of {@linkcode AdaptiveDelay}.
 *
 * @example
 * ```ts
 * import type { AdaptiveDelayOptions } from "./adaptive_delay.ts";
 * const options: AdaptiveDelayOptions = { quantile: 0.95, windowSize: 1000, fallbackMs: 50 };
 * ```
 */
export interface AdaptiveDelayOptions {
  /** The quantile of recent latencies to wait, in (0, 1); 0.95 by default. */
  quantile?: number;
  /** Observations per window; the delay comes from the last complete one. 1000 by default. */
  windowSize?: number;
  /**
   * Observations the first window needs before its quantile is trusted; 50 by default (or
   * `windowSize` when that is smaller).
   */
  minSamples?: number;
  /** The delay until then, in ms; 50 by default. */
  fallbackMs?: number;
  /** Bounds of the delay in ms; 1 and `Infinity` by default. */
  minMs?: number;
  /** See `minMs`. */
  maxMs?: number;
  /** The sketch's relative accuracy; 0.01 (a quantile within 1 % of the true value) by default. */
  relativeAccuracy?: number;
}

/**
 * A hedge delay equal to a quantile (p95 by default) of one downstream's recent latencies.
 *
 * Latencies go into a DDSketch: constant memory, O(1) inserts, and quantiles within 1 % of the
 * true value however long the tail. "Recent" is a tumbling window of `windowSize` observations:
 * the delay is the quantile of the last complete window, computed once when it closes, so a
 * hedge decision costs a field read. While the first window fills, the delay is its running
 * quantile once `minSamples` are in, and `fallbackMs` before that. Windows count observations,
 * not time, so a quiet downstream keeps its last delay rather than forgetting it.
 *
 * Feed it the primary attempt's latency only, including a primary cut off because its hedge won
 * (at the time it was cut: a lower bound, but one that still ranks above the delay, which is all
 * a quantile needs). Feeding it the winners' latencies instead would pull the quantile down and
 * make hedging feed on itself.
 *
 * @example
 * ```ts
 * import { AdaptiveDelay } from "./adaptive_delay.ts";
 *
 * const delay = new AdaptiveDelay({ quantile: 0.9, windowSize: 10, minSamples: 10 });
 * for (let ms = 1; ms <= 10; ms++) delay.observe(ms);
 * delay.delayMs(); // about 9
 * ```
 */
export class AdaptiveDelay implements HedgeDelay {
  #quantile: number;
  #windowSize: number;
  #minSamples: number;
  #fallbackMs: number;
  #minMs: number;
  #maxMs: number;
  #relativeAccuracy: number;
  #window: QuantileSketch;
  #settledMs: number | undefined;

  /** An empty delay that answers `fallbackMs` until it has seen `minSamples` latencies. */
  constructor(
    {
      quantile = 0.95,
      windowSize = 1000,
      minSamples = Math.min(50, windowSize),
      fallbackMs = 50,
      minMs = 1,
      maxMs = Infinity,
      relativeAccuracy = 0.01,
    }: AdaptiveDelayOptions = {},
  ) {
    if (!(quantile > 0 && quantile < 1)) {
      throw new RangeError(
        `Cannot create an AdaptiveDelay as 'quantile' must be in (0, 1): current value is ${quantile}`,
      );
    }
    if (!Number.isSafeInteger(windowSize) || windowSize < 1) {
      throw new RangeError(
        `Cannot create an AdaptiveDelay as 'windowSize' must be a positive integer: current value is ${windowSize}`,
      );
    }
    if (!Number.isSafeInteger(minSamples) || minSamples < 1 || minSamples > windowSize) {
      throw new RangeError(
        `Cannot create an AdaptiveDelay as 'minSamples' must be an integer from 1 to 'windowSize' (${windowSize}): current value is ${minSamples}`,
      );
    }
    if (!(minMs >= 0 && maxMs >= minMs)) {
      throw new RangeError(
        `Cannot create an AdaptiveDelay as 'minMs' and 'maxMs' must satisfy 0 <= minMs <= maxMs: current values are ${minMs} and ${maxMs}`,
      );
    }
    if (!(fallbackMs >= 0) || !Number.isFinite(fallbackMs)) {
      throw new RangeError(
        `Cannot create an AdaptiveDelay as 'fallbackMs' must be a finite non-negative number: current value is ${fallbackMs}`,
      );
    }
    this.#quantile = quantile;
    this.#windowSize = windowSize;
    this.#minSamples = minSamples;
    this.#fallbackMs = fallbackMs;
    this.#minMs = minMs;
    this.#maxMs = maxMs;
    this.#relativeAccuracy = relativeAccuracy;
    this.#window = new QuantileSketch({ relativeAccuracy });
  }

  /** The current delay in ms, within [`minMs`, `maxMs`]. */
  delayMs(): number {
    const raw = this.#settledMs ??
      (this.#window.count >= this.#minSamples
        ? this.#window.quantile(this.#quantile)
        : this.#fallbackMs);
    return Math.min(this.#maxMs, Math.max(this.#minMs, raw));
  }

  /** Records one primary attempt's latency in ms; negative or non-finite values are ignored. */
  observe(ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) return;
    this.#window.accept(ms);
    if (this.#window.count >= this.#windowSize) {
      this.#settledMs = this.#window.quantile(this.#quantile);
      this.#window = new QuantileSketch({ relativeAccuracy: this.#relativeAccuracy });
    }
  }
}
