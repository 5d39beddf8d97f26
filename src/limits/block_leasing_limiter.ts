/**
 * `BlockLeasingLimiter`: the global ceiling at a fraction of the calls. It leases blocks of
 * permits from a {@linkcode PermitService} (the Durable Object) following a
 * {@linkcode BlockPool}, and sub-grants them to local acquires in FIFO order.
 *
 * @module
 */
import { BlockPool, type BlockPoolOptions, type BlockPoolStats } from "./block_pool.ts";
import {
  AdmissionRejectedError,
  type Limiter,
  type LimiterAcquireOptions,
  type Permit,
  PermitDeadlineError,
  permitOf,
} from "./limiter.ts";
import { DEFAULT_MAX_WAITERS } from "./permit_ledger.ts";
import type { PermitService } from "./permit_service.ts";

/**
 * Options of {@linkcode BlockLeasingLimiter}: those of the pool plus the local queue's.
 *
 * @example
 * ```ts
 * import type { BlockLeasingOptions } from "./block_leasing_limiter.ts";
 * const options: BlockLeasingOptions = { blockSize: 8, ttlMs: 30_000, holder: "isolate-1" };
 * ```
 */
export interface BlockLeasingOptions extends BlockPoolOptions {
  /** Who holds the blocks, as the service reports it; `"anonymous"` by default. */
  holder?: string;
  /** Most local acquires queued; one more is rejected at once. 1024 by default. */
  maxWaiters?: number;
  /** What a caller turned away by the local queue is told to wait, in ms; 1000 by default. */
  retryAfterMs?: number;
  /** Longest a block request waits in the service's queue when no waiter has a deadline; 1000 ms. */
  maxBlockWaitMs?: number;
  /**
   * How long the isolate keeps its blocks once nothing is in use or waiting, in ms; 100 by
   * default. Then it gives them all back, so a quiet isolate does not sit on capacity that a
   * busy one is queueing for. 0 gives them back at once, with no timer: use it on Workers,
   * where a timer set while serving a request may never fire after the response (unless it
   * is handed to `keepAlive`).
   */
  lingerMs?: number;
  /**
   * Called with every call to the service and every linger wait the limiter starts, so that a
   * host that drops a request's pending work once it has answered lets them finish. On Workers
   * pass `waitUntil` from `cloudflare:workers`: without it, a block request started while
   * serving a request that then answers is cancelled, never counted back (so the pool stops
   * asking for blocks), and its lease, if granted, stays lost until its TTL.
   */
  keepAlive?: (work: Promise<unknown>) => void;
  /**
   * When set, a queued acquire is settled only from its caller's own turns: a grant (or a
   * failure) that comes from anyone else's release, block or deadline is only recorded on it,
   * and a timer of its own, every `handOffMs` ms, takes it up. Unset (the default), the grant
   * settles it at once. Set it on Workers (1 ms is enough): there, a waiter settled from
   * another request's turn was seen resuming in that request's context, where reading its own
   * `AbortSignal` throws "Cannot perform I/O on behalf of a different request"; and a request
   * whose only pending work is a promise that another request settles is cancelled as hung,
   * with the permits granted to it. The timer is that pending work. A grant not taken up
   * within `maxHandOffMs` (1000 by default) goes back to the pool.
   */
  handOffMs?: number;
  /** How long a recorded grant waits to be taken up before it goes back; 1000 ms by default. */
  maxHandOffMs?: number;
}

/**
 * A snapshot of a {@linkcode BlockLeasingLimiter}: its pool plus its local queue and how many
 * calls it made to the service.
 *
 * @example
 * ```ts
 * import type { BlockLeasingStats } from "./block_leasing_limiter.ts";
 * const seen = (stats: BlockLeasingStats) => stats.serviceCalls;
 * ```
 */
export interface BlockLeasingStats extends BlockPoolStats {
  /** Local acquires waiting. */
  waiting: number;
  /** Calls made to the service so far (acquire, renew, release). */
  serviceCalls: number;
}

interface Waiter {
  weight: number;
  deadline: number;
  allowedMs: number;
  grant(permit: Permit): void;
  fail(error: unknown): void;
}

/** A grant recorded on a waiter that takes it up in its own turn (`handOffMs`). */
interface HandOff {
  /** When it was granted, in `performance.now()` time. */
  at: number;
  /** Gives the permit back and fails the waiter, if it has not taken the permit up yet. */
  reclaim(): void;
}

