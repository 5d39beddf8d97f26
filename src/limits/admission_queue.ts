/**
 * `AdmissionQueue`: who may start now, who may wait, and who is turned away, under a
 * concurrency limit learned from latency. A pure state machine: every method takes the time
 * `now` (ms), nothing reads a clock or starts a timer; `AdaptiveLimiter` is its I/O shell.
 *
 * The queue follows Facebook's "controlled delay with adaptive LIFO" (Maurer, "Fail at Scale",
 * ACM Queue 2015), itself CoDel (Nichols and Jacobson) applied to a server's request queue:
 *
 * - A request over the limit may wait, but only for its **sojourn bound**: `intervalMs` (25)
 *   while the queue drains now and then, `targetMs` (5) once it has stayed non-empty for a whole
 *   interval — a standing queue only adds latency, so under overload it is kept nearly empty.
 * - It also waits only while it **can still start within its budget**: a request whose deadline
 *   is closer than the limit's baseline latency would be late even if it started now, so it is
 *   turned away at the door (`budget`), and a waiter is dropped when that point passes.
 * - Under overload the queue is served **last in, first out**: the newest waiter has the most
 *   budget left and its client is still waiting, while the oldest is likely to be given up on.
 * - Under overload the queue also holds **only as many waiters as places free up within
 *   `targetMs`**, from the rate at which admitted requests have finished lately (at least one):
 *   any more would only sit out the bound and be shed. Turned away at the door instead, they
 *   cost the gateway a fraction of a wait: no promise, timer or abort listener, and no scan of
 *   the queue. (Facebook's adaptive LIFO evicts the oldest waiter of a full queue instead, which
 *   sends every arrival through the queue: at 8× capacity, 11,000 waits a second and as many
 *   sheds, on the one thread that also runs the admitted requests.)
 *
 * Every request offered ends up counted once: admitted, rejected at the door, shed from the
 * queue or cancelled by its caller (or still waiting).
 *
 * @module
 */
import type { GradientLimit } from "./gradient_limit.ts";

/**
 * Why a request was turned away: the queue was full, it waited its whole sojourn bound, or its
 * budget would not let it start in time.
 *
 * @example
 * ```ts
 * import type { ShedReason } from "./admission_queue.ts";
 * const reason: ShedReason = "sojourn";
 * ```
 */
export type ShedReason = "queue_full" | "sojourn" | "budget";

/** Every {@linkcode ShedReason}, in a stable order for metrics. */
export const SHED_REASONS: readonly ShedReason[] = Object.freeze([
  "queue_full",
  "sojourn",
  "budget",
]);

/**
 * The limit algorithm an {@linkcode AdmissionQueue} consults: a {@linkcode GradientLimit}, or any
 * object of the same shape (a fixed limit in tests).
 *
 * @example
 * ```ts
 * import type { LimitAlgorithm } from "./admission_queue.ts";
 * const fixed: LimitAlgorithm = { limit: 4, baselineMs: undefined, onSample: () => 4 };
 * ```
 */
export type LimitAlgorithm = Pick<GradientLimit, "limit" | "baselineMs" | "onSample">;

/**
 * Options of {@linkcode AdmissionQueue}.
 *
 * @example
 * ```ts
 * import { GradientLimit } from "./gradient_limit.ts";
 * import type { AdmissionQueueOptions } from "./admission_queue.ts";
 * const options: AdmissionQueueOptions = { limit: new GradientLimit(), maxQueue: 32 };
 * ```
 */
export interface AdmissionQueueOptions {
  /** The concurrency limit, consulted on every decision and fed every finished request. */
  limit: LimitAlgorithm;
  /** Most waiters; 0 turns every request over the limit away at once. 64 by default. */
  maxQueue?: number;
  /** Sojourn bound under overload, in ms; 5 by default (CoDel's target). */
  targetMs?: number;
  /**
   * Sojourn bound otherwise, and how long a non-empty queue means overload, in ms; 25 by
   * default. CoDel's 100 ms is sized for network round trips; here a shed request's wait *is*
   * its 503's latency, and our requests take tens of ms, so a bound of about one request's
   * latency absorbs bursts while a 503 stays well under 50 ms.
   */
  intervalMs?: number;
}

