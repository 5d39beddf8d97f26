/**
 * `HedgeBudget`: a token bucket that keeps hedges to a share of primary calls, after gRPC's
 * retry throttling.
 *
 * @module
 */
import { CallBudget } from "../executor/mod.ts";

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
 * downstream keeps one slow downstream from spending another's budget. `refund()` gives back the
 * token of a hedge that was not sent after all (no spare capacity).
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
export class HedgeBudget extends CallBudget {
  /** A full bucket. */
  constructor({ ratio = 0.05, burst = 10 }: HedgeBudgetOptions = {}) {
    super("HedgeBudget", { ratio, burst });
  }
}
