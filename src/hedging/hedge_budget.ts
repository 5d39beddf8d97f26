/**
 * `HedgeBudget`: a token bucket that keeps hedges to a share of primary calls, after gRPC's
 * retry throttling.
 *
 * @module
 */

/**
 * Options of {@linkcode HedgeBudget}.
 *
 * @example
 * ```ts
 * import type { HedgeBudgetOptions } from "./hedge_budget.ts";
 * const options: HedgeBudgetOptions = { ratio: 0.05, burst: 10 };
 * ```
 */
export interface HedgeBudgetOptions {
  /** Tokens each primary call earns; one hedge costs one token. 0.05 (5 %) by default. */
  ratio?: number;
  /** Most tokens kept, which is the most hedges in a burst; 10 by default. The bucket starts full. */
  burst?: number;
}

/**
 * A bucket of hedge tokens: every primary call adds `ratio` tokens (up to `burst`), every hedge
 * takes one. Over any run of calls, hedges ≤ `burst` + `ratio` × primaries, so hedging can add
 * at most `ratio` extra load in the long run, however slow the downstream gets. When a
 * downstream slows down as a whole, every call wants a hedge; the bucket runs dry after `burst`
 * of them and then admits only `ratio` per primary, which is exactly when hedging would amplify
 * an overload.
 *
 * It counts calls, not time, so it needs no clock: pure state, deterministic in tests. gRPC's
 * retry throttling works the same way (`maxTokens`, `tokenRatio`); a separate bucket per
 * downstream keeps one slow downstream from spending another's budget.
 *
 * @example
 * ```ts
 * import { HedgeBudget } from "./hedge_budget.ts";
 *
 * const budget = new HedgeBudget({ ratio: 0.1, burst: 1 });
 * budget.tryTake(); // true: the bucket starts full
 * budget.tryTake(); // false
 * for (let i = 0; i < 10; i++) budget.deposit();
 * budget.tryTake(); // true: ten primaries earned one hedge
 * ```
 */
export class HedgeBudget {
  #ratio: number;
  #burst: number;
  #tokens: number;

  /** A full bucket. */
  constructor({ ratio = 0.05, burst = 10 }: HedgeBudgetOptions = {}) {
    if (!(ratio >= 0 && ratio <= 1)) {
      throw new RangeError(
        `Cannot create a HedgeBudget as 'ratio' must be in [0, 1]: current value is ${ratio}`,
      );
    }
    if (!(burst >= 1) || !Number.isFinite(burst)) {
      throw new RangeError(
        `Cannot create a HedgeBudget as 'burst' must be a finite number of at least 1: current value is ${burst}`,
      );
    }
    this.#ratio = ratio;
    this.#burst = burst;
    this.#tokens = burst;
  }

  /** Tokens now; a hedge needs one. */
  get tokens(): number {
    return this.#tokens;
  }

  /** A primary call was made: earn `ratio` tokens, up to `burst`. */
  deposit(): void {
    this.#tokens = Math.min(this.#burst, this.#tokens + this.#ratio);
  }

  /** Takes one token for a hedge; `false` (and nothing taken) when fewer than one is left. */
  tryTake(): boolean {
    // Tolerates float drift: twenty deposits of 0.05 must buy a hedge.
    if (this.#tokens < 1 - 1e-9) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Gives back the token of a hedge that was not sent after all (no spare capacity). */
  refund(): void {
    this.#tokens = Math.min(this.#burst, this.#tokens + 1);
  }
}
