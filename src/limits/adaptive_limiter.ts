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
  OncePermit,
  type Permit,
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
  /**
   * When set, the limiter watches its own event loop while anything is in flight or waiting: a
   * timer due every `lagIntervalMs` that fires more than `maxLagMs` late three times in a row
   * means the process is short of CPU (every request, refusals too, then waits that long before
   * any code sees it), and the limit backs off as on a window of drops, or to `maxLagMs ÷ lag`
   * of itself (the least late of the three) when that is less, never below half. Three, because
   * one late sample is as often the machine giving the thread's core to another process for a
   * moment. In proportion, because a flood of arrivals holds samples back for hundreds of ms,
   * and a back-off by a tenth per late sample left the limit near its ceiling for seconds while
   * 502s piled up (`exp:overload-steps` at 8× capacity). Latency alone shows this late: a
   * gateway's requests mostly wait on downstreams, so a saturated event loop adds to them only
   * a fraction of what it adds to a refusal. Unset by default (`npm start` sets 25 ms: at 5 and
   * 10 ms, the other processes of an `exp:overload` sweep on the same two cores made enough
   * late samples to pull the limit down to 1–4 requests at 4× capacity, and it took most of the
   * step to climb back); not for Workers, whose timers do not run between a request's events.
   */
  maxLagMs?: number;
  /** How often the event loop is sampled when `maxLagMs` is set, in ms; 10 by default. */
  lagIntervalMs?: number;
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
  /** How late the last event-loop sample fired, in ms (0 without `maxLagMs`). */
  lagMs: number;
  /** Back-offs for a late event loop (with `maxLagMs`). */
  lagBackOffs: number;
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

/**
 * What {@linkcode AdaptiveLimiter.admit} decided: a permit now, a refusal (why, what to tell the
 * caller, and how many were waiting), a place in the queue with the permit to come, or nothing
 * for a caller whose signal had already aborted.
 *
 * @example
 * ```ts
 * import type { Admission } from "./adaptive_limiter.ts";
 * const refused: Admission = { kind: "rejected", reason: "queue_full", retryAfterMs: 1000, waiting: 64 };
 * ```
 */
export type Admission =
  | { kind: "admitted"; permit: AdaptivePermit }
  | { kind: "rejected"; reason: string; retryAfterMs: number; waiting: number }
  | { kind: "aborted"; reason: unknown }
  | { kind: "queued"; decided: Promise<Decided> };

/**
 * A refusal from {@linkcode AdaptiveLimiter.admit} or {@linkcode AdaptiveLimiter.tryRefuse}.
 *
 * @example
 * ```ts
 * import type { Refusal } from "./adaptive_limiter.ts";
 * const refused: Refusal = { kind: "rejected", reason: "queue_full", retryAfterMs: 1000, waiting: 1 };
 * ```
 */
export type Refusal = Extract<Admission, { kind: "rejected" }>;

/**
 * How a queued caller's wait ended; the promise of an `Admission` of kind `queued` resolves to
 * it and never rejects.
 *
 * @example
 * ```ts
 * import type { Decided } from "./adaptive_limiter.ts";
 * const gone: Decided = { kind: "aborted", reason: new Error("client left") };
 * ```
 */
export type Decided = Exclude<Admission, { kind: "queued" }>;

interface Waiting {
  settle(decided: Decided): void;
  dispose(): void;
}

/** An admission recorded on a waiter that takes it up in its own turn (`handOffMs`). */
interface HandOff {
  /** When it was admitted, on the limiter's clock. */
  at: number;
  /** Gives the permit back and rejects the waiter, if it has not taken the permit up yet. */
  reclaim(): void;
}

