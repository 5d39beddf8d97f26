/**
 * `LocalLimiter`: the global ceiling of one process — weighted permits with a bounded FIFO queue
 * and deadlines, in this isolate, behind the {@linkcode Limiter} contract. Fits a single Deno or
 * Bun instance, and tests.
 *
 * @module
 */
import { DeadlineTimer } from "../executor/mod.ts";
import {
  AdmissionRejectedError,
  type Limiter,
  type LimiterAcquireOptions,
  type Permit,
  PermitDeadlineError,
  permitOf,
} from "./limiter.ts";
import {
  DEFAULT_MAX_WAITERS,
  type LedgerCounters,
  type LedgerStats,
  zeroCounters,
} from "./permit_ledger.ts";

/**
 * Options of {@linkcode LocalLimiter}.
 *
 * @example
 * ```ts
 * import type { LocalLimiterOptions } from "./local_limiter.ts";
 * const options: LocalLimiterOptions = { capacity: 64, maxWaiters: 512, retryAfterMs: 1000 };
 * ```
 */
export interface LocalLimiterOptions {
  /** Permits in all. */
  capacity: number;
  /** Most acquires queued; one more is rejected at once. 1024 by default. */
  maxWaiters?: number;
  /** What a caller turned away is told to wait, in ms; 1000 by default. */
  retryAfterMs?: number;
}

/** A queued acquire, linked in arrival order; its own listener for its signal's abort. */
class Waiter {
  prev: Waiter | undefined;
  next: Waiter | undefined;

  constructor(
    readonly weight: number,
    /** `performance.now()` time by which it must be granted; `Infinity` when none. */
    readonly deadline: number,
    /** What it was allowed to wait, in ms, for its `PermitDeadlineError`. */
    readonly waitMs: number,
    readonly resolve: (permit: Permit) => void,
    readonly reject: (reason: unknown) => void,
    readonly signal: AbortSignal | undefined,
    readonly onAbort: (waiter: Waiter) => void,
    prev: Waiter | undefined,
  ) {
    this.prev = prev;
  }

  /** The signal aborted (an `EventListener` object: no closure per waiter). */
  handleEvent(): void {
    this.onAbort(this);
  }
}

/**
 * A weighted FIFO limiter in this isolate with a bounded queue and deadlines: the same rules as
 * a `PermitLedger` (no barging: a waiter too big for the free permits holds back those behind
 * it), and the same stats, without leases. Its permits never expire: a holder in the same
 * process cannot vanish without the limiter vanishing too, so nothing needs an id or a TTL.
 * It keeps its own queue rather than a ledger's because the gateway takes and returns a permit
 * per branch, and a lease (an id, a map entry, an event per grant) was most of what the ceiling
 * cost a request.
 *
 * @example
 * ```ts
 * import { LocalLimiter } from "./local_limiter.ts";
 *
 * const limiter = new LocalLimiter({ capacity: 64, maxWaiters: 256 });
 * {
 *   await using _permit = await limiter.acquire(1, { deadline: performance.now() + 100 });
 *   // ... at most 64 of these blocks run at once in this process
 * }
 * ```
 */
export class LocalLimiter implements Limiter {
  readonly #capacity: number;
  readonly #maxWaiters: number;
  readonly #retryAfterMs: number;
  #inUse = 0;
  /** Permits handed out and not given back yet, whatever their weight. */
  #held = 0;
  #head: Waiter | undefined;
  #tail: Waiter | undefined;
  #waiting = 0;
  readonly #counters: LedgerCounters = zeroCounters();
  /** Fires at the earliest deadline of a queued waiter (it may fire early and re-arm). */
  readonly #timer = new DeadlineTimer(() => this.#expire());

  /** A limiter of `capacity` permits. */
  constructor(
    { capacity, maxWaiters = DEFAULT_MAX_WAITERS, retryAfterMs = 1000 }: LocalLimiterOptions,
  ) {
    checkCount("capacity", capacity, 1);
    checkCount("maxWaiters", maxWaiters, 0);
    this.#capacity = capacity;
    this.#maxWaiters = maxWaiters;
    this.#retryAfterMs = retryAfterMs;
  }