/**
 * A {@linkcode Limiter} that holds blocks leased from a permit service and hands out their
 * permits locally. Calls to the service happen only to fetch a block when the local ones are
 * used up, to renew blocks in use every half TTL, and to return blocks beyond demand plus
 * `spareBlocks`; an idle isolate lets its blocks lapse. When the service cannot be reached it
 * runs on `safeShare` permits until a call succeeds again.
 *
 * Trade-off: a block held but unused is capacity no other isolate can have, so utilisation
 * falls by up to `(spareBlocks + 1) × blockSize` permits per isolate, in exchange for service
 * calls per request falling by about the number of permits a block serves before it lapses.
 * Call `close()` to give every block back (tests, graceful shutdown).
 *
 * @example
 * ```ts
 * import { BlockLeasingLimiter } from "./block_leasing_limiter.ts";
 * import { LedgerHost } from "./ledger_host.ts";
 * import { PermitLedger } from "./permit_ledger.ts";
 *
 * const global = new LedgerHost(new PermitLedger({ capacity: 64 }));
 * const limiter = new BlockLeasingLimiter(global, { blockSize: 8, ttlMs: 30_000 });
 * const permit = await limiter.acquire(1);
 * await permit.release(); // local: the block stays for the next acquire
 * await limiter.close();
 * ```
 */
export class BlockLeasingLimiter implements Limiter {
  #service: PermitService;
  #pool: BlockPool;
  #holder: string;
  #maxWaiters: number;
  #retryAfterMs: number;
  #maxBlockWaitMs: number;
  #queue: Waiter[] = [];
  #calls = new Set<Promise<void>>();
  #serviceCalls = 0;
  #lingerMs: number;
  #keepAlive: ((work: Promise<unknown>) => void) | undefined;
  #handOffMs: number | undefined;
  #maxHandOffMs: number;
  /** Grants recorded on waiters and not yet taken up (with `handOffMs`). */
  #handOffs = new Set<HandOff>();
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #idleEnded: (() => void) | undefined;
  #idleSince: number | undefined;

  /** Leases blocks from `service`. */
  constructor(
    service: PermitService,
    {
      holder = "anonymous",
      maxWaiters = DEFAULT_MAX_WAITERS,
      retryAfterMs = 1000,
      maxBlockWaitMs = 1000,
      lingerMs = 100,
      keepAlive,
      handOffMs,
      maxHandOffMs = 1000,
      ...pool
    }: BlockLeasingOptions,
  ) {
    this.#pool = new BlockPool(pool);
    this.#service = service;
    this.#holder = holder;
    this.#maxWaiters = maxWaiters;
    this.#retryAfterMs = retryAfterMs;
    this.#maxBlockWaitMs = maxBlockWaitMs;
    this.#lingerMs = lingerMs;
    this.#keepAlive = keepAlive;
    for (
      const [field, value] of [["handOffMs", handOffMs], ["maxHandOffMs", maxHandOffMs]] as const
    ) {
      if (value !== undefined && !(value >= 0 && Number.isFinite(value))) {
        throw new RangeError(
          `Cannot create a block-leasing limiter as '${field}' must be a finite number of ms of at least 0: current value is ${value}`,
        );
      }
    }
    this.#handOffMs = handOffMs;
    this.#maxHandOffMs = maxHandOffMs;
  }

