/**
 * `hedge`: send a second copy of a slow idempotent call and take whichever answers first ("The
 * Tail at Scale", Dean & Barroso), within a hedge budget and only on spare capacity.
 *
 * @module
 */
import type { HedgeDelay } from "./adaptive_delay.ts";
import type { HedgeBudget } from "./hedge_budget.ts";
import type { Semaphore, Timers } from "../executor/mod.ts";

/**
 * One attempt of a hedged call. `attempt` counts from 1 (the primary); an attempt must stop when
 * `signal` aborts, which happens as soon as another attempt won or the caller gave up.
 *
 * @example
 * ```ts
 * import type { HedgeAttempt } from "./hedge.ts";
 * const call: HedgeAttempt<Response> = (signal, attempt) =>
 *   fetch(`https://downstream.example/price/42?attempt=${attempt}`, { signal });
 * ```
 */
export type HedgeAttempt<T> = (signal: AbortSignal, attempt: number) => Promise<T> | T;

/**
 * What a hedge needs of a limiter: a permit if one is free right now, `undefined` otherwise,
 * without ever queueing. A hedge that waited for a permit would compete with primary calls for
 * capacity; this way hedging only uses capacity nobody else wants, and cannot amplify an
 * overload. Answer from local state only (a semaphore, permits of a leased block), never with a
 * round trip. {@linkcode spareOf} adapts a {@linkcode Semaphore}.
 *
 * @example
 * ```ts
 * import type { SpareCapacity } from "./hedge.ts";
 * let free = 2;
 * const spare: SpareCapacity = {
 *   tryAcquire: () => free > 0 ? (free--, { release: () => void free++ }) : undefined,
 * };
 * ```
 */
export interface SpareCapacity {
  /** One permit now, or `undefined`; the hedge releases it when its attempt ends. */
  tryAcquire(): { release(): unknown } | undefined;
}

/**
 * Why a hedge that was due was not sent: the hedge budget had no token, or the limiter had no
 * spare permit.
 *
 * @example
 * ```ts
 * import type { HedgeDeclined } from "./hedge.ts";
 * const reason: HedgeDeclined = "budget";
 * ```
 */
export type HedgeDeclined = "budget" | "capacity";

/**
 * Options of {@linkcode hedge}.
 *
 * @example
 * ```ts
 * import { AdaptiveDelay } from "./adaptive_delay.ts";
 * import { HedgeBudget } from "./hedge_budget.ts";
 * import type { HedgeOptions } from "./hedge.ts";
 *
 * const options: HedgeOptions<Response> = {
 *   delay: new AdaptiveDelay({ quantile: 0.95 }),
 *   budget: new HedgeBudget({ ratio: 0.05 }),
 * };
 * ```
 */
export interface HedgeOptions<T> {
  /**
   * How long the previous attempt may run before the next is sent, in ms: a fixed number, or a
   * {@linkcode HedgeDelay} such as an `AdaptiveDelay`, which is read once per call and told the
   * primary attempt's latency.
   */
  delay: number | HedgeDelay;
  /** Most attempts, the primary included; 2 by default. 1 turns hedging off. */
  maxAttempts?: number;
  /** Send the next attempt at once when one fails before the delay is up; `false` by default. */
  hedgeOnFailure?: boolean;
  /** Tokens that hedges spend; each call deposits one primary. No limit when absent. */
  budget?: HedgeBudget;
  /** Permits a hedge must get without waiting. No gate when absent. */
  spare?: SpareCapacity;
  /** The caller's signal: aborting it aborts every attempt and rejects with its reason. */
  signal?: AbortSignal;
  /**
   * Frees a value that lost (an attempt that answered after the call was decided). By default a
   * `Response`'s body is cancelled and anything else is dropped.
   */
  release?: (loser: T) => unknown;
  /** Called when hedge number `attempt` (2, 3, …) is sent; must not throw. */
  onHedge?: (attempt: number) => void;
  /** Called when a due hedge was not sent, and why; must not throw. */
  onDeclined?: (reason: HedgeDeclined) => void;
  /** Clock of the latencies reported to an adaptive `delay`; `performance.now` by default. */
  clock?: () => number;
  /**
   * Where the delay's timeout is set; the global `setTimeout` and `clearTimeout` by default. The
   * gateway passes its request's own, which puts all of a request's timeouts on one timer.
   */
  timers?: Timers;
}

/**
 * How a hedged call ended.
 *
 * @example
 * ```ts
 * import type { HedgeResult } from "./hedge.ts";
 * const result: HedgeResult<string> = { value: "ok", winner: 2, attempts: 2 };
 * ```
 */
export interface HedgeResult<T> {
  /** The winning attempt's value. */
  value: T;
  /** Which attempt won, from 1 (the primary). */
  winner: number;
  /** How many attempts were sent. */
  attempts: number;
}

/** Reason given to the attempts that lost. */
function lostReason(): DOMException {
  return new DOMException("Cannot use this attempt as another attempt won the hedge", "AbortError");
}

/**
 * Runs `attempt(signal, 1)`; if it has not answered after `delay` ms, also runs
 * `attempt(signal, 2)` (and so on up to `maxAttempts`), and resolves with the first success.
 * The moment one attempt wins, every other attempt's signal aborts, and a value that still
 * arrives is released (a `Response` body is cancelled).
 *
 * A hedge is sent only when `budget` has a token and `spare` grants a permit at once; otherwise
 * no more hedges are sent for this call and `onDeclined` says why. A failing attempt does not
 * end the call while another is running; when all have failed the call rejects with the first
 * error that is not an `AbortError`, or the first error if all are. Only hedge idempotent calls:
 * the downstream may see every attempt through.
 *
 * Every path out (a win, the last failure, the caller's abort, even during the delay) clears the
 * delay timer, removes the abort listener, aborts the attempts still running and releases their
 * permits; nothing of the call outlives it.
 *
 * @example
 * ```ts
 * import { AdaptiveDelay } from "./adaptive_delay.ts";
 * import { hedge } from "./hedge.ts";
 * import { HedgeBudget } from "./hedge_budget.ts";
 *
 * const delay = new AdaptiveDelay(); // one per downstream, shared by its calls
 * const budget = new HedgeBudget({ ratio: 0.05 });
 * const { value, winner, attempts } = await hedge(
 *   (signal, attempt) => fetch(`https://downstream.example/price/42?attempt=${attempt}`, { signal }),
 *   { delay, budget, signal: AbortSignal.timeout(300) },
 * );
 * ```
 */
