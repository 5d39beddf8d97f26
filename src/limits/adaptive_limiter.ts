/**
 * `AdaptiveLimiter`: a {@linkcode Limiter} whose limit is learned from latency — the I/O shell
 * of an {@linkcode AdmissionQueue} over a {@linkcode GradientLimit}: a clock, one timer for the
 * queue's next expiry, and the promises of the callers waiting.
 *
 * @module
 */
import { AdmissionQueue, type AdmissionStats, type QueueChanges } from "./admission_queue.ts";
import { GradientLimit, type GradientLimitOptions } from "./gradient_limit.ts";
import {
  AdmissionRejectedError,
  type Limiter,
  type LimiterAcquireOptions,
  type Permit,
  permitOf,
} from "./limiter.ts";

/**
 * Options of {@linkcode AdaptiveLimiter}: those of its {@linkcode GradientLimit} and of its
 * queue.
 *
 * @example
 * ```ts
 * import type { AdaptiveLimiterOptions } from "./adaptive_limiter.ts";
 * const options: AdaptiveLimiterOptions = { maxLimit: 200, maxQueue: 64, retryAfterMs: 1000 };
 * ```
 */
export interface AdaptiveLimiterOptions extends GradientLimitOptions {
  /** Most waiters; 0 turns every acquire over the limit away at once. 64 by default. */
  maxQueue?: number;
  /** Sojourn bound under overload, in ms; 5 by default. */
  targetMs?: number;
  /** Sojourn bound otherwise, in ms; 25 by default. */
  intervalMs?: number;
  /** What a caller turned away is told to wait, in ms; 1000 by default. */
  retryAfterMs?: number;
  /** `performance.now()`-like clock; `performance.now` by default (tests pass a fake one). */
  clock?: () => number;
  /**
   * When set, a queued acquire is settled only from its caller's own turns: an admission (or a
   * rejection) that comes from another caller's release or timer is only recorded on it, and a
   * timer of its own, every `handOffMs` ms, takes it up. Unset (the default), it is settled at
   * once. Set it on Workers (1 ms): there a waiter settled from another request's turn may
   * resume in that request's context or be cancelled as hung (see `BlockLeasingLimiter`). An
   * admission not taken up within `maxHandOffMs` goes back.
   */
  handOffMs?: number;
  /** How long a recorded admission waits to be taken up before it goes back; 1000 ms by default. */
  maxHandOffMs?: number;
}

/**
 * An {@linkcode AdaptiveLimiter}'s state: the queue's counters and gauges, the limit's
 * baseline, and the {@linkcode LimiterGauges} fields (`capacity` is the current limit).
 *
 * @example
 * ```ts
 * import { AdaptiveLimiter } from "./adaptive_limiter.ts";
 * const stats = new AdaptiveLimiter().stats();
 * stats.limit; // 20
 * ```
 */
export interface AdaptiveLimiterStats extends AdmissionStats {
  /** The current limit (same as `limit`), for the `LimiterGauges` shape. */
  capacity: number;
  /** Permits held (same as `inFlight`). */
  inUse: number;
  /** The ceiling the limit never exceeds. */
  maxLimit: number;
  /** The latency the limit compares windows with, in ms; `undefined` before the first window. */
  baselineMs: number | undefined;
}

/**
 * A permit of an {@linkcode AdaptiveLimiter}: `release()` after work that succeeded, `drop()`
 * after work that timed out or failed, so the limit learns that its latency was a cut-off.
 *
 * @example
 * ```ts
 * import { AdaptiveLimiter } from "./adaptive_limiter.ts";
 * const permit = await new AdaptiveLimiter().acquire();
 * await permit.drop(); // the work failed
 * ```
 */
export interface AdaptivePermit extends Permit {
  /** Releases the permit, recording the work as dropped. Either this or `release` counts. */
  drop(): Promise<void>;
}

interface Waiting {
  resolve(permit: AdaptivePermit): void;
  reject(error: unknown): void;
  dispose(): void;
}

/** An admission recorded on a waiter that takes it up in its own turn (`handOffMs`). */
interface HandOff {
  /** When it was admitted, on the limiter's clock. */
  at: number;
  /** Gives the permit back and rejects the waiter, if it has not taken the permit up yet. */
  reclaim(): void;
}

