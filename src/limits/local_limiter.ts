/**
 * `LocalLimiter`: the global ceiling of one process — a {@linkcode PermitLedger} in this
 * isolate behind the {@linkcode Limiter} contract. Fits a single Deno or Bun instance, and tests.
 *
 * @module
 */
import { LedgerHost } from "./ledger_host.ts";
import { type Limiter, type LimiterAcquireOptions, type Permit, permitOf } from "./limiter.ts";
import { DEFAULT_MAX_WAITERS, type LedgerStats, PermitLedger } from "./permit_ledger.ts";
import { ServiceLimiter } from "./service_limiter.ts";

/** Holder of the leases of a local limiter's acquires, as the ledger's stats show it. */
const HOLDER = "local";

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

/**
 * A weighted FIFO limiter in this isolate with a bounded queue and deadlines. Its permits never
 * expire: a holder in the same process cannot vanish without the limiter vanishing too.
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
export class LocalLimiter extends ServiceLimiter implements Limiter {
  #host: LedgerHost;

  /** A limiter of `capacity` permits. */
  constructor({ capacity, maxWaiters = DEFAULT_MAX_WAITERS, retryAfterMs }: LocalLimiterOptions) {
    const host = new LedgerHost(new PermitLedger({ capacity, maxWaiters }), {
      clock: () => performance.now(),
      retryAfterMs,
    });
    super(host, { holder: HOLDER, ttlMs: Infinity });
    this.#host = host;
  }

  /**
   * Resolves with `weight` permits. A grant that fits now, with nobody queued before it, is
   * taken from the ledger at once; only a caller that must wait goes through the queue, its
   * deadline and its signal.
   *
   * @example
   * ```ts
   * import { LocalLimiter } from "./local_limiter.ts";
   * const limiter = new LocalLimiter({ capacity: 2 });
   * const permit = await limiter.acquire(1, { deadline: performance.now() + 100 });
   * await permit.release();
   * ```
   */
  override acquire(weight = 1, options: LimiterAcquireOptions = {}): Promise<Permit> {
    // The queued path costs an async call, an abortable race and a promise per step; the gateway
    // takes a permit per branch, and in the common case one is free (bench:overhead).
    if (Number.isSafeInteger(weight) && weight >= 1 && options.signal?.aborted !== true) {
      const lease = this.#host.tryAcquire(HOLDER, weight, Infinity);
      if (lease !== undefined) {
        const id = lease.id;
        return Promise.resolve(permitOf(weight, () => void this.#host.releaseNow(id)));
      }
    }
    return super.acquire(weight, options);
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
  tryAcquire(): { release(): void } | undefined {
    const lease = this.#host.tryAcquire(HOLDER, 1, Infinity);
    if (lease === undefined) return undefined;
    const host = this.#host;
    const id = lease.id;
    let held = true;
    return {
      release() {
        if (held) (held = false, host.releaseNow(id));
      },
    };
  }

  /** Permits in use, waiters and running totals. */
  stats(): Promise<LedgerStats> {
    return this.#host.stats();
  }
}
