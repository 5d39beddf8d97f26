/**
 * `LedgerHost`: a {@linkcode PermitLedger} made into a {@linkcode PermitService} — it keeps the
 * promises of queued acquires, delivers the ledger's events to them, and keeps one timer at
 * the ledger's next wake-up while anyone waits. The in-isolate limiter and the Durable Object
 * both run one.
 *
 * @module
 */
import type { Lease, LedgerStats, PermitLedger } from "./permit_ledger.ts";
import type { AcquireReply, PermitRequest, PermitService } from "./permit_service.ts";

/** Longest delay `setTimeout` takes before it fires at once instead. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Options of {@linkcode LedgerHost}.
 *
 * @example
 * ```ts
 * import type { LedgerHostOptions } from "./ledger_host.ts";
 * const options: LedgerHostOptions = { retryAfterMs: 500, onChange: () => {} };
 * ```
 */
export interface LedgerHostOptions {
  /** The ledger's clock in ms; `Date.now` by default (it must survive a restart). */
  clock?: () => number;
  /** What a caller turned away by a full queue is told to wait, in ms; 1000 by default. */
  retryAfterMs?: number;
  /** Called synchronously after every change of the ledger: persist it here. */
  onChange?: (ledger: PermitLedger) => void;
}

/**
 * A permit service over a ledger in this isolate. Every call applies the passage of time
 * first, so expired leases are reclaimed even when no alarm or timer ran.
 *
 * @example
 * ```ts
 * import { LedgerHost } from "./ledger_host.ts";
 * import { PermitLedger } from "./permit_ledger.ts";
 *
 * const host = new LedgerHost(new PermitLedger({ capacity: 2 }));
 * const reply = await host.acquire({ holder: "me", weight: 1, ttlMs: 1000, waitMs: 50 });
 * if (reply.granted) await host.release(reply.lease.id);
 * ```
 */
export class LedgerHost implements PermitService {
  /** Its `acquire` rejects as soon as the signal aborts (the waiter leaves the queue). */
  readonly settlesOnAbort = true;
  #ledger: PermitLedger;
  #clock: () => number;
  #retryAfterMs: number;
  #onChange: (ledger: PermitLedger) => void;
  #waiters = new Map<number, (reply: AcquireReply) => void>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;

  /** Hosts `ledger`; the host owns it from now on. */
  constructor(
    ledger: PermitLedger,
    { clock = Date.now, retryAfterMs = 1000, onChange = () => {} }: LedgerHostOptions = {},
  ) {
    this.#ledger = ledger;
    this.#clock = clock;
    this.#retryAfterMs = retryAfterMs;
    this.#onChange = onChange;
  }

  /** The hosted ledger, to read; change it only through the host. */
  get ledger(): PermitLedger {
    return this.#ledger;
  }

  /**
   * Grants now, queues, or turns away. Rejects with a `RangeError`/`TypeError` for a bad
   * request, and with `signal.reason` when `signal` aborts while queued (the waiter leaves).
   */
  acquire(request: PermitRequest, signal?: AbortSignal): Promise<AcquireReply> {
    let outcome;
    try {
      signal?.throwIfAborted();
      const now = this.#clock();
      const { holder, weight, ttlMs, waitMs } = request;
      const deadline = waitMs === undefined ? undefined : now + Math.max(0, waitMs);
      outcome = this.#ledger.acquire({ holder, weight, ttlMs, deadline }, now);
    } catch (error) {
      return Promise.reject(error);
    }
    switch (outcome.kind) {
      case "granted":
        this.#settle();
        return Promise.resolve({ granted: true, lease: outcome.lease });
      case "rejected":
        this.#settle();
        return Promise.resolve({
          granted: false,
          reason: "queue full",
          waiting: outcome.waiting,
          retryAfterMs: this.#retryAfterMs,
        });
      case "timedOut":
        this.#settle();
        return Promise.resolve({ granted: false, reason: "deadline" });
    }
    const { waiterId } = outcome;
    const reply = new Promise<AcquireReply>((resolve, reject) => {
      if (signal === undefined) {
        this.#waiters.set(waiterId, resolve);
        return;
      }
      const onAbort = () => {
        this.#waiters.delete(waiterId);
        this.#ledger.cancel(waiterId, this.#clock());
        this.#settle();
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiters.set(waiterId, (reply) => {
        signal.removeEventListener("abort", onAbort);
        resolve(reply);
      });
    });
    this.#settle();
    return reply;
  }

  /** Returns a lease; `false` when it was not held. */
  release(leaseId: string): Promise<boolean> {
    return this.#run(() => this.#ledger.release(leaseId, this.#clock()));
  }

  /** Extends a held lease; `null` when it is not held any more. */
  renew(leaseId: string, ttlMs: number): Promise<Lease | null> {
    return this.#run(() => this.#ledger.renew(leaseId, ttlMs, this.#clock()) ?? null);
  }

  /** The ledger's snapshot, after applying the passage of time. */
  stats(): Promise<LedgerStats> {
    return this.#run(() => {
      this.#ledger.advance(this.#clock());
      return this.#ledger.stats();
    });
  }

  /** Applies the passage of time now (from an alarm, say). */
  advance(): void {
    this.#ledger.advance(this.#clock());
    this.#settle();
  }

  #run<T>(change: () => T): Promise<T> {
    try {
      const result = change();
      this.#settle();
      return Promise.resolve(result);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Delivers events, persists, and keeps the timer at the next wake-up while anyone waits. */
  #settle(): void {
    // Releasing a grant nobody waits for any more may grant others: loop until quiet.
    for (let events = this.#ledger.takeEvents(); events.length > 0;) {
      for (const event of events) {
        if (event.type === "expired") continue;
        const deliver = this.#waiters.get(event.waiterId);
        this.#waiters.delete(event.waiterId);
        const reply: AcquireReply = event.type === "granted"
          ? { granted: true, lease: event.lease }
          : { granted: false, reason: "deadline" };
        if (deliver !== undefined) deliver(reply);
        else if (event.type === "granted") this.#ledger.release(event.lease.id, this.#clock());
      }
      events = this.#ledger.takeEvents();
    }
    this.#onChange(this.#ledger);
    const wakeAt = this.#waiters.size === 0 ? Infinity : this.#ledger.wakeBound();
    // A timer due earlier stays: it wakes, finds nothing due and re-arms, which costs less than
    // moving it on every grant (each grant changes the head waiter, and with it the wake-up).
    if (wakeAt === this.#timerAt || (wakeAt !== Infinity && wakeAt > this.#timerAt)) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = wakeAt;
    if (wakeAt === Infinity) return;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, wakeAt - this.#clock()));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.advance();
    }, delay);
  }
}