/**
 * What {@linkcode AdmissionQueue.offer} decided.
 *
 * @example
 * ```ts
 * import type { OfferOutcome } from "./admission_queue.ts";
 * const outcome: OfferOutcome = { kind: "rejected", reason: "queue_full" };
 * ```
 */
export type OfferOutcome =
  | { kind: "admitted"; inFlight: number }
  | { kind: "queued"; id: number }
  | { kind: "rejected"; reason: ShedReason };

/**
 * Waiters that left the queue in one step: those admitted (with the in-flight count they
 * started at) and those shed, each with why.
 *
 * @example
 * ```ts
 * import type { QueueChanges } from "./admission_queue.ts";
 * const changes: QueueChanges = { admitted: [{ id: 3, inFlight: 8 }], shed: [{ id: 1, reason: "sojourn" }] };
 * ```
 */
export interface QueueChanges {
  admitted: { id: number; inFlight: number }[];
  shed: { id: number; reason: ShedReason }[];
}

/**
 * Over how long the rate of finished requests is averaged (an exponential decay), in ms: long
 * enough to hold many releases at a gateway's rates, short enough to follow a step in load.
 */
const RELEASE_RATE_WINDOW_MS = 100;

/** The changes of a drain that found nobody waiting: shared, so frozen. */
const NO_CHANGES: QueueChanges = Object.freeze({
  admitted: Object.freeze([]) as unknown as QueueChanges["admitted"],
  shed: Object.freeze([]) as unknown as QueueChanges["shed"],
});

/**
 * The queue's counters and gauges. `offered = admitted + rejected + shed + cancelled + waiting`
 * always holds.
 *
 * @example
 * ```ts
 * import type { AdmissionStats } from "./admission_queue.ts";
 * const stats: AdmissionStats = {
 *   limit: 20, inFlight: 20, waiting: 2, overloaded: false,
 *   offered: 100, admitted: 90, rejected: 5, shed: 3, cancelled: 0,
 *   turnedAway: { queue_full: 5, sojourn: 3, budget: 0 },
 * };
 * ```
 */
export interface AdmissionStats {
  limit: number;
  inFlight: number;
  waiting: number;
  /** Whether the queue is in its overload mode (short sojourn bound, LIFO). */
  overloaded: boolean;
  offered: number;
  admitted: number;
  /** Turned away on arrival. */
  rejected: number;
  /** Dropped from the queue after waiting. */
  shed: number;
  /** Left the queue because their caller gave up. */
  cancelled: number;
  /** Rejected plus shed, by reason: every request answered "overloaded". */
  turnedAway: Record<ShedReason, number>;
}

interface Waiter {
  id: number;
  arrivedAt: number;
  /** Latest time it may start and still finish within its budget. */
  startBy: number;
}

/**
 * The admission decision as a state machine: offer a request, release a finished one, expire
 * waiters whose time has come, cancel one whose caller left.
 *
 * @example
 * ```ts
 * import { AdmissionQueue } from "./admission_queue.ts";
 * import { GradientLimit } from "./gradient_limit.ts";
 *
 * const queue = new AdmissionQueue({ limit: new GradientLimit({ initialLimit: 1 }), maxQueue: 1 });
 * queue.offer(0); // { kind: "admitted", inFlight: 1 }
 * queue.offer(1); // { kind: "queued", id: 1 }
 * queue.offer(2); // { kind: "rejected", reason: "queue_full" }
 * queue.release(10, { admittedAt: 0, inFlight: 1 }).admitted; // [{ id: 1, inFlight: 1 }]
 * ```
 */
export class AdmissionQueue {
  readonly #limit: LimitAlgorithm;
  readonly #maxQueue: number;
  readonly #targetMs: number;
  readonly #intervalMs: number;
  /** Arrival order: oldest first. */
  #waiters: Waiter[] = [];
  #nextId = 1;
  #inFlight = 0;
  #lastEmptyAt = -Infinity;
  #overloadedUntil = -Infinity;
  #counts = { offered: 0, admitted: 0, rejected: 0, shed: 0, cancelled: 0 };
  #turnedAway: Record<ShedReason, number> = { queue_full: 0, sojourn: 0, budget: 0 };
  /** Releases per ms, decayed over {@linkcode RELEASE_RATE_WINDOW_MS}, as of `#releasedAt`. */
  #releaseRate = 0;
  #releasedAt = -Infinity;

