/**
 * A branch's circuit breaker and retries, composed around its call in one place: the breaker
 * gates each try (before any permit or socket), `retry()` repeats a fast failure under the
 * downstream's retry budget, and one `Attempts` count is shared with the branch's hedges.
 *
 * @module
 */
import { BranchTimeoutError } from "../executor/mod.ts";
import {
  Attempts,
  type Backoff,
  CircuitBreaker,
  type CircuitBreakerOptions,
  CircuitOpenError,
  type CircuitTicket,
  isCircuitOpenError,
  retry,
  RetryBudget,
  type RetryStop,
} from "../resilience/mod.ts";

/**
 * How a branch is retried: a fast failure (a reset, a 502/503/504) is sent again after a
 * full-jitter backoff, within the branch's deadline and the downstream's `budget`.
 *
 * @example
 * ```ts
 * import { RetryBudget } from "../resilience/mod.ts";
 * import type { BranchRetry } from "./branch_resilience.ts";
 * const retrying: BranchRetry = { budget: new RetryBudget({ ratio: 0.5 }), maxAttempts: 2 };
 * ```
 */
export interface BranchRetry {
  /** The downstream's retry budget, shared by its requests; unlimited when absent. */
  readonly budget?: RetryBudget;
  /** Most attempts of one call, hedges included; 2 by default. */
  readonly maxAttempts?: number;
  /** The wait before retry `n`; full jitter from 10 ms up to 1 s by default. */
  readonly backoff?: Backoff;
}

/**
 * Callbacks of {@linkcode guardedCall}, for the report and the metrics; none may throw.
 *
 * @example
 * ```ts
 * import type { GuardEvents } from "./branch_resilience.ts";
 * const events: GuardEvents = { onRetry: (attempt) => console.log("retry", attempt) };
 * ```
 */
export interface GuardEvents {
  /** A retry is about to be sent, as attempt number `attempt`. */
  onRetry?: (attempt: number) => void;
  /** A retryable failure was not retried, and why (`budget`, `deadline`, `attempts`). */
  onRetryDeclined?: (reason: RetryStop) => void;
}

/**
 * What a guarded try is given: its signal and the call's shared attempt count (a hedge takes
 * from it too).
 *
 * @example
 * ```ts
 * import type { GuardedTry } from "./branch_resilience.ts";
 * const once: GuardedTry<number> = (_signal, attempts) => Promise.resolve(attempts.sent);
 * ```
 */
export type GuardedTry<T> = (signal: AbortSignal, attempts: Attempts) => Promise<T>;

/**
 * The breaker of {@linkcode guardBranches} unless told otherwise: it opens when at least 90 % of
 * at least 20 calls in the last 10 s failed, and lets a probe through a second later.
 *
 * @example
 * ```ts
 * import { CircuitBreaker } from "../resilience/mod.ts";
 * import { DEFAULT_BRANCH_BREAKER } from "./branch_resilience.ts";
 * const watched = new CircuitBreaker({ ...DEFAULT_BRANCH_BREAKER, onStateChange: console.log });
 * ```
 */
export const DEFAULT_BRANCH_BREAKER: Readonly<CircuitBreakerOptions> = Object.freeze({
  failures: { kind: "proportional" as const, threshold: 0.9, minimumCalls: 20, windowMs: 10_000 },
  openMs: 1_000,
});

/**
 * A breaker and retries for each of `branches`, all alike: each branch's downstream gets its
 * own `CircuitBreaker` and its own `RetryBudget`, so one failing downstream neither opens
 * another's breaker nor spends another's retries.
 *
 * The defaults, and why: the breaker is proportional — it opens when at least 90 % of at least
 * 20 calls in the last 10 s failed — and probes once a second. A consecutive breaker would trip on
 * a downstream failing half its calls at random (5 failures in a row come every ~60 calls), just
 * when retries can still save most answers; 90 % tells "down" from "flaky", and a downstream that
 * is down opens it on its 20th call. Retries are allowed up to half the downstream's requests plus
 * a burst of 10: a downstream failing half its calls gets nearly every failure retried once, and
 * the breaker, not the budget, cuts the load of one that is down.
 *
 * @example
 * ```ts
 * import { defaultRegistry } from "./branch_registry.ts";
 * import { guardBranches } from "./branch_resilience.ts";
 * import { urlFetcher } from "./fetcher.ts";
 *
 * const registry = defaultRegistry(urlFetcher("http://127.0.0.1:8788/"), {
 *   resilience: guardBranches(["price", "inventory", "reviews", "recommendations", "shipping"]),
 * });
 * ```
 */
export function guardBranches<N extends string>(
  branches: readonly N[],
  {
    breaker = DEFAULT_BRANCH_BREAKER,
    retryRatio = 0.5,
    retryBurst = 10,
    maxAttempts = 2,
    backoff,
  }: {
    breaker?: CircuitBreakerOptions;
    retryRatio?: number;
    retryBurst?: number;
    maxAttempts?: number;
    backoff?: Backoff;
  } = {},
): Record<N, { breaker: CircuitBreaker; retry: BranchRetry }> {
  return Object.fromEntries(branches.map((name) => [name, {
    breaker: new CircuitBreaker(breaker),
    retry: {
      budget: new RetryBudget({ ratio: retryRatio, burst: retryBurst }),
      maxAttempts,
      backoff,
    },
  }])) as Record<N, { breaker: CircuitBreaker; retry: BranchRetry }>;
}