/**
 * Admits up to a learned number of holders at once; the rest wait briefly (CoDel bound, adaptive
 * LIFO) or are turned away at once with an `AdmissionRejectedError` naming the reason. Each
 * permit's hold time, from grant to release, is the latency sample the limit learns from: hold
 * the permit for exactly the work being limited.
 *
 * Only weight 1: one permit is one request (or one downstream call).
 *
 * @example
 * ```ts
 * import { AdaptiveLimiter } from "./adaptive_limiter.ts";
 *
 * const limiter = new AdaptiveLimiter({ maxLimit: 100 });
 * {
 *   await using _permit = await limiter.acquire(1, { deadline: performance.now() + 1000 });
 *   // ... the work whose latency the limit learns from
 * }
 * limiter.stats().admitted; // 1
 * ```
 */
export class AdaptiveLimiter implements Limiter {
  readonly #limit: GradientLimit;
  readonly #queue: AdmissionQueue;
  readonly #retryAfterMs: number;
  readonly #clock: () => number;
  readonly #waiting = new Map<number, Waiting>();
  readonly #handOffMs: number | undefined;
  readonly #maxHandOffMs: number;
  /** Admissions recorded on waiters and not yet taken up (with `handOffMs`). */
  readonly #handOffs = new Set<HandOff>();

  /** A limiter with nothing in flight. */
  constructor(
    {
      maxQueue,
      targetMs,
      intervalMs,
      retryAfterMs = 1000,
      clock = () => performance.now(),
      handOffMs,
      maxHandOffMs = 1000,
      ...limitOptions
    }: AdaptiveLimiterOptions = {},
  ) {
    for (
      const [field, value] of [["handOffMs", handOffMs], ["maxHandOffMs", maxHandOffMs]] as const
    ) {
      if (value !== undefined && !(value >= 0 && Number.isFinite(value))) {
        throw new RangeError(
          `Cannot create an adaptive limiter as '${field}' must be a finite number of ms of at least 0: current value is ${value}`,
        );
      }
    }
    this.#handOffMs = handOffMs;
    this.#maxHandOffMs = maxHandOffMs;
    this.#limit = new GradientLimit(limitOptions);
    this.#queue = new AdmissionQueue({ limit: this.#limit, maxQueue, targetMs, intervalMs });
    this.#retryAfterMs = retryAfterMs;
    this.#clock = clock;
  }

