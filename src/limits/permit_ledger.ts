/**
 * The permit ledger: a weighted, leased, FIFO semaphore as a pure state machine. No timers and
 * no I/O; every call takes the time as `now` (ms on one clock, e.g. `Date.now()`), and what
 * happens to waiters comes out as events for the caller's shell to deliver. The same ledger
 * runs inside one isolate and inside the Durable Object that is the global ceiling.
 *
 * @module
 */

/**
 * A grant of `weight` permits to `holder` until `expiresAt` (on the ledger's clock; `Infinity`
 * never expires) unless renewed or released first.
 *
 * @example
 * ```ts
 * import type { Lease } from "./permit_ledger.ts";
 * const lease: Lease = { id: "l-1", holder: "isolate-a", weight: 4, expiresAt: 1_700_000_030_000 };
 * ```
 */
export interface Lease {
  /** Unique within one ledger, across restarts from its state. */
  readonly id: string;
  /** Who holds it: an isolate, a process, a request. Only reported, never trusted. */
  readonly holder: string;
  /** Permits it holds. */
  readonly weight: number;
  /** When the ledger reclaims it. */
  readonly expiresAt: number;
}

/**
 * What {@linkcode PermitLedger.acquire} is asked for.
 *
 * @example
 * ```ts
 * import type { LeaseRequest } from "./permit_ledger.ts";
 * const request: LeaseRequest = { holder: "isolate-a", weight: 2, ttlMs: 30_000, deadline: 1_000 };
 * ```
 */
export interface LeaseRequest {
  /** Who asks. */
  holder: string;
  /** Permits wanted at once: an integer from 1 to the capacity. */
  weight: number;
  /** How long the lease lives once granted, in ms; `Infinity` for a lease that never expires. */
  ttlMs: number;
  /** Gives up waiting at this time (ledger clock); absent: waits until cancelled. */
  deadline?: number;
}

/**
 * The answer to an acquire: granted now, queued (watch the events for its fate), or turned
 * away at once because the queue is full or the deadline has already passed.
 *
 * @example
 * ```ts
 * import { PermitLedger } from "./permit_ledger.ts";
 * const ledger = new PermitLedger({ capacity: 1 });
 * const outcome = ledger.acquire({ holder: "a", weight: 1, ttlMs: 1000 }, 0);
 * if (outcome.kind === "granted") outcome.lease.id; // "l-1"
 * ```
 */
export type AcquireOutcome =
  | { kind: "granted"; lease: Lease }
  | { kind: "queued"; waiterId: number }
  | { kind: "rejected"; reason: "queue full"; waiting: number }
  | { kind: "timedOut" };

/**
 * What happened to waiters and leases since the last {@linkcode PermitLedger.takeEvents}:
 * a waiter was granted, a waiter's deadline passed, or a lease expired and was reclaimed.
 *
 * @example
 * ```ts
 * import type { LedgerEvent } from "./permit_ledger.ts";
 * const event: LedgerEvent = { type: "timedOut", waiterId: 3 };
 * ```
 */
export type LedgerEvent =
  | { type: "granted"; waiterId: number; lease: Lease }
  | { type: "timedOut"; waiterId: number }
  | { type: "expired"; lease: Lease };

/**
 * Running totals of a ledger. Weights count permits; the others count calls. At every moment
 * `grantedWeight === releasedWeight + reclaimedWeight + inUse`.
 *
 * @example
 * ```ts
 * import { PermitLedger } from "./permit_ledger.ts";
 * new PermitLedger({ capacity: 2 }).counters.unknownReleases; // 0
 * ```
 */
export interface LedgerCounters {
  /** Leases granted (at once or from the queue). */
  granted: number;
  /** Permits granted. */
  grantedWeight: number;
  /** Leases released by their holder. */
  released: number;
  /** Permits released by their holder. */
  releasedWeight: number;
  /** Leases reclaimed because they expired. */
  reclaimed: number;
  /** Permits reclaimed because their lease expired. */
  reclaimedWeight: number;
  /** Releases of a lease the ledger does not hold (released twice, expired, or unknown). */
  unknownReleases: number;
  /** Renewals of a lease the ledger does not hold. */
  unknownRenewals: number;
  /** Acquires turned away because the queue was full. */
  rejected: number;
  /** Acquires whose deadline passed before a grant. */
  timedOut: number;
  /** Waiters that left the queue through {@linkcode PermitLedger.cancel}. */
  cancelled: number;
}