  /** Resolves with `weight` permits (at most one block's worth) from the local blocks. */
  acquire(
    weight = 1,
    { signal, deadline = Infinity }: LimiterAcquireOptions = {},
  ): Promise<Permit> {
    const blockSize = this.#pool.blockSize;
    if (!Number.isSafeInteger(weight) || weight < 1 || weight > blockSize) {
      return Promise.reject(
        new RangeError(
          `Cannot acquire as 'weight' must be an integer from 1 to the block size ${blockSize}: current value is ${weight}`,
        ),
      );
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    const now = performance.now();
    if (this.#queue.length === 0 && this.#pool.take(weight, now)) {
      return Promise.resolve(this.#permit(weight));
    }
    if (deadline <= now) return Promise.reject(new PermitDeadlineError(0));
    if (this.#queue.length >= this.#maxWaiters) {
      return Promise.reject(new AdmissionRejectedError(this.#queue.length, this.#retryAfterMs));
    }
    if (this.#handOffMs !== undefined) {
      return this.#waitInOwnTurns(weight, signal, deadline, now, this.#handOffMs);
    }
    return new Promise<Permit>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const onAbort = () => {
        waiter.fail(signal!.reason);
        // The head may have been all that held back smaller waiters.
        this.#pump();
      };
      const waiter: Waiter = {
        weight,
        deadline,
        allowedMs: deadline - now,
        grant: (permit) => (done(), resolve(permit)),
        fail: (error) => (done(), reject(error)),
      };
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.#leave(waiter);
      };
      if (deadline !== Infinity) {
        timer = setTimeout(() => {
          waiter.fail(new PermitDeadlineError(waiter.allowedMs));
          // The head may have been all that held back smaller waiters.
          this.#pump();
        }, deadline - now);
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#queue.push(waiter);
      this.#pump();
    });
  }

  /**
   * Queues an acquire that only its caller's own turns settle: this call, its own timer
   * (every `handOffMs`, and at its deadline) and its own signal. Whoever grants or fails it
   * meanwhile only records that on it.
   */
  #waitInOwnTurns(
    weight: number,
    signal: AbortSignal | undefined,
    deadline: number,
    now: number,
    handOffMs: number,
  ): Promise<Permit> {
    return new Promise<Permit>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      let outcome: { permit: Permit; handOff: HandOff } | { error: unknown } | undefined;
      const waiter: Waiter = {
        weight,
        deadline,
        allowedMs: deadline - now,
        grant: (permit) => {
          this.#leave(waiter);
          const handOff: HandOff = {
            at: performance.now(),
            reclaim: () => {
              this.#handOffs.delete(handOff);
              if (outcome === undefined || !("permit" in outcome)) return;
              outcome = { error: new PermitDeadlineError(waiter.allowedMs) };
              // Back without a pump: the caller pumps (or is pumping) next.
              this.#pool.give(weight);
            },
          };
          this.#handOffs.add(handOff);
          outcome = { permit, handOff };
        },
        fail: (error) => {
          this.#leave(waiter);
          outcome ??= { error };
        },
      };
      const onAbort = () => {
        if (outcome !== undefined && "permit" in outcome) outcome.handOff.reclaim();
        outcome = { error: signal!.reason };
        this.#leave(waiter);
        // The head may have been all that held back smaller waiters.
        this.#pump();
        takeUp();
      };
      const takeUp = () => {
        clearTimeout(timer);
        if (outcome === undefined && performance.now() >= deadline) {
          waiter.fail(new PermitDeadlineError(waiter.allowedMs));
          // The head may have been all that held back smaller waiters.
          this.#pump();
        }
        if (outcome === undefined) {
          const untilDeadline = Math.max(0, deadline - performance.now());
          timer = setTimeout(takeUp, Math.min(handOffMs, untilDeadline));
          return;
        }
        signal?.removeEventListener("abort", onAbort);
        if ("permit" in outcome) {
          this.#handOffs.delete(outcome.handOff);
          resolve(outcome.permit);
        } else reject(outcome.error);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#queue.push(waiter);
      this.#pump();
      takeUp();
    });
  }

