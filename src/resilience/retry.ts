/**
 * `retry`: repeat an idempotent call that failed fast, with backoff, within its deadline and a
 * per-downstream retry budget.
 *
 * @module
 */

import { Attempts } from "./attempts.ts";
import { type Backoff, fullJitter } from "./backoff.ts";
import { isCircuitOpenError } from "./errors.ts";
import type { RetryBudget } from "./retry_budget.ts";
import { type Sleep, sleep as timerSleep } from "./_sleep.ts";

/**
 * One try of a retried call; `attempt` counts the attempts of the call so far, from 1.
 *
 * @example
 * ```ts
 * import type { RetryAttempt } from "./retry.ts";
 * const call: RetryAttempt<Response> = (signal) => fetch("https://downstream.example/price/42", { signal });
 * ```
 */
export type RetryAttempt<T> = (signal: AbortSignal | undefined, attempt: number) => Promise<T> | T;

/**
 * Why a failed call was not tried again.
 *
 * @example
 * ```ts
 * import type { RetryStop } from "./retry.ts";
 * const reason: RetryStop = "budget";
 * ```
 */
export type RetryStop = "not-idempotent" | "not-retryable" | "attempts" | "deadline" | "budget";

/**
 * Options of {@linkcode retry}. `idempotent` is required: only a call that may safely happen
 * twice is ever repeated.
 *
 * @example
 * ```ts
 * import { RetryBudget } from "./retry_budget.ts";
 * import type { RetryOptions } from "./retry.ts";
 * const options: RetryOptions = { idempotent: true, maxAttempts: 3, budget: new RetryBudget() };
 * ```
 */
export interface RetryOptions {
  /** Whether the call may be repeated. `false`: exactly one attempt, whatever else is set. */
  idempotent: boolean;
  /** Most attempts, the first included; 3 by default. Ignored when `attempts` is given. */
  maxAttempts?: number;
  /** A count shared with the call's hedges, so that together they respect one `maxAttempts`. */
  attempts?: Attempts;
  /**
   * Whether a failure is worth another attempt: a fast failure (a reset, a 502/503/504), not a
   * timeout that used the deadline up. By default every error but an abort and an open breaker.
   */
  retryable?: (error: unknown) => boolean;
  /** The downstream's `Retry-After` in ms, if the error carries one. */
  retryAfterMs?: (error: unknown) => number | undefined;
  /** Wait before retry `n`; full jitter from 10 ms up to 1 s by default. */
  backoff?: Backoff;
  /** The downstream's retry budget: each call deposits, each retry needs a token. */
  budget?: RetryBudget;
  /** No retry is sent whose wait would end after this time, on `clock`. None by default. */
  deadline?: number;
  /** Aborting it stops the call at once and rejects with its reason; no retry follows. */
  signal?: AbortSignal;
  /** The clock of `deadline`, in ms; `performance.now` by default. */
  clock?: () => number;
  /** The wait between attempts; a timer cut short by `signal` by default. */
  sleep?: Sleep;
  /** Told before each retry is sent; must not throw. */
  onRetry?: (attempt: number, delayMs: number, error: unknown) => void;
  /** Told why a failure was not retried (not for the caller's abort); must not throw. */
  onStop?: (reason: RetryStop, error: unknown) => void;
}

/**
 * Calls `call(signal, 1)`; when it fails with a retryable error, waits and calls again, up to
 * `maxAttempts` in all, and resolves with the first success or rejects with the last failure.
 *
 * A retry is sent only when all of these hold: the call is `idempotent`; the failure is
 * `retryable`; an attempt is left (of `attempts`, which hedges may share); the wait ends before
 * `deadline`; and `budget` gives a token. The wait is the `backoff` draw, or the downstream's
 * `Retry-After` when that is longer — and when the `Retry-After` does not fit before the deadline
 * the call gives up at once rather than retry early against the downstream's wish. The budget is
 * asked last, so a retry that the deadline forbids spends no token.
 *
 * @example
 * ```ts
 * import { fullJitter } from "./backoff.ts";
 * import { retry } from "./retry.ts";
 * import { RetryBudget } from "./retry_budget.ts";
 *
 * const budget = new RetryBudget({ ratio: 0.2 }); // one per downstream
 * const response = await retry(
 *   async (signal) => {
 *     const res = await fetch("https://downstream.example/price/42", { signal });
 *     if (res.status >= 502) throw new Error(`price answered ${res.status}`);
 *     return res;
 *   },
 *   { idempotent: true, budget, backoff: fullJitter({ baseMs: 10 }), deadline: performance.now() + 300 },
 * );
 * ```
 */
export async function retry<T>(
  call: RetryAttempt<T>,
  {
    idempotent,
    maxAttempts = 3,
    attempts = new Attempts(maxAttempts),
    retryable = defaultRetryable,
    retryAfterMs = () => undefined,
    backoff = fullJitter(),
    budget,
    deadline = Infinity,
    signal,
    clock = () => performance.now(),
    sleep = timerSleep,
    onRetry,
    onStop,
  }: RetryOptions,
): Promise<T> {
  signal?.throwIfAborted();
  budget?.deposit();
  for (let retries = 0;; retries++) {
    if (!attempts.take()) {
      throw new RangeError(
        `Cannot start an attempt as all ${attempts.max} of the call's attempts are spent`,
      );
    }
    try {
      return await call(signal, attempts.sent);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      const stop = whyStop(error, retries + 1);
      if (typeof stop === "string") {
        onStop?.(stop, error);
        throw error;
      }
      onRetry?.(attempts.sent + 1, stop, error);
      await sleep(stop, signal);
    }
  }

  /** The wait before retry `n`, or why there is none. */
  function whyStop(error: unknown, n: number): RetryStop | number {
    if (!idempotent) return "not-idempotent";
    if (!retryable(error)) return "not-retryable";
    if (attempts.left < 1) return "attempts";
    const after = retryAfterMs(error);
    const wait = Math.max(backoff(n), after ?? 0);
    if (clock() + wait >= deadline) return "deadline";
    if (budget !== undefined && !budget.tryTake()) return "budget";
    return wait;
  }
}

function defaultRetryable(error: unknown): boolean {
  if (isCircuitOpenError(error)) return false;
  return !(error instanceof Error || error instanceof DOMException) || error.name !== "AbortError";
}
