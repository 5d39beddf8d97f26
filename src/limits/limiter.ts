/**
 * The one limiter contract of fanfare: `acquire(weight, { signal, deadline })` resolves with a
 * {@linkcode Permit}. Its homes: in one isolate (`LocalLimiter`), a Durable Object reached by
 * RPC or over HTTP (`ServiceLimiter` over a `PermitService`), and blocks leased from such an
 * object and sub-granted locally (`BlockLeasingLimiter`).
 *
 * @module
 */

/**
 * Options of {@linkcode Limiter.acquire}.
 *
 * @example
 * ```ts
 * import type { LimiterAcquireOptions } from "./limiter.ts";
 * const options: LimiterAcquireOptions = { signal: AbortSignal.timeout(200), deadline: performance.now() + 150 };
 * ```
 */
export interface LimiterAcquireOptions {
  /** Stops waiting when it aborts; the acquire rejects with its reason. */
  signal?: AbortSignal;
  /**
   * Latest useful grant, in `performance.now()` time: a permit that would come later rejects
   * with a {@linkcode PermitDeadlineError} instead, so the work is dropped, not started late.
   */
  deadline?: number;
}

/**
 * Permits held until `release()`. Releasing twice is harmless. `await using permit = …`
 * releases at the end of the block where the runtime supports explicit resource management.
 *
 * @example
 * ```ts
 * import { LocalLimiter } from "./local_limiter.ts";
 * const limiter = new LocalLimiter({ capacity: 4 });
 * const permit = await limiter.acquire(1);
 * try {
 *   // ... call the downstream
 * } finally {
 *   await permit.release();
 * }
 * ```
 */
export interface Permit {
  /** Permits held. */
  readonly weight: number;
  /** Gives the permits back; later calls do nothing. Never rejects. */
  release(): Promise<void>;
  /** Same as `release()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
  /** Starts `release()` without waiting for it, for `using`. Prefer `await using` for a remote limiter. */
  [Symbol.dispose](): void;
}

/**
 * A source of permits with a ceiling. `acquire` rejects with an {@linkcode AdmissionRejectedError}
 * when its queue is full, a {@linkcode PermitDeadlineError} when the permit would come after
 * `deadline`, or the signal's reason when `signal` aborts first.
 *
 * @example
 * ```ts
 * import type { Limiter } from "./limiter.ts";
 * async function guarded<T>(limiter: Limiter, work: () => Promise<T>): Promise<T> {
 *   await using _permit = await limiter.acquire(1, { deadline: performance.now() + 100 });
 *   return await work();
 * }
 * ```
 */
export interface Limiter {
  /** Resolves with `weight` permits (1 by default) held by the caller. */
  acquire(weight?: number, options?: LimiterAcquireOptions): Promise<Permit>;
  /**
   * One permit now when one is free and nobody waits for it, else `undefined` (then `acquire`);
   * optional. Its `release` never throws and need not be awaited. The gateway takes each
   * branch's permit here first: no promise, no deadline and no signal read for a permit that is
   * free.
   */
  tryAcquire?(): { release(): unknown } | undefined;
  /** What it holds now, for gauges; optional. */
  stats?(): LimiterGauges | Promise<LimiterGauges>;
}

/**
 * A limiter's state for dashboards: its ceiling as this isolate sees it, permits in use, and
 * acquirers waiting.
 *
 * @example
 * ```ts
 * import type { LimiterGauges } from "./limiter.ts";
 * const now: LimiterGauges = { capacity: 64, inUse: 12, waiting: 0 };
 * ```
 */
export interface LimiterGauges {
  capacity: number;
  inUse: number;
  waiting: number;
}

/**
 * The limiter's queue is full: the caller should shed the work now and retry after
 * `retryAfterMs`. The gateway answers 503 with `Retry-After` for it.
 *
 * @example
 * ```ts
 * import { AdmissionRejectedError } from "./limiter.ts";
 * new AdmissionRejectedError(1024, 1000).message;
 * ```
 */
export class AdmissionRejectedError extends Error {
  /** Waiters queued when it was rejected. */
  readonly waiting: number;
  /** How long the caller should wait before trying again, in ms. */
  readonly retryAfterMs: number;
  /**
   * Why, when the limiter says: `"queue_full"` (the default), `"sojourn"` (waited as long as the
   * queue lets anyone wait) or `"budget"` (could not start in time); see `AdaptiveLimiter`.
   */
  readonly reason: string;