  #leave(waiter: Waiter): void {
    const index = this.#queue.indexOf(waiter);
    if (index !== -1) this.#queue.splice(index, 1);
  }

  /** The pool, the local queue and the calls made so far. */
  stats(): BlockLeasingStats {
    return {
      ...this.#pool.stats(performance.now()),
      waiting: this.#queue.length,
      serviceCalls: this.#serviceCalls,
    };
  }

  /** Waits for calls in flight, then gives every block back. Local permits still held stay valid until their blocks' TTL. */
  async close(): Promise<void> {
    while (this.#calls.size > 0) await Promise.allSettled([...this.#calls]);
    // After the calls: one that ends may have found the pool idle and armed the timer.
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    this.#idleEnded?.();
    this.#idleSince = undefined;
    await Promise.allSettled(
      this.#pool.drain().map((id) => this.#call(() => this.#service.release(id))),
    );
  }

  #permit(weight: number): Permit {
    return permitOf(weight, () => {
      this.#pool.give(weight);
      this.#pump();
    });
  }

  /** Grants what fits, then asks the service for what the pool says: blocks, renewals, returns. */
  #pump(): void {
    const now = performance.now();
    // A waiter past its deadline whose timer has not run yet (the event loop is busy) leaves
    // now: a block asked for on its behalf would wait 0 ms, be refused at once, and be asked
    // for again, round after round of microtasks, starving the very timers that would end it.
    for (const waiter of [...this.#queue]) {
      if (waiter.deadline <= now) waiter.fail(new PermitDeadlineError(waiter.allowedMs));
    }
    // A grant its waiter never took up (its request was cancelled) would hold permits for ever.
    for (const handOff of this.#handOffs) {
      if (now - handOff.at >= this.#maxHandOffMs) handOff.reclaim();
    }
    while (this.#queue.length > 0 && this.#pool.take(this.#queue[0].weight, now)) {
      this.#queue[0].grant(this.#permit(this.#queue[0].weight));
    }
    const demand = this.#queue.reduce((sum, waiter) => sum + waiter.weight, 0);
    for (const weight of this.#pool.requests(demand, now)) this.#track(this.#requestBlock(weight));
    for (const id of this.#pool.dueForRenewal(demand, now)) this.#track(this.#renew(id));
    for (const id of this.#pool.surplus(demand, now)) this.#giveBack(id);
    this.#watchIdle(demand);
  }

  /**
   * Gives every block back once the isolate has been idle for `lingerMs`. Activity does not
   * clear the timer (on Workers it may have been set in another request, whose timers another
   * request cannot clear): the timer looks again when it fires.
   */
  #watchIdle(demand: number): void {
    const idle = demand === 0 && this.#pool.inUse === 0 && this.#pool.blocks > 0;
    if (!idle) {
      this.#idleSince = undefined;
    } else if (this.#lingerMs === 0) {
      // No timer: on Workers a timer set by a request may never fire once it has answered.
      for (const id of this.#pool.drain()) this.#giveBack(id);
    } else {
      this.#idleSince ??= performance.now();
      if (this.#idleTimer === undefined) this.#armIdle(this.#lingerMs);
    }
  }

  #armIdle(ms: number): void {
    const ended = new Promise<void>((resolve) => this.#idleEnded = resolve);
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      this.#idleEnded?.();
      const idleSince = this.#idleSince;
      if (idleSince === undefined || this.#pool.inUse > 0 || this.#queue.length > 0) return;
      const idleForMs = performance.now() - idleSince;
      if (idleForMs < this.#lingerMs) return this.#armIdle(this.#lingerMs - idleForMs);
      this.#idleSince = undefined;
      for (const id of this.#pool.drain()) this.#giveBack(id);
    }, ms);
    this.#keepAlive?.(ended);
  }

  #giveBack(leaseId: string): void {
    this.#track(this.#call(() => this.#service.release(leaseId)).then(() => {}, () => {}));
  }

  async #requestBlock(weight: number): Promise<void> {
    const sentAt = performance.now();
    const headDeadline = this.#queue[0]?.deadline ?? Infinity;
    const waitMs = Math.max(0, Math.min(this.#maxBlockWaitMs, headDeadline - sentAt));
    try {
      const reply = await this.#call(() =>
        this.#service.acquire({ holder: this.#holder, weight, ttlMs: this.#pool.ttlMs, waitMs })
      );
      if (reply.granted) {
        this.#pool.granted(reply.lease, weight, sentAt);
      } else {
        this.#pool.refused(weight);
        if (reply.reason === "queue full") {
          const error = new AdmissionRejectedError(reply.waiting, reply.retryAfterMs);
          for (const waiter of [...this.#queue]) waiter.fail(error);
        }
      }
    } catch {
      this.#pool.unreachable(performance.now(), weight);
    }
    this.#pump();
  }

  async #renew(leaseId: string): Promise<void> {
    const sentAt = performance.now();
    try {
      const lease = await this.#call(() => this.#service.renew(leaseId, this.#pool.ttlMs));
      if (lease === null) this.#pool.lost(leaseId);
      else this.#pool.renewed(leaseId, sentAt);
    } catch {
      this.#pool.renewFailed(leaseId, performance.now());
    }
    this.#pump();
  }

  #call<T>(send: () => Promise<T>): Promise<T> {
    this.#serviceCalls++;
    const call = send();
    // Kept alive without its outcome: the caller handles that.
    this.#keepAlive?.(Promise.resolve(call).catch(() => {}));
    return call;
  }

  #track(call: Promise<void>): void {
    this.#calls.add(call);
    call.finally(() => this.#calls.delete(call));
  }
}