/**
 * Lets a call of `branch` through its breaker: its ticket, `undefined` when the branch has no
 * breaker, or a {@linkcode CircuitOpenError} thrown when the breaker refuses (then no permit may
 * be taken and no socket opened).
 *
 * @example
 * ```ts
 * import { CircuitBreaker } from "../resilience/mod.ts";
 * import { enterCircuit } from "./branch_resilience.ts";
 * const ticket = enterCircuit("price", new CircuitBreaker());
 * ticket?.success();
 * ```
 */
export function enterCircuit(
  branch: string,
  breaker: CircuitBreaker | undefined,
): CircuitTicket | undefined {
  if (breaker === undefined) return undefined;
  const ticket = breaker.tryEnter();
  if (ticket === undefined) throw new CircuitOpenError(branch, breaker.retryAfterMs());
  return ticket;
}

/**
 * Runs `attempt` as the branch's call: each try passes the breaker (the first with `ticket`,
 * taken before the branch's permit), reports to it how the downstream did, and a retryable
 * failure is tried again when `retry` allows it. `maxAttempts` (the retry's, else the hedge's)
 * is one count for the call's retries and hedges together.
 *
 * The breaker hears a failure for a 5xx, a network error and the branch's own timeout; a 4xx is
 * the downstream working; the request's own abort (budget, client, failFast) says nothing about
 * the downstream and only releases the ticket.
 *
 * @example
 * ```ts
 * import { CircuitBreaker } from "../resilience/mod.ts";
 * import { guardedCall } from "./branch_resilience.ts";
 *
 * const breaker = new CircuitBreaker();
 * const value = await guardedCall(
 *   { name: "price", breaker, retry: { maxAttempts: 2 }, idempotent: true },
 *   (signal) => fetch("https://downstream.example/price/42", { signal }).then((r) => r.json()),
 *   { signal: AbortSignal.timeout(300), deadline: performance.now() + 300 },
 * );
 * ```
 */
export async function guardedCall<T>(
  branch: {
    readonly name: string;
    readonly breaker?: CircuitBreaker;
    readonly retry?: BranchRetry;
    readonly idempotent: boolean;
    readonly hedgeMaxAttempts?: number;
  },
  attempt: GuardedTry<T>,
  { signal, deadline, requestSignal = signal, ticket, onRetry, onRetryDeclined }: GuardEvents & {
    signal: AbortSignal;
    deadline: number;
    /** The request's own signal: its abort is not the downstream's fault. */
    requestSignal?: AbortSignal;
    /** The first try's ticket, taken before the permit. */
    ticket?: CircuitTicket;
  },
): Promise<T> {
  const { retry: retrying, breaker } = branch;
  const attempts = new Attempts(retrying?.maxAttempts ?? branch.hedgeMaxAttempts ?? 2);
  let first = ticket;
  return await retry(async (_signal, n) => {
    const pass = n === 1 && first !== undefined ? first : enterCircuit(branch.name, breaker);
    first = undefined;
    try {
      const value = await attempt(signal, attempts);
      pass?.success();
      return value;
    } catch (error) {
      if (requestSignal.aborted) pass?.release();
      else if (isDownstreamFault(error)) pass?.failure();
      else pass?.success();
      throw error;
    }
  }, {
    idempotent: branch.idempotent && retrying !== undefined,
    attempts,
    budget: retrying?.budget,
    backoff: retrying?.backoff,
    retryable: isRetryable,
    retryAfterMs: (error) => (error as { retryAfterMs?: number })?.retryAfterMs,
    deadline,
    signal,
    onRetry: (n) => onRetry?.(n),
    onStop: (reason) => {
      if (reason === "budget" || reason === "deadline" || reason === "attempts") {
        onRetryDeclined?.(reason);
      }
    },
  });
}

/** The statuses a retry may cure: the downstream or a proxy in front of it was briefly unable. */
const RETRYABLE_STATUSES = new Set([502, 503, 504]);

/** A fast failure worth another try: a 502/503/504, or a network error (a reset, a refusal). */
function isRetryable(error: unknown): boolean {
  if (isCircuitOpenError(error) || error instanceof BranchTimeoutError) return false;
  const status = (error as { status?: unknown })?.status;
  if (typeof status === "number") return RETRYABLE_STATUSES.has(status);
  return error instanceof TypeError;
}

/** Whether a failure is the downstream's: a 5xx, a timeout, anything but a 4xx or an abort. */
function isDownstreamFault(error: unknown): boolean {
  const status = (error as { status?: unknown })?.status;
  if (typeof status === "number") return status >= 500;
  return !(error instanceof DOMException && error.name === "AbortError");
}