/** Late event-loop samples in a row that back the limit off (see `maxLagMs`). */
const LATE_SAMPLES = 3;

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
  readonly #maxLagMs: number | undefined;
  readonly #lagIntervalMs: number;
  #lagTimer: ReturnType<typeof setTimeout> | undefined;
  #lagMs = 0;
  #lagBackOffs = 0;
  /** Late samples in a row, and the least late of them. */
  #lateStreak = 0;
  #leastLateMs = Infinity;

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
      maxLagMs,
      lagIntervalMs = 10,
      ...limitOptions
    }: AdaptiveLimiterOptions = {},
  ) {
    for (
      const [field, value] of [
        ["handOffMs", handOffMs],
        ["maxHandOffMs", maxHandOffMs],
        ["maxLagMs", maxLagMs],
        ["lagIntervalMs", lagIntervalMs],
      ] as const
    ) {
      if (value !== undefined && !(value >= 0 && Number.isFinite(value))) {
        throw new RangeError(
          `Cannot create an adaptive limiter as '${field}' must be a finite number of ms of at least 0: current value is ${value}`,
        );
      }
    }
    this.#handOffMs = handOffMs;
    this.#maxHandOffMs = maxHandOffMs;
    this.#maxLagMs = maxLagMs;
    this.#lagIntervalMs = lagIntervalMs;
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
  acquire(weight = 1, options: LimiterAcquireOptions = {}): Promise<AdaptivePermit> {
    if (weight !== 1) {
      return Promise.reject(
        new RangeError(
          `Cannot acquire from an adaptive limiter as 'weight' must be 1: current value is ${weight}`,
        ),
      );
    }
    const admission = this.admit(options);
    return Promise.resolve(admission.kind === "queued" ? admission.decided : admission)
      .then(permitOrThrow);
  }

  /**
   * `acquire(1, options)` without a promise or an error where none is needed: a permit now, a
   * refusal now (its reason and retry hint, with no `AdmissionRejectedError` built), or, for a
   * caller that waits in the queue, a promise of one of those that never rejects. A gateway
   * turning thousands of requests a second away pays for neither a stack trace nor a rejected
   * promise per refusal. A `signal` already aborted is answered `aborted`, with its reason,
   * before the queue is asked.
   *
   * @example
   * ```ts
   * import { AdaptiveLimiter } from "./adaptive_limiter.ts";
   * const limiter = new AdaptiveLimiter({ maxQueue: 0 });
   * const admission = limiter.admit({ deadline: performance.now() + 1000 });
   * if (admission.kind === "admitted") await admission.permit.release();
   * if (admission.kind === "rejected") console.log(admission.reason, admission.retryAfterMs);
   * ```
   */
  admit({ signal, deadline }: LimiterAcquireOptions = {}): Admission {
    if (signal?.aborted) return { kind: "aborted", reason: signal.reason };
    const now = this.#clock();
    const outcome = this.#queue.offer(now, { deadline });
    this.#watchLag(now);
    if (outcome.kind === "admitted") {
      return { kind: "admitted", permit: this.#permit(now, outcome.inFlight) };
    }
    if (outcome.kind === "rejected") {
      this.#apply(this.#queue.expire(now), now);
      return this.#refusal(outcome.reason);
    }
    // Not Promise.withResolvers: the npm build targets Node 20, which lacks it.
    let settle!: (decided: Decided) => void;
    const decided = new Promise<Decided>((resolve) => settle = resolve);
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
        waiting?.settle({ kind: "aborted", reason: signal!.reason });
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
        ? { settle, dispose }
        : this.#inOwnTurns({ settle, dispose }, signal, this.#handOffMs),
    );
    this.#apply(this.#queue.expire(now), now);
    const expiry = this.#queue.expiryOf(id, now);
    if (expiry !== undefined) arm(expiry);
    return { kind: "queued", decided };
  }

  /**
   * A permit if one is free now (under the limit, nobody waiting), else `undefined` with nothing
   * counted: the caller then goes on to `admit` or `acquire`. Most callers of a limiter that is
   * not full get their permit here without reading a signal or a deadline, which on Deno builds
   * the request's signal or headers for nothing.
   *
   * @example
   * ```ts
   * import { AdaptiveLimiter } from "./adaptive_limiter.ts";
   * const limiter = new AdaptiveLimiter();
   * const permit = limiter.tryAcquire() ?? await limiter.acquire(1, { deadline: performance.now() + 1000 });
   * await permit.release();
   * ```
   */
  tryAcquire(): AdaptivePermit | undefined {
    const now = this.#clock();
    const inFlight = this.#queue.tryAdmit(now);
    if (inFlight === undefined) return undefined;
    this.#watchLag(now);
    return this.#permit(now, inFlight);
  }

  /**
   * A refusal now, counted as `admit` counts one, for a request that would be turned away at the
   * door whatever its budget: over the limit (or behind waiters) with the queue full. Else
   * `undefined` with nothing counted, for `tryAcquire` or `admit` to follow. It reads neither a
   * signal nor a deadline, so an overloaded gateway can answer most of its 503s before it routes
   * or parses the request (`routes/admission.ts`, `refusingEarly`).
   *
   * @example
   * ```ts
   * import { AdaptiveLimiter } from "./adaptive_limiter.ts";
   * const limiter = new AdaptiveLimiter({ initialLimit: 1, maxLimit: 1, maxQueue: 0 });
   * const permit = limiter.tryAcquire();
   * limiter.tryRefuse()?.reason; // "queue_full"
   * await permit?.release();
   * limiter.tryRefuse(); // undefined
   * ```
   */
  tryRefuse(): Refusal | undefined {
    const now = this.#clock();
    const reason = this.#queue.rejectIfFull(now);
    if (reason === undefined) return undefined;
    this.#watchLag(now);
    this.#apply(this.#queue.expire(now), now);
    return this.#refusal(reason);
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
      lagMs: this.#lagMs,
      lagBackOffs: this.#lagBackOffs,
    };
  }

  /**
   * Samples the event loop every `lagIntervalMs` while the queue is busy (with `maxLagMs`): one
   * timer, cleared by the release that leaves the queue idle, so an idle limiter holds none.
   */
  #watchLag(from: number): void {
    if (this.#lagTimer !== undefined || this.#maxLagMs === undefined) return;
    const due = from + this.#lagIntervalMs;
    this.#lagTimer = setTimeout(() => {
      this.#lagTimer = undefined;
      const now = this.#clock();
      this.#lagMs = Math.max(0, now - due);
      if (this.#lagMs > this.#maxLagMs!) {
        this.#leastLateMs = Math.min(this.#leastLateMs, this.#lagMs);
        if (++this.#lateStreak >= LATE_SAMPLES) {
          this.#limit.backOff(this.#leastLateMs / this.#maxLagMs!);
          this.#lagBackOffs++;
          this.#endStreak();
        }
      } else {
        this.#endStreak();
      }
      if (this.#queue.busy) this.#watchLag(now);
    }, this.#lagIntervalMs);
  }

  /** Forgets the late samples counted so far. */
  #endStreak(): void {
    this.#lateStreak = 0;
    this.#leastLateMs = Infinity;
  }

  /**
   * `settle`, but settled only from the caller's own turns: what anyone else's turn decides is
   * recorded, and a timer of the caller's own (every `handOffMs`) takes it up. The timer also
   * keeps the caller's request pending on Workers while it waits.
   */
  #inOwnTurns(waiter: Waiting, signal: AbortSignal | undefined, handOffMs: number): Waiting {
    let decided: Decided | undefined;
    let handOff: HandOff | undefined;
    const takeUp = () => {
      if (decided === undefined) {
        setTimeout(takeUp, handOffMs);
        return;
      }
      if (handOff !== undefined) this.#handOffs.delete(handOff);
      // Admitted, but the caller has gone meanwhile: the permit goes straight back.
      if (decided.kind === "admitted" && signal?.aborted) {
        void decided.permit.release();
        return waiter.settle({ kind: "aborted", reason: signal.reason });
      }
      waiter.settle(decided);
    };
    setTimeout(takeUp, handOffMs);
    return {
      settle: (outcome) => {
        if (outcome.kind !== "admitted") {
          decided ??= outcome;
          return;
        }
        const { permit } = outcome;
        const recorded: HandOff = {
          at: this.#clock(),
          reclaim: () => {
            this.#handOffs.delete(recorded);
            if (decided?.kind !== "admitted") return;
            decided = this.#refusal("sojourn");
            void permit.drop();
          },
        };
        handOff = recorded;
        this.#handOffs.add(recorded);
        decided = outcome;
      },
      // Not the take-up timer: it is what settles the caller now.
      dispose: waiter.dispose,
    };
  }

  #permit(admittedAt: number, inFlight: number): AdaptivePermit {
    return new LearningPermit(this.#settleHold, admittedAt, inFlight);
  }

  /** Applies the end of a permit's hold: its latency sample, or its drop. */
  #settleHold = (admittedAt: number, inFlight: number, dropped: boolean): void => {
    const now = this.#clock();
    this.#apply(this.#queue.release(now, { admittedAt, inFlight, dropped }), now);
  };

  #refusal(reason: string): Refusal {
    return {
      kind: "rejected",
      reason,
      retryAfterMs: this.#retryAfterMs,
      waiting: this.#waiting.size,
    };
  }

  /** Answers the waiters that left the queue. */
  #apply({ admitted, shed }: QueueChanges, now: number): void {
    if (this.#lagTimer !== undefined && !this.#queue.busy) {
      clearTimeout(this.#lagTimer);
      this.#lagTimer = undefined;
      this.#lagMs = 0;
      this.#endStreak();
    }
    // An admission its waiter never took up (its request was cancelled) would hold a permit for
    // ever; giving it back applies what that frees.
    for (const handOff of this.#handOffs) {
      if (now - handOff.at >= this.#maxHandOffMs) handOff.reclaim();
    }
    for (const { id, reason } of shed) {
      const waiter = this.#waiting.get(id);
      this.#waiting.delete(id);
      waiter?.dispose();
      waiter?.settle(this.#refusal(reason));
    }
    for (const { id, inFlight } of admitted) {
      const waiter = this.#waiting.get(id);
      this.#waiting.delete(id);
      waiter?.dispose();
      waiter?.settle({ kind: "admitted", permit: this.#permit(now, inFlight) });
    }
  }
}

/** `acquire`'s answer from an admission: the permit, or the refusal or abort thrown. */
function permitOrThrow(decided: Decided): AdaptivePermit {
  if (decided.kind === "admitted") return decided.permit;
  if (decided.kind === "aborted") throw decided.reason;
  throw new AdmissionRejectedError(decided.waiting, decided.retryAfterMs, decided.reason);
}

/**
 * An {@linkcode AdaptivePermit}: `permitOf`'s permit with a `drop`, which marks the hold as
 * dropped before giving it back. No spread copy of a permit per admitted request or
 * bulkheaded call.
 */
class LearningPermit extends OncePermit implements AdaptivePermit {
  #dropped = false;

  constructor(
    settle: (admittedAt: number, inFlight: number, dropped: boolean) => void,
    admittedAt: number,
    inFlight: number,
  ) {
    super(1, () => settle(admittedAt, inFlight, this.#dropped), console.error);
  }

  drop(): Promise<void> {
    this.#dropped = true;
    return this.release();
  }
}