export function hedge<T>(
  attempt: HedgeAttempt<T>,
  {
    delay,
    maxAttempts = 2,
    hedgeOnFailure = false,
    budget,
    spare,
    signal,
    release = releaseResponse,
    onHedge,
    onDeclined,
    clock = () => performance.now(),
    timers = globalThis,
  }: HedgeOptions<T>,
): Promise<HedgeResult<T>> {
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1) {
    return Promise.reject(
      new RangeError(
        `Cannot hedge as 'maxAttempts' must be a positive integer: current value is ${maxAttempts}`,
      ),
    );
  }
  const delayMs = typeof delay === "number" ? delay : delay.delayMs();
  if (!(delayMs >= 0) || !Number.isFinite(delayMs)) {
    return Promise.reject(
      new RangeError(
        `Cannot hedge as the delay must be a finite non-negative number of ms: current value is ${delayMs}`,
      ),
    );
  }
  if (signal?.aborted) return Promise.reject(signal.reason);
  budget?.deposit();

  return new Promise<HedgeResult<T>>((resolve, reject) => {
    const running = new Map<
      number,
      { controller: AbortController; permit?: { release(): unknown } }
    >();
    const startedAt = clock();
    let sent = 0;
    let done = false;
    let stopped = maxAttempts === 1;
    let timer: unknown;
    let failure: { error: unknown } | undefined;

    /** Ends the race; the attempts still running are aborted with `reasonOf()`. */
    const finish = (reasonOf: () => unknown) => {
      done = true;
      timers.clearTimeout(timer);
      signal?.removeEventListener("abort", onCallerAbort);
      // Most races end with nothing else running: no abort reason (a DOMException, which records
      // a stack) is built for them.
      if (running.size === 0) return;
      const reason = reasonOf();
      for (const { controller, permit } of running.values()) {
        controller.abort(reason);
        permit?.release();
      }
      running.clear();
    };

    const onCallerAbort = () => {
      finish(() => signal!.reason);
      reject(signal!.reason);
    };

    const end = (n: number) => {
      running.get(n)?.permit?.release();
      running.delete(n);
    };

    const observePrimary = () => {
      if (typeof delay !== "number") delay.observe(clock() - startedAt);
    };

    const stop = (reason: HedgeDeclined) => {
      stopped = true;
      timers.clearTimeout(timer);
      onDeclined?.(reason);
    };

    const tryHedge = () => {
      if (budget !== undefined && !budget.tryTake()) return stop("budget");
      const permit = spare?.tryAcquire();
      if (spare !== undefined && permit === undefined) {
        budget?.refund();
        return stop("capacity");
      }
      onHedge?.(sent + 1);
      launch(permit);
    };

    const launch = (permit?: { release(): unknown }) => {
      const n = ++sent;
      const controller = new AbortController();
      running.set(n, { controller, permit });
      let pending: Promise<T>;
      try {
        pending = Promise.resolve(attempt(controller.signal, n));
      } catch (error) {
        pending = Promise.reject(error);
      }
      pending.then(
        (value) => {
          if (done) return void release(value);
          // The primary's latency: its own, or a lower bound when it is cut off by this win.
          if (n === 1 || running.has(1)) observePrimary();
          end(n);
          finish(lostReason);
          resolve({ value, winner: n, attempts: sent });
        },
        (error) => {
          if (done) return;
          end(n);
          if (failure === undefined || (isAbortError(failure.error) && !isAbortError(error))) {
            failure = { error };
          }
          if (hedgeOnFailure && !stopped && sent < maxAttempts) tryHedge();
          if (running.size === 0) {
            finish(lostReason);
            reject(failure.error);
          }
        },
      );
      timers.clearTimeout(timer);
      if (!stopped && sent < maxAttempts) timer = timers.setTimeout(tryHedge, delayMs);
    };

    signal?.addEventListener("abort", onCallerAbort, { once: true });
    launch();
  });
}

/**
 * Adapts a {@linkcode Semaphore} to {@linkcode SpareCapacity}: a hedge takes one of its permits
 * only when one is free right now.
 *
 * @example
 * ```ts
 * import { spareOf } from "./hedge.ts";
 * import { Semaphore } from "../executor/semaphore.ts";
 *
 * const seats = new Semaphore(64);
 * const spare = spareOf(seats);
 * const permit = spare.tryAcquire(); // undefined when all 64 are taken
 * permit?.release();
 * ```
 */
export function spareOf(semaphore: Semaphore): SpareCapacity {
  return {
    tryAcquire: function trySemaphore() {
      if (!semaphore.tryAcquire(1)) return undefined;
      let held = true;
      return {
        release() {
          if (held) semaphore.release(1);
          held = false;
        },
      };
    },
  };
}

function isAbortError(error: unknown): boolean {
  return error instanceof Error && error.name === "AbortError" ||
    error instanceof DOMException && error.name === "AbortError";
}

function releaseResponse(loser: unknown): void {
  if (loser instanceof Response) loser.body?.cancel().catch(() => {});
}
