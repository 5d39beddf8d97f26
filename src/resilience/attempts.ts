/**
 * `Attempts`: one branch's `maxAttempts`, shared by its retries and its hedges.
 *
 * @module
 */

/**
 * A count of the attempts one call has sent against the most it may send. A retry policy and a
 * hedge of the same call take from one `Attempts`, so together they never send more than `max`:
 * a call that already hedged once has one retry fewer left, and the other way round.
 *
 * @example
 * ```ts
 * import { Attempts } from "./attempts.ts";
 *
 * const attempts = new Attempts(3);
 * attempts.take(); // true: the first attempt
 * attempts.take(); // true: a hedge
 * attempts.left; // 1: one retry left
 * ```
 */
export class Attempts {
  /** The most attempts, the first included. */
  readonly max: number;
  #sent = 0;

  /** No attempt sent yet, at most `max`. */
  constructor(max: number) {
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new RangeError(
        `Cannot count attempts as 'max' must be a positive integer: current value is ${max}`,
      );
    }
    this.max = max;
  }

  /** Attempts sent so far. */
  get sent(): number {
    return this.#sent;
  }

  /** Attempts still allowed. */
  get left(): number {
    return this.max - this.#sent;
  }

  /** Counts one more attempt; `false` (and nothing counted) when none is left. */
  take(): boolean {
    if (this.#sent >= this.max) return false;
    this.#sent++;
    return true;
  }
}
