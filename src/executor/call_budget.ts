/**
 * `CallBudget`: a token bucket that counts calls, not time, shared by the hedge and retry
 * budgets.
 *
 * @module
 */

/**
 * A bucket of tokens for extra calls: every ordinary call adds `ratio` tokens (up to `burst`),
 * every extra call (a hedge, a retry) takes one. Over any run, extra calls ≤ `burst` + `ratio` ×
 * ordinary calls, whatever the latency. It needs no clock: pure state, deterministic in tests.
 * `HedgeBudget` and `RetryBudget` are this bucket with their own defaults.
 *
 * @example
 * ```ts
 * import { CallBudget } from "./call_budget.ts";
 *
 * const budget = new CallBudget("CallBudget", { ratio: 0.1, burst: 1 });
 * budget.tryTake(); // true: the bucket starts full
 * budget.tryTake(); // false
 * for (let i = 0; i < 10; i++) budget.deposit();
 * budget.tryTake(); // true: ten calls earned one extra
 * ```
 */
export class CallBudget {
  #ratio: number;
  #burst: number;
  #tokens: number;

  /** A full bucket; `owner` names the budget in the errors of bad options. */
  constructor(owner: string, { ratio, burst }: { ratio: number; burst: number }) {
    if (!(ratio >= 0 && ratio <= 1)) {
      throw new RangeError(
        `Cannot create a ${owner} as 'ratio' must be in [0, 1]: current value is ${ratio}`,
      );
    }
    if (!(burst >= 1) || !Number.isFinite(burst)) {
      throw new RangeError(
        `Cannot create a ${owner} as 'burst' must be a finite number of at least 1: current value is ${burst}`,
      );
    }
    this.#ratio = ratio;
    this.#burst = burst;
    this.#tokens = burst;
  }

  /** Tokens now; an extra call needs one. */
  get tokens(): number {
    return this.#tokens;
  }

  /** An ordinary call was made: earn `ratio` tokens, up to `burst`. */
  deposit(): void {
    this.#tokens = Math.min(this.#burst, this.#tokens + this.#ratio);
  }

  /** Takes one token for an extra call; `false` (and nothing taken) when fewer than one is left. */
  tryTake(): boolean {
    // Tolerates float drift: twenty deposits of 0.05 must buy a token.
    if (this.#tokens < 1 - 1e-9) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Gives back the token of an extra call that was not sent after all. */
  refund(): void {
    this.#tokens = Math.min(this.#burst, this.#tokens + 1);
  }
}