  /**
   * One permit, now or after a short wait; rejects with an `AdmissionRejectedError` when turned
   * away (queue full, waited its bound, or `deadline` too close to start in time), or with the
   * signal's reason when `signal` aborts first.
   */
  acquire(weight = 1, { signal, deadline }: LimiterAcquireOptions = {}): Promise<AdaptivePermit> {
    if (weight !== 1) {
      return Promise.reject(
        new RangeError(
          `Cannot acquire from an adaptive limiter as 'weight' must be 1: current value is ${weight}`,
        ),
      );
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    const now = this.#clock();
    const outcome = this.#queue.offer(now, { deadline });
    if (outcome.kind === "admitted") {
      return Promise.resolve(this.#permit(now, outcome.inFlight));
    }
    if (outcome.kind === "rejected") {
      this.#apply(this.#queue.expire(now), now);
      return Promise.reject(this.#rejection(outcome.reason));
    }
    // Not Promise.withResolvers: the npm build targets Node 20, which lacks it.
    let resolve!: (permit: AdaptivePermit) => void;
    let reject!: (reason: unknown) => void;
    const promise = new Promise<AdaptivePermit>((ok, fail) => {
      resolve = ok;
      reject = fail;
    });
    const id = outcome.id;
    let timer: ReturnType<typeof setTimeout> | undefined;
    // Each waiter keeps a timer of its own, at its own expiry, rather than sharing one: on
    // Workers a timer belongs to the request that set it (it may never fire once that request
    // has answered), and a request waiting on nothing of its own is cancelled as hung.
    const arm = (at: number) => {
      timer = setTimeout(() => {
        const firedAt = this.#clock();
        this.#apply(this.#queue.expire(firedAt), firedAt);
        const next = this.#queue.expiryOf(id, firedAt);
        if (next !== undefined) arm(next);
      }, Math.max(0, at - this.#clock()));
    };
    const onAbort = () => {
      if (this.#queue.cancel(id)) {
        const waiting = this.#waiting.get(id);
        this.#waiting.delete(id);
        waiting?.dispose();
        // Through the waiter, so that one settled in its own turns stops taking up too.
        waiting?.reject(signal!.reason);
      }
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    const dispose = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    this.#waiting.set(
      id,
      this.#handOffMs === undefined
        ? { resolve, reject, dispose }
        : this.#inOwnTurns({ resolve, reject, dispose }, signal, this.#handOffMs),
    );
    this.#apply(this.#queue.expire(now), now);
    const expiry = this.#queue.expiryOf(id, now);
    if (expiry !== undefined) arm(expiry);
    return promise;
  }

  /** The queue's counters and gauges now, with the limit's baseline. */
  stats(): AdaptiveLimiterStats {
    const stats = this.#queue.stats(this.#clock());
    return {
      ...stats,
      capacity: stats.limit,
      inUse: stats.inFlight,
      maxLimit: this.#limit.maxLimit,
      baselineMs: this.#limit.baselineMs,
    };
  }

  /**
   * `settle`, but settled only from the caller's own turns: what anyone else's turn decides is
   * recorded, and a timer of the caller's own (every `handOffMs`) takes it up. The timer also
   * keeps the caller's request pending on Workers while it waits.
   */
  #inOwnTurns(settle: Waiting, signal: AbortSignal | undefined, handOffMs: number): Waiting {
    let outcome: { permit: AdaptivePermit; handOff: HandOff } | { error: unknown } | undefined;
    const takeUp = () => {
      if (outcome === undefined) {
        setTimeout(takeUp, handOffMs);
        return;
      }
      if ("permit" in outcome) {
        this.#handOffs.delete(outcome.handOff);
        // Admitted, but the caller has gone meanwhile: the permit goes straight back.
        if (signal?.aborted) {
          void outcome.permit.release();
          return settle.reject(signal.reason);
        }
        return settle.resolve(outcome.permit);
      }
      settle.reject(outcome.error);
    };
    setTimeout(takeUp, handOffMs);
    return {
      resolve: (permit) => {
        const handOff: HandOff = {
          at: this.#clock(),
          reclaim: () => {
            this.#handOffs.delete(handOff);
            if (outcome === undefined || !("permit" in outcome)) return;
            outcome = { error: this.#rejection("sojourn") };
            void permit.drop();
          },
        };
        this.#handOffs.add(handOff);
        outcome = { permit, handOff };
      },
      reject: (error) => {
        outcome ??= { error };
      },
      // Not the take-up timer: it is what settles the caller now.
      dispose: settle.dispose,
    };
  }

  #permit(admittedAt: number, inFlight: number): AdaptivePermit {
    let dropped = false;
    const permit = permitOf(1, () => {
      const now = this.#clock();
      this.#apply(this.#queue.release(now, { admittedAt, inFlight, dropped }), now);
    });
    return {
      ...permit,
      drop: () => {
        dropped = true;
        return permit.release();
      },
    };
  }

  #rejection(reason: string): AdmissionRejectedError {
    return new AdmissionRejectedError(this.#waiting.size, this.#retryAfterMs, reason);
  }

  /** Answers the waiters that left the queue. */
  #apply({ admitted, shed }: QueueChanges, now: number): void {
    // An admission its waiter never took up (its request was cancelled) would hold a permit for
    // ever; giving it back applies what that frees.
    for (const handOff of this.#handOffs) {
      if (now - handOff.at >= this.#maxHandOffMs) handOff.reclaim();
    }
    for (const { id, reason } of shed) {
      const waiter = this.#waiting.get(id);
      this.#waiting.delete(id);
      waiter?.dispose();
      waiter?.reject(this.#rejection(reason));
    }
    for (const { id, inFlight } of admitted) {
      const waiter = this.#waiting.get(id);
      this.#waiting.delete(id);
      waiter?.dispose();
      waiter?.resolve(this.#permit(now, inFlight));
    }
  }
}