/**
 * Every {@linkcode LedgerCounters} field at zero: where a ledger, or a limiter that reports in
 * its shape, starts counting.
 *
 * @example
 * ```ts
 * import { zeroCounters } from "./permit_ledger.ts";
 * zeroCounters().granted; // 0
 * ```
 */
export function zeroCounters(): LedgerCounters {
  return {
    granted: 0,
    grantedWeight: 0,
    released: 0,
    releasedWeight: 0,
    reclaimed: 0,
    reclaimedWeight: 0,
    unknownReleases: 0,
    unknownRenewals: 0,
    rejected: 0,
    timedOut: 0,
    cancelled: 0,
  };
}

/**
 * A ledger's state as plain JSON (for Durable Object storage). Waiters are not in it: a waiter
 * is a live call that dies with its object, while leases are held by callers who outlive it.
 *
 * @example
 * ```ts
 * import { PermitLedger } from "./permit_ledger.ts";
 * const state = new PermitLedger({ capacity: 8 }).toState();
 * const again = PermitLedger.fromState(JSON.parse(JSON.stringify(state)));
 * ```
 */
export interface LedgerState {
  version: 1;
  capacity: number;
  maxWaiters: number;
  /** Last id number handed out, so that ids are never reused. */
  sequence: number;
  /** Latest `now` seen: time never runs backwards for the ledger. */
  now: number;
  /** Leases held; `expiresAt: null` stands for `Infinity`, which JSON cannot hold. */
  leases: { id: string; holder: string; weight: number; expiresAt: number | null }[];
  counters: LedgerCounters;
}

/**
 * Options of {@linkcode PermitLedger}.
 *
 * @example
 * ```ts
 * import type { LedgerOptions } from "./permit_ledger.ts";
 * const options: LedgerOptions = { capacity: 64, maxWaiters: 256 };
 * ```
 */
export interface LedgerOptions {
  /** Permits in all: a positive integer. */
  capacity: number;
  /** Most acquires queued at once; one more is rejected at once. 1024 by default. */
  maxWaiters?: number;
  /**
   * Appended to every lease id after a `-`, to make ids unguessable where a lease id is all a
   * caller needs to release or renew (an HTTP API); none by default (ids `l-1`, `l-2`, …).
   */
  leaseIdSuffix?: () => string;
}

/**
 * A snapshot of a ledger for reports and the `stats` endpoint.
 *
 * @example
 * ```ts
 * import { PermitLedger } from "./permit_ledger.ts";
 * const { inUse, available, waiting } = new PermitLedger({ capacity: 4 }).stats();
 * ```
 */
export interface LedgerStats {
  capacity: number;
  inUse: number;
  available: number;
  leases: number;
  waiting: number;
  maxWaiters: number;
  counters: LedgerCounters;
}

interface Waiter {
  id: number;
  holder: string;
  weight: number;
  ttlMs: number;
  deadline: number;
}

/** Default bound on the queue of a {@linkcode PermitLedger}. */
export const DEFAULT_MAX_WAITERS = 1024;

/**
 * Weighted permits with leases: FIFO waiters without barging (a large waiter at the head is not
 * overtaken by small ones), a bounded queue, waiter deadlines, lease TTLs, renewal, idempotent
 * release, and reclaim of expired leases. Every method first applies the passage of time up to
 * `now`: expired leases are reclaimed and late waiters time out (lazily, so a missed alarm
 * costs nothing but delay). Waiters' fates are queued as {@linkcode LedgerEvent}s.
 *
 * @example
 * ```ts
 * import { PermitLedger } from "./permit_ledger.ts";
 *
 * const ledger = new PermitLedger({ capacity: 2, maxWaiters: 8 });
 * const first = ledger.acquire({ holder: "a", weight: 2, ttlMs: 1000 }, 0); // granted
 * const second = ledger.acquire({ holder: "b", weight: 1, ttlMs: 1000, deadline: 500 }, 0); // queued
 * if (first.kind === "granted") ledger.release(first.lease.id, 10);
 * ledger.takeEvents(); // [{ type: "granted", waiterId: 2, lease: {...} }]
 * ```
 */