  /** `waiting` callers were already queued; suggest a retry after `retryAfterMs`. */
  constructor(waiting: number, retryAfterMs: number, reason = "queue_full") {
    super(
      reason === "queue_full"
        ? `Cannot queue for a permit as the queue is full: ${waiting} callers are waiting; retry after ${retryAfterMs} ms`
        : `Cannot get a permit as the request was shed (${reason}): ${waiting} callers are waiting; retry after ${retryAfterMs} ms`,
    );
    this.name = "AdmissionRejectedError";
    this.waiting = waiting;
    this.retryAfterMs = retryAfterMs;
    this.reason = reason;
  }
}

/**
 * No permit could be had before the caller's deadline; the work should be dropped, not started
 * late.
 *
 * @example
 * ```ts
 * import { PermitDeadlineError } from "./limiter.ts";
 * new PermitDeadlineError(40).message;
 * ```
 */
export class PermitDeadlineError extends Error {
  /** The wait the caller allowed, in ms. */
  readonly allowedMs: number;

  /** The caller allowed `allowedMs` of waiting. */
  constructor(allowedMs: number) {
    super(
      `Cannot wait for a permit as none would be free before the deadline: ${
        Math.max(0, Math.round(allowedMs))
      } ms of waiting allowed`,
    );
    this.name = "PermitDeadlineError";
    this.allowedMs = allowedMs;
  }
}

/**
 * Whether `error` is an {@linkcode AdmissionRejectedError}, even from another copy of this module.
 *
 * @example
 * ```ts
 * import { AdmissionRejectedError, isAdmissionRejectedError } from "./limiter.ts";
 * isAdmissionRejectedError(new AdmissionRejectedError(1, 1000)); // true
 * ```
 */
export function isAdmissionRejectedError(error: unknown): error is AdmissionRejectedError {
  return error instanceof Error && error.name === "AdmissionRejectedError" &&
    typeof (error as AdmissionRejectedError).retryAfterMs === "number";
}

/**
 * Whether `error` is a {@linkcode PermitDeadlineError}, even from another copy of this module.
 *
 * @example
 * ```ts
 * import { isPermitDeadlineError, PermitDeadlineError } from "./limiter.ts";
 * isPermitDeadlineError(new PermitDeadlineError(5)); // true
 * ```
 */
export function isPermitDeadlineError(error: unknown): error is PermitDeadlineError {
  return error instanceof Error && error.name === "PermitDeadlineError";
}

/** What a permit given back synchronously answers its `release` with. */
const GIVEN_BACK: Promise<void> = Promise.resolve();

/**
 * A {@linkcode Permit} of `weight` whose first release runs `giveBack` (once); a failure of
 * `giveBack` is handed to `onError` (by default logged) since nobody awaits a dispose.
 *
 * @example
 * ```ts
 * import { permitOf } from "./limiter.ts";
 * let free = 3;
 * free -= 1;
 * const permit = permitOf(1, () => void (free += 1));
 * await permit.release();
 * await permit.release(); // no effect
 * ```
 */
export function permitOf(
  weight: number,
  giveBack: () => void | Promise<void>,
  onError: (error: unknown) => void = console.error,
): Permit {
  return new OncePermit(weight, giveBack, onError);
}

/**
 * {@linkcode permitOf}'s permit, and the base of the adaptive limiter's: one object whose
 * methods live on its prototype rather than an object of closures, since the gateway takes a
 * permit per branch (fewer allocations, less GC). Not exported by the package.
 *
 * @example
 * ```ts
 * import { OncePermit } from "./limiter.ts";
 * const permit = new OncePermit(1, () => console.log("given back"), console.error);
 * await permit.release(); // logs once
 * await permit.release(); // no effect
 * ```
 */
export class OncePermit implements Permit {
  readonly weight: number;
  #giveBack: () => void | Promise<void>;
  #onError: (error: unknown) => void;
  #released: Promise<void> | undefined;

  constructor(
    weight: number,
    giveBack: () => void | Promise<void>,
    onError: (error: unknown) => void,
  ) {
    this.weight = weight;
    this.#giveBack = giveBack;
    this.#onError = onError;
  }

  release(): Promise<void> {
    if (this.#released !== undefined) return this.#released;
    // A synchronous give-back (a limiter in this isolate) settles with no async step.
    try {
      const pending = this.#giveBack() as Promise<void> | undefined;
      this.#released = pending === undefined ? GIVEN_BACK : pending.then(undefined, this.#onError);
    } catch (error) {
      this.#onError(error);
      this.#released = GIVEN_BACK;
    }
    return this.#released;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }

  [Symbol.dispose](): void {
    void this.release();
  }
}
