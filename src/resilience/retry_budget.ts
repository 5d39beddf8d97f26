/**
 * `RetryBudget`: a token bucket per downstream that keeps retries to a share of its requests.
 *
 * @module
 */
import { CallBudget } from "../executor/mod.ts";

/**
 * Options of {@linkcode RetryBudget}; all optional.
 *
 * @example
 * ```ts
 * import type { RetryBudgetOptions } from "./retry_budget.ts";
 * const options: RetryBudgetOptions = { ratio: 0.2, burst: 10 };
 * ```
 */
export interface RetryBudgetOptions {
  /** Retry tokens each request earns; one retry costs one. 0.2 (20 %) by default. */
  ratio?: number;
  /** The bucket's size: the most retries in a burst, and the minimum allowed at low traffic; 10 by default. */
  burst?: number;
}

/**
 * A bucket of retry tokens: every request to the downstream adds `ratio` tokens (up to
 * `burst`), every retry takes one. Over any run, retries ≤ `burst` + `ratio` × requests: when the
 * downstream is down and every call wants a retry, retries dry up after the burst and add at
 * most `ratio` extra load, instead of multiplying it by `maxAttempts`.
 *
 * Why this shape and not the other two anchors: Envoy's retry budget bounds retries *in flight*
 * to a share of requests in flight. Retries of fast failures (a reset, a 503 in a millisecond —
 * the failures worth retrying) are almost never in flight, so that bound barely limits their
 * rate: a fully-down downstream would still see nearly every call repeated. gRPC's retry
 * throttling (failures take a token, successes earn a fraction, no retries below half a bucket)
 * turns retries off once more than about `ratio` of calls fail, so it gives up on a downstream
 * failing half its calls, which is exactly when retries pay. Counting requests and retries, as
 * Finagle's `RetryBudget` does, bounds the extra load directly whatever the latency, and the
 * circuit breaker, not the budget, handles "fully down". It counts calls, not time: no clock, and
 * nothing to leak if a call is never reported.
 *
 * Keep one per downstream, apart from its hedge budget: a slow downstream's hedges must not spend
 * the tokens its fast failures need, nor the other way round.
 *
 * @example
 * ```ts
 * import { RetryBudget } from "./retry_budget.ts";
 *
 * const budget = new RetryBudget({ ratio: 0.1, burst: 1 });
 * budget.tryTake(); // true: the bucket starts full
 * budget.tryTake(); // false
 * for (let i = 0; i < 10; i++) budget.deposit();
 * budget.tryTake(); // true: ten requests earned one retry
 * ```
 */
export class RetryBudget extends CallBudget {
  /** A full bucket. */
  constructor({ ratio = 0.2, burst = 10 }: RetryBudgetOptions = {}) {
    super("RetryBudget", { ratio, burst });
  }
}