  /**
   * Resolves with `weight` permits: at once when they are free and nobody is queued, else in
   * arrival order. Rejects with an `AdmissionRejectedError` when the queue is full, a
   * `PermitDeadlineError` when no permit comes before `deadline` (`performance.now()` time),
   * the signal's reason when `signal` aborts first, and a `RangeError` for a weight that is not
   * a whole number from 1 to the capacity or a `deadline` that is `NaN`.
   *
   * @example
   * ```ts
   * import { LocalLimiter } from "./local_limiter.ts";
   * const limiter = new LocalLimiter({ capacity: 2 });
   * const permit = await limiter.acquire(1, { deadline: performance.now() + 100 });
   * await permit.release();
   * ```
   */
  acquire(weight = 1, { signal, deadline }: LimiterAcquireOptions = {}): Promise<Permit> {
    if (!Number.isSafeInteger(weight) || weight < 1 || weight > this.#capacity) {
      return Promise.reject(
        new RangeError(
          `Cannot acquire as 'weight' must be an integer from 1 to the capacity ${this.#capacity}: current value is ${weight}`,
        ),
      );
    }
    if (Number.isNaN(deadline)) {
      return Promise.reject(
        new RangeError("Cannot acquire as 'deadline' must be a time: current value is NaN"),
      );
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#head === undefined && this.#inUse + weight <= this.#capacity) {
      this.#take(weight);
      return Promise.resolve(this.#permit(weight));
    }
    const waitMs = deadline === undefined ? Infinity : Math.max(0, deadline - performance.now());
    if (waitMs <= 0) {
      this.#counters.timedOut++;
      return Promise.reject(new PermitDeadlineError(0));
    }
    if (this.#waiting >= this.#maxWaiters) {
      this.#counters.rejected++;
      return Promise.reject(new AdmissionRejectedError(this.#waiting, this.#retryAfterMs));
    }
    return new Promise<Permit>((resolve, reject) => {
      const waiter = new Waiter(
        weight,
        deadline ?? Infinity,
        waitMs,
        resolve,
        reject,
        signal,
        this.#cancel,
        this.#tail,
      );
      if (this.#tail === undefined) this.#head = waiter;
      else this.#tail.next = waiter;
      this.#tail = waiter;
      this.#waiting++;
      signal?.addEventListener("abort", waiter, { once: true });
      this.#timer.armBy(waiter.deadline);
    });
  }

  /**
   * One permit now if one is free and no one waits for it, else `undefined`; its `release` is
   * synchronous and needs no awaiting. The limiter's spare capacity, which a hedge may use but
   * never waits for (this makes it a `SpareCapacity`), and the gateway's first try for a
   * branch's permit.
   *
   * @example
   * ```ts
   * import { LocalLimiter } from "./local_limiter.ts";
   * const limiter = new LocalLimiter({ capacity: 1 });
   * const spare = limiter.tryAcquire(); // a permit
   * limiter.tryAcquire(); // undefined: none left
   * spare?.release();
   * ```
   */
  tryAcquire(): Permit | undefined {
    if (this.#head !== undefined || this.#inUse >= this.#capacity) return undefined;
    this.#take(1);
    return this.#permit(1);
  }

  /**
   * Permits in use, waiters and running totals, in a `PermitLedger`'s shape: `leases` counts the
   * permits handed out and not given back.
   */
  stats(): Promise<LedgerStats> {
    return Promise.resolve({
      capacity: this.#capacity,
      inUse: this.#inUse,
      available: Math.max(0, this.#capacity - this.#inUse),
      leases: this.#held,
      waiting: this.#waiting,
      maxWaiters: this.#maxWaiters,
      counters: { ...this.#counters },
    });
  }

  #take(weight: number): void {
    this.#inUse += weight;
    this.#held++;
    this.#counters.granted++;
    this.#counters.grantedWeight += weight;
  }

  #permit(weight: number): Permit {
    return permitOf(weight, () => this.#giveBack(weight));
  }

  /** Takes `weight` permits back (each permit calls it once). */
  #giveBack = (weight: number): void => {
    this.#inUse -= weight;
    this.#held--;
    this.#counters.released++;
    this.#counters.releasedWeight += weight;
    if (this.#head !== undefined) this.#grantHead();
  };

  /** A queued waiter's signal aborted: it leaves the queue. */
  #cancel = (waiter: Waiter): void => {
    this.#unlink(waiter);
    this.#counters.cancelled++;
    // A big waiter at the head may have held back smaller ones behind it.
    this.#grantHead();
    waiter.reject(waiter.signal!.reason);
  };

  /** Grants the waiters at the head that fit, in order. */
  #grantHead(): void {
    for (let head = this.#head; head !== undefined; head = this.#head) {
      if (this.#inUse + head.weight > this.#capacity) return;
      this.#unlink(head);
      head.signal?.removeEventListener("abort", head);
      this.#take(head.weight);
      head.resolve(this.#permit(head.weight));
    }
  }

  #unlink(waiter: Waiter): void {
    if (waiter.prev === undefined) this.#head = waiter.next;
    else waiter.prev.next = waiter.next;
    if (waiter.next === undefined) this.#tail = waiter.prev;
    else waiter.next.prev = waiter.prev;
    waiter.prev = waiter.next = undefined;
    this.#waiting--;
    if (this.#waiting === 0) this.#timer.clear();
  }

  /** Turns away every waiter whose deadline has passed, then arms for the next one. */
  #expire(): void {
    const now = performance.now();
    let next = Infinity;
    for (let waiter = this.#head; waiter !== undefined;) {
      const after = waiter.next;
      if (waiter.deadline <= now) {
        this.#unlink(waiter);
        waiter.signal?.removeEventListener("abort", waiter);
        this.#counters.timedOut++;
        waiter.reject(new PermitDeadlineError(waiter.waitMs));
      } else if (waiter.deadline < next) next = waiter.deadline;
      waiter = after;
    }
    // A timed-out head may have held back smaller waiters behind it.
    this.#grantHead();
    if (this.#head !== undefined) this.#timer.armBy(next);
  }
}

function checkCount(field: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(
      `Cannot create a local limiter as '${field}' must be an integer of at least ${min}: current value is ${value}`,
    );
  }
}
