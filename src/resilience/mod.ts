/**
 * Resilience policies a caller composes around a downstream call or a batch of tasks: a circuit
 * breaker per downstream, retries with full-jitter backoff under a retry budget, one attempt
 * count shared with hedging, and a supervisor that restarts crashed workers.
 *
 * @example
 * ```ts
 * import { CircuitBreaker, retry, RetryBudget } from "./mod.ts";
 *
 * const breaker = new CircuitBreaker({ failures: { kind: "consecutive", threshold: 5 } });
 * const budget = new RetryBudget({ ratio: 0.2 });
 * const price = await retry(async (signal) => {
 *   const ticket = breaker.tryEnter();
 *   if (ticket === undefined) throw new Error("price: circuit open");
 *   try {
 *     const res = await fetch("https://downstream.example/price/42", { signal });
 *     if (res.status >= 500) throw new Error(`price answered ${res.status}`);
 *     ticket.success();
 *     return await res.json();
 *   } catch (error) {
 *     ticket.failure();
 *     throw error;
 *   }
 * }, { idempotent: true, budget });
 * ```
 *
 * @module
 */

export { Attempts } from "./attempts.ts";
export { type Backoff, type BackoffOptions, fullJitter } from "./backoff.ts";
export {
  CircuitBreaker,
  type CircuitBreakerOptions,
  type CircuitState,
  type CircuitTicket,
  type FailureMode,
} from "./circuit_breaker.ts";
export {
  CircuitOpenError,
  CrashLoopError,
  isCircuitOpenError,
  isCrashLoopError,
  isTaskCrashedError,
  TaskCrashedError,
} from "./errors.ts";
export { retry, type RetryAttempt, type RetryOptions, type RetryStop } from "./retry.ts";
export { RetryBudget, type RetryBudgetOptions } from "./retry_budget.ts";
export {
  runSupervised,
  type RunSupervisedOptions,
  type SupervisedContext,
  Supervisor,
  type SupervisorOptions,
} from "./supervisor.ts";