  /** An empty queue with nothing in flight. */
  constructor({ limit, maxQueue = 64, targetMs = 5, intervalMs = 25 }: AdmissionQueueOptions) {
    if (!Number.isSafeInteger(maxQueue) || maxQueue < 0) {
      throw new RangeError(
        `Cannot create an admission queue as 'maxQueue' must be a whole number: current value is ${maxQueue}`,
      );
    }
    if (!(targetMs > 0) || !(intervalMs >= targetMs) || !Number.isFinite(intervalMs)) {
      throw new RangeError(
        `Cannot create an admission queue as 'targetMs' must be positive and at most 'intervalMs' (${intervalMs}): current value is ${targetMs}`,
      );
    }
    this.#limit = limit;
    this.#maxQueue = maxQueue;
    this.#targetMs = targetMs;
    this.#intervalMs = intervalMs;
  }

  /**
   * A request arrives at `now` and takes a place only if one is free (under the limit, nobody
   * waiting): admitted and counted, with the requests now in flight; else `undefined` and
   * nothing counted, for an {@linkcode offer} to follow.
   */
  tryAdmit(now: number): number | undefined {
    if (this.#waiters.length > 0 || this.#inFlight >= this.#limit.limit) return undefined;
    this.#counts.offered++;
    this.#noteEmpty(now);
    return this.#admit();
  }

  /**
   * A request arriving at `now` that would find no place whatever its budget (over the limit or
   * behind waiters, and the queue full) is turned away: counted as offered and rejected, and its
   * reason returned (`queue_full`); else `undefined` and nothing counted, for {@linkcode tryAdmit}
   * or {@linkcode offer} to follow. It asks for no deadline, so a caller can turn most of an
   * overload away before reading anything of the request.
   */
  rejectIfFull(now: number): ShedReason | undefined {
    const waiting = this.#waiters.length;
    if (waiting === 0 && this.#inFlight < this.#limit.limit) return undefined;
    if (waiting < this.#room(now)) return undefined;
    this.#counts.offered++;
    this.#noteEmpty(now);
    this.#reject("queue_full");
    return "queue_full";
  }

  /**
   * A request arrives at `now`; `deadline` is when its budget ends (none: no budget check).
   * Admitted at once when under the limit and nobody waits; else queued, or rejected. A queued
   * request may be admitted at once: call {@linkcode expire} right after to learn it.
   */
  offer(now: number, { deadline = Infinity }: { deadline?: number } = {}): OfferOutcome {
    const admitted = this.tryAdmit(now);
    if (admitted !== undefined) return { kind: "admitted", inFlight: admitted };
    this.#counts.offered++;
    this.#noteEmpty(now);
    const startBy = deadline - (this.#limit.baselineMs ?? 0);
    if (startBy <= now) return this.#reject("budget");
    if (this.#waiters.length >= this.#room(now)) return this.#reject("queue_full");
    const id = this.#nextId++;
    this.#waiters.push({ id, arrivedAt: now, startBy });
    return { kind: "queued", id };
  }

  /**
   * A request admitted at `admittedAt` with `inFlight` in flight finished at `now`: its latency
   * feeds the limit (unless `sample` is false, e.g. its caller left; `dropped` when it timed out
   * or failed), and the freed place goes to waiters.
   */
  release(
    now: number,
    { admittedAt, inFlight, sample = true, dropped = false }: {
      admittedAt: number;
      inFlight: number;
      sample?: boolean;
      dropped?: boolean;
    },
  ): QueueChanges {
    if (this.#inFlight === 0) {
      throw new RangeError(
        "Cannot release an admitted request as none is in flight: current value is 0",
      );
    }
    this.#inFlight--;
    this.#releaseRate = this.#rateAt(now) + 1 / RELEASE_RATE_WINDOW_MS;
    this.#releasedAt = now;
    if (sample) this.#limit.onSample({ latencyMs: now - admittedAt, inFlight, now, dropped });
    return this.#drain(now);
  }

  /** Sheds waiters whose sojourn bound or start-by time has passed at `now`. */
  expire(now: number): QueueChanges {
    return this.#drain(now);
  }

  /** Removes waiter `id` (its caller gave up); false when it is no longer waiting. */
  cancel(id: number): boolean {
    const index = this.#waiters.findIndex((waiter) => waiter.id === id);
    if (index === -1) return false;
    this.#waiters.splice(index, 1);
    this.#counts.cancelled++;
    return true;
  }

  /** When the next waiter's time runs out, if anyone waits: when to call {@linkcode expire}. */
  nextExpiry(now: number): number | undefined {
    if (this.#waiters.length === 0) return undefined;
    const bound = this.#bound(now);
    let next = Infinity;
    for (const waiter of this.#waiters) next = Math.min(next, this.#expiryOf(waiter, bound));
    return next;
  }

  /** When waiter `id`'s time runs out as things stand at `now`; `undefined` if it no longer waits. */
  expiryOf(id: number, now: number): number | undefined {
    const waiter = this.#waiters.find((w) => w.id === id);
    return waiter === undefined ? undefined : this.#expiryOf(waiter, this.#bound(now));
  }

  /** Whether anything is in flight or waiting. */
  get busy(): boolean {
    return this.#inFlight > 0 || this.#waiters.length > 0;
  }

  /** Counters and gauges at `now`. */
  stats(now: number): AdmissionStats {
    return {
      limit: this.#limit.limit,
      inFlight: this.#inFlight,
      waiting: this.#waiters.length,
      overloaded: this.#overloaded(now),
      ...this.#counts,
      turnedAway: { ...this.#turnedAway },
    };
  }

  #drain(now: number): QueueChanges {
    // Most releases find nobody waiting: nothing to build.
    if (this.#waiters.length === 0) {
      this.#noteEmpty(now);
      return NO_CHANGES;
    }
    const changes: QueueChanges = { admitted: [], shed: [] };
    const overloaded = this.#overloaded(now);
    const bound = overloaded ? this.#targetMs : this.#intervalMs;
    // Expired waiters go first, wherever they are, so that none waits past its time.
    this.#waiters = this.#waiters.filter((waiter) => {
      if (this.#expiryOf(waiter, bound) > now) return true;
      const reason: ShedReason = waiter.startBy <= now ? "budget" : "sojourn";
      this.#shed(reason);
      changes.shed.push({ id: waiter.id, reason });
      // A waiter that sat out its whole bound is what overload looks like.
      if (reason === "sojourn") this.#overloadedUntil = now + this.#intervalMs;
      return false;
    });
    while (this.#waiters.length > 0 && this.#inFlight < this.#limit.limit) {
      const waiter = overloaded ? this.#waiters.pop()! : this.#waiters.shift()!;
      changes.admitted.push({ id: waiter.id, inFlight: this.#admit() });
    }
    this.#noteEmpty(now);
    return changes;
  }

  #admit(): number {
    this.#counts.admitted++;
    return ++this.#inFlight;
  }

  #reject(reason: ShedReason): OfferOutcome {
    this.#counts.rejected++;
    this.#turnedAway[reason]++;
    return { kind: "rejected", reason };
  }

  #shed(reason: ShedReason): void {
    this.#counts.shed++;
    this.#turnedAway[reason]++;
  }

  #expiryOf(waiter: Waiter, bound: number): number {
    return Math.min(waiter.arrivedAt + bound, waiter.startBy);
  }

  /**
   * Waiters the queue may hold at `now`: `maxQueue`, and under overload only as many as places
   * are expected to free up within `targetMs` at the recent rate of releases (at least one).
   */
  #room(now: number): number {
    if (!this.#overloaded(now)) return this.#maxQueue;
    const expected = Math.max(1, Math.ceil(this.#rateAt(now) * this.#targetMs));
    return Math.min(this.#maxQueue, expected);
  }

  /** Releases per ms at `now`: the decayed rate of the last ones. */
  #rateAt(now: number): number {
    return this.#releaseRate * Math.exp((this.#releasedAt - now) / RELEASE_RATE_WINDOW_MS);
  }

  #bound(now: number): number {
    return this.#overloaded(now) ? this.#targetMs : this.#intervalMs;
  }

  #overloaded(now: number): boolean {
    if (now < this.#overloadedUntil) return true;
    return this.#waiters.length > 0 && now - this.#lastEmptyAt >= this.#intervalMs;
  }

  #noteEmpty(now: number): void {
    if (this.#waiters.length === 0) this.#lastEmptyAt = now;
  }
}