export class PermitLedger {
  #capacity: number;
  #maxWaiters: number;
  #leaseIdSuffix: (() => string) | undefined;
  #sequence = 0;
  #now = -Infinity;
  #inUse = 0;
  #leases = new Map<string, Lease>();
  #waiters: Waiter[] = [];
  // Lower bounds of the next lease expiry and the next waiter deadline: every operation applies
  // the passage of time, and a scan of every lease and waiter per acquire and release was most
  // of a busy gateway's limiter cost (bench:overhead). Leases that never expire keep the first
  // bound at Infinity, so their ledger never scans them.
  #expiryBound = Infinity;
  #deadlineBound = Infinity;
  #events: LedgerEvent[] = [];
  #counters: LedgerCounters = zeroCounters();

  /** A ledger with `capacity` permits, all free. */
  constructor({ capacity, maxWaiters = DEFAULT_MAX_WAITERS, leaseIdSuffix }: LedgerOptions) {
    checkCount("capacity", capacity, 1);
    checkCount("maxWaiters", maxWaiters, 0);
    this.#capacity = capacity;
    this.#maxWaiters = maxWaiters;
    this.#leaseIdSuffix = leaseIdSuffix;
  }

  /**
   * Rebuilds a ledger from {@linkcode PermitLedger.toState}, with no waiters. `capacity`, when
   * given, replaces the stored one (a new configuration); leases held beyond it simply block
   * grants until enough are returned.
   *
   * @example
   * ```ts
   * import { PermitLedger } from "./permit_ledger.ts";
   * const ledger = PermitLedger.fromState(new PermitLedger({ capacity: 4 }).toState(), { capacity: 8 });
   * ledger.capacity; // 8
   * ```
   */
  static fromState(
    state: LedgerState,
    { capacity, leaseIdSuffix }: Partial<Pick<LedgerOptions, "capacity" | "leaseIdSuffix">> = {},
  ): PermitLedger {
    if (state?.version !== 1) {
      throw new TypeError(
        `Cannot restore a permit ledger as 'version' must be 1: current value is ${state?.version}`,
      );
    }
    const ledger = new PermitLedger({
      capacity: capacity ?? state.capacity,
      maxWaiters: state.maxWaiters,
      leaseIdSuffix,
    });
    ledger.#sequence = state.sequence;
    ledger.#now = state.now;
    ledger.#counters = { ...state.counters };
    for (const { id, holder, weight, expiresAt } of state.leases) {
      if (!LEASE_ID.test(id)) {
        throw new TypeError(
          `Cannot restore a permit ledger as each lease id must be 'l-<n>' or 'l-<n>-<suffix>': current value is ${
            JSON.stringify(id)
          }`,
        );
      }
      ledger.#leases.set(id, { id, holder, weight, expiresAt: expiresAt ?? Infinity });
      ledger.#expiryBound = Math.min(ledger.#expiryBound, expiresAt ?? Infinity);
      ledger.#inUse += weight;
    }
    return ledger;
  }

  /** Permits in all. */
  get capacity(): number {
    return this.#capacity;
  }

  /** Permits held by leases right now. */
  get inUse(): number {
    return this.#inUse;
  }

