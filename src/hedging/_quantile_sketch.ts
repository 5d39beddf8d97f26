/**
 * A DDSketch (Masson, Rim and Lee, VLDB 2019) reduced to what `AdaptiveDelay` asks of one:
 * `accept(value)`, `count` and `quantile(q)`, with logarithmic buckets in one dense array.
 *
 * Written here rather than taken from `@datadog/sketches-js`, whose serialization pulls
 * protobufjs and long into every bundle (about 120 KiB of a Worker's 200 KiB gzip went to
 * them and the sketch), and which fanfare never merges, serializes or ships between processes.
 *
 * @module
 */

/** Values at or below this (ms: one nanosecond) count as zero: they need no bucket of their own. */
const MIN_INDEXABLE = 1e-6;

/**
 * Options of {@linkcode QuantileSketch}.
 *
 * @example
 * ```ts
 * import type { QuantileSketchOptions } from "./_quantile_sketch.ts";
 * const options: QuantileSketchOptions = { relativeAccuracy: 0.01 };
 * ```
 */
export interface QuantileSketchOptions {
  /** How far a quantile may be from the true value, relative to it, in (0, 1); 0.01 by default. */
  relativeAccuracy?: number;
}

/**
 * A quantile sketch of non-negative values: every quantile it answers is within
 * `relativeAccuracy` of the true value of that rank (for the lower quantile, the value at
 * sorted index `floor(q × (count − 1))`), however long the tail.
 *
 * Value `v` lands in bucket `ceil(log(v) / log(γ))` with `γ = (1 + α) / (1 − α)`, so a bucket
 * holds `(γ^(k−1), γ^k]` and answers `2γ^k / (γ + 1)`, within `α` of anything in it. Inserts
 * are O(1) (amortised, as the array grows at its ends); memory is one number per bucket between
 * the smallest and largest value seen, about 115 buckets per factor of 10 at 1 %.
 *
 * @example
 * ```ts
 * import { QuantileSketch } from "./_quantile_sketch.ts";
 * const sketch = new QuantileSketch({ relativeAccuracy: 0.01 });
 * for (let ms = 1; ms <= 100; ms++) sketch.accept(ms);
 * sketch.quantile(0.5); // 50, within 1 %
 * ```
 */
export class QuantileSketch {
  #logGamma: number;
  #gamma: number;
  /** Counts per bucket; `#counts[i]` is bucket `#offset + i`. */
  #counts: number[] = [];
  #offset = 0;
  #zeroCount = 0;
  #count = 0;

  /** An empty sketch. */
  constructor({ relativeAccuracy = 0.01 }: QuantileSketchOptions = {}) {
    if (!(relativeAccuracy > 0 && relativeAccuracy < 1)) {
      throw new RangeError(
        `Cannot create a quantile sketch as 'relativeAccuracy' must be in (0, 1): current value is ${relativeAccuracy}`,
      );
    }
    this.#gamma = (1 + relativeAccuracy) / (1 - relativeAccuracy);
    this.#logGamma = Math.log(this.#gamma);
  }

  /** Values accepted so far. */
  get count(): number {
    return this.#count;
  }

  /** Adds one value; the caller passes finite, non-negative numbers. */
  accept(value: number): void {
    this.#count++;
    if (value <= MIN_INDEXABLE) {
      this.#zeroCount++;
      return;
    }
    const key = Math.ceil(Math.log(value) / this.#logGamma);
    if (this.#counts.length === 0) {
      this.#offset = key;
      this.#counts.push(0);
    } else if (key < this.#offset) {
      this.#counts = new Array<number>(this.#offset - key).fill(0).concat(this.#counts);
      this.#offset = key;
    } else {
      while (key - this.#offset >= this.#counts.length) this.#counts.push(0);
    }
    this.#counts[key - this.#offset]++;
  }

  /** The value at quantile `q` in [0, 1]; `NaN` while the sketch is empty. */
  quantile(q: number): number {
    if (this.#count === 0) return NaN;
    const rank = Math.floor(q * (this.#count - 1));
    let seen = this.#zeroCount;
    if (rank < seen) return 0;
    for (let i = 0; i < this.#counts.length; i++) {
      seen += this.#counts[i];
      if (seen > rank) return (2 * this.#gamma ** (this.#offset + i)) / (this.#gamma + 1);
    }
    // Unreachable: the counts add up to #count, and rank < #count.
    return (2 * this.#gamma ** (this.#offset + this.#counts.length - 1)) / (this.#gamma + 1);
  }
}