  /** Acquires queued right now. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /** Running totals (a copy). */
  get counters(): LedgerCounters {
    return { ...this.#counters };
  }

  /** Who holds lease `leaseId` as of the last call (no time applied), or `undefined`. */
  holderOf(leaseId: string): string | undefined {
    return this.#leases.get(leaseId)?.holder;
  }

  /** The leases held right now, oldest first. */
  leases(): Lease[] {
    return [...this.#leases.values()];
  }

  /**
   * Grants `weight` permits now when no one is queued and they are free; otherwise queues the
   * request (its fate arrives as an event), unless its deadline is already past or the queue is
   * full. A bad weight, TTL or holder throws a `RangeError`/`TypeError`.
   */
  acquire(request: LeaseRequest, now: number): AcquireOutcome {
    const { holder, weight, ttlMs, deadline = Infinity } = request;
    if (typeof holder !== "string" || holder === "") {
      throw new TypeError(
        `Cannot acquire as 'holder' must be a non-empty string: current value is ${
          JSON.stringify(holder)
        }`,
      );
    }
    if (!Number.isSafeInteger(weight) || weight < 1 || weight > this.#capacity) {
      throw new RangeError(
        `Cannot acquire as 'weight' must be an integer from 1 to the capacity ${this.#capacity}: current value is ${weight}`,
      );
    }
    if (!(ttlMs > 0)) {
      throw new RangeError(
        `Cannot acquire as 'ttlMs' must be a positive number of ms: current value is ${ttlMs}`,
      );
    }
    if (Number.isNaN(deadline)) {
      throw new RangeError("Cannot acquire as 'deadline' must be a time: current value is NaN");
    }
    this.#advance(now);
    if (this.#waiters.length === 0 && this.#inUse + weight <= this.#capacity) {
      return { kind: "granted", lease: this.#grant(holder, weight, ttlMs) };
    }
    if (deadline <= this.#now) {
      this.#counters.timedOut++;
      return { kind: "timedOut" };
    }
    if (this.#waiters.length >= this.#maxWaiters) {
      this.#counters.rejected++;
      return { kind: "rejected", reason: "queue full", waiting: this.#waiters.length };
    }
    const id = ++this.#sequence;
    this.#waiters.push({ id, holder, weight, ttlMs, deadline });
    if (deadline < this.#deadlineBound) this.#deadlineBound = deadline;
    return { kind: "queued", waiterId: id };
  }

  /**
   * Takes a queued waiter out (its caller gave up); returns whether it was still queued.
   * Waiters behind it that now fit are granted.
   */
  cancel(waiterId: number, now: number): boolean {
    this.#advance(now);
    const index = this.#waiters.findIndex((waiter) => waiter.id === waiterId);
    if (index === -1) return false;
    this.#waiters.splice(index, 1);
    this.#counters.cancelled++;
    this.#grantHead();
    return true;
  }

  /**
   * Returns a lease's permits and grants waiters at the head that now fit. Idempotent: a lease
   * that is not held (released already, reclaimed, or never granted) changes nothing, is
   * counted in `unknownReleases`, and gives `false`.
   */
  release(leaseId: string, now: number): boolean {
    this.#advance(now);
    const lease = this.#leases.get(leaseId);
    if (lease === undefined) {
      this.#counters.unknownReleases++;
      return false;
    }
    this.#leases.delete(leaseId);
    this.#inUse -= lease.weight;
    this.#counters.released++;
    this.#counters.releasedWeight += lease.weight;
    this.#grantHead();
    return true;
  }

  /**
   * Moves a held lease's expiry to `now + ttlMs` and returns it; `undefined` (counted in
   * `unknownRenewals`) when the lease is not held, e.g. it expired first.
   */
  renew(leaseId: string, ttlMs: number, now: number): Lease | undefined {
    if (!(ttlMs > 0)) {
      throw new RangeError(
        `Cannot renew as 'ttlMs' must be a positive number of ms: current value is ${ttlMs}`,
      );
    }
    this.#advance(now);
    const lease = this.#leases.get(leaseId);
    if (lease === undefined) {
      this.#counters.unknownRenewals++;
      return undefined;
    }
    const renewed = { ...lease, expiresAt: this.#now + ttlMs };
    this.#leases.set(leaseId, renewed);
    if (renewed.expiresAt < this.#expiryBound) this.#expiryBound = renewed.expiresAt;
    return renewed;
  }

  /** Applies the passage of time: reclaims expired leases, times out late waiters, grants. */
  advance(now: number): void {
    this.#advance(now);
  }

  /**
   * The next time something happens by itself (a lease expires or a waiter times out), or
   * `Infinity`: when to set the alarm or timer.
   */
  nextWakeAt(): number {
    let next = Infinity;
    if (this.#expiryBound !== Infinity) {
      for (const lease of this.#leases.values()) next = Math.min(next, lease.expiresAt);
    }
    if (this.#deadlineBound !== Infinity) {
      for (const waiter of this.#waiters) next = Math.min(next, waiter.deadline);
    }
    return next;
  }

  /**
   * A time at or before {@linkcode PermitLedger.nextWakeAt}, read without looking at each lease
   * and waiter: a timer set by it may wake early, find nothing due and be set again, which costs
   * less than a scan per grant under a long queue.
   *
   * @example
   * ```ts
   * import { PermitLedger } from "./permit_ledger.ts";
   * const ledger = new PermitLedger({ capacity: 1 });
   * ledger.acquire({ holder: "a", weight: 1, ttlMs: 100 }, 0);
   * ledger.wakeBound(); // 100
   * ```
   */
  wakeBound(): number {
    return Math.min(this.#expiryBound, this.#deadlineBound);
  }

  /** The events since the last call, oldest first; the ledger forgets them. */
  takeEvents(): LedgerEvent[] {
    const events = this.#events;
    this.#events = [];
    return events;
  }

  /** A snapshot for reports. */
  stats(): LedgerStats {
    return {
      capacity: this.#capacity,
      inUse: this.#inUse,
      available: Math.max(0, this.#capacity - this.#inUse),
      leases: this.#leases.size,
      waiting: this.#waiters.length,
      maxWaiters: this.#maxWaiters,
      counters: this.counters,
    };
  }

  /** The state to persist; see {@linkcode LedgerState}. */
  toState(): LedgerState {
    return {
      version: 1,
      capacity: this.#capacity,
      maxWaiters: this.#maxWaiters,
      sequence: this.#sequence,
      now: Number.isFinite(this.#now) ? this.#now : 0,
      leases: this.leases().map((lease) => ({
        ...lease,
        expiresAt: Number.isFinite(lease.expiresAt) ? lease.expiresAt : null,
      })),
      counters: this.counters,
    };
  }

  #advance(now: number): void {
    if (Number.isNaN(now)) {
      throw new RangeError("Cannot use the ledger as 'now' must be a time: current value is NaN");
    }
    // A clock that steps back (another machine after a restart) must not revive a lease.
    if (now > this.#now) this.#now = now;
    now = this.#now;
    let freed = false;
    if (now >= this.#expiryBound) {
      let bound = Infinity;
      for (const lease of this.#leases.values()) {
        if (lease.expiresAt > now) {
          if (lease.expiresAt < bound) bound = lease.expiresAt;
          continue;
        }
        this.#leases.delete(lease.id);
        this.#inUse -= lease.weight;
        this.#counters.reclaimed++;
        this.#counters.reclaimedWeight += lease.weight;
        this.#events.push({ type: "expired", lease });
        freed = true;
      }
      this.#expiryBound = bound;
    }
    const before = this.#waiters.length;
    if (now >= this.#deadlineBound) {
      let bound = Infinity;
      this.#waiters = this.#waiters.filter((waiter) => {
        if (waiter.deadline > now) {
          if (waiter.deadline < bound) bound = waiter.deadline;
          return true;
        }
        this.#counters.timedOut++;
        this.#events.push({ type: "timedOut", waiterId: waiter.id });
        return false;
      });
      this.#deadlineBound = bound;
    }
    if (freed || this.#waiters.length !== before) this.#grantHead();
  }

  #grantHead(): void {
    while (this.#waiters.length > 0) {
      const head = this.#waiters[0];
      if (this.#inUse + head.weight > this.#capacity) return;
      this.#waiters.shift();
      const lease = this.#grant(head.holder, head.weight, head.ttlMs);
      this.#events.push({ type: "granted", waiterId: head.id, lease });
    }
  }

  #grant(holder: string, weight: number, ttlMs: number): Lease {
    const suffix = this.#leaseIdSuffix === undefined ? "" : `-${this.#leaseIdSuffix()}`;
    const id = `l-${++this.#sequence}${suffix}`;
    const lease = { id, holder, weight, expiresAt: this.#now + ttlMs };
    this.#leases.set(id, lease);
    if (lease.expiresAt < this.#expiryBound) this.#expiryBound = lease.expiresAt;
    this.#inUse += weight;
    this.#counters.granted++;
    this.#counters.grantedWeight += weight;
    return lease;
  }
}

/** A lease id as the ledger hands them out: `l-<n>`, or `l-<n>-<suffix>`. */
const LEASE_ID = /^l-\d{1,15}(?:-.*)?$/s;

function checkCount(field: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(
      `Cannot create a permit ledger as '${field}' must be an integer of at least ${min}: current value is ${value}`,
    );
  }
}
