/**
 * `ServiceLimiter`: the {@linkcode Limiter} over any {@linkcode PermitService} — one service call
 * per acquire and one per release. Over a Durable Object's RPC stub or its HTTP API it is the
 * plain global ceiling; `BlockLeasingLimiter` is the same ceiling at a fraction of the calls.
 *
 * @module
 */
import { abortable } from "../executor/mod.ts";
import {
  AdmissionRejectedError,
  type Limiter,
  type LimiterAcquireOptions,
  type Permit,
  PermitDeadlineError,
  permitOf,
} from "./limiter.ts";
import type { AcquireReply, PermitService } from "./permit_service.ts";

/**
 * Options of {@linkcode ServiceLimiter}.
 *
 * @example
 * ```ts
 * import type { ServiceLimiterOptions } from "./service_limiter.ts";
 * const options: ServiceLimiterOptions = { holder: "deno-1", ttlMs: 30_000 };
 * ```
 */
export interface ServiceLimiterOptions {
  /** Who holds the leases, as the service reports it; `"anonymous"` by default. */
  holder?: string;
  /**
   * Lease lifetime in ms; 30 s by default. A permit is never renewed, so this must outlast the
   * longest hold (the gateway's budget is at most 10 s); a holder that vanishes gets its
   * permits reclaimed this long after the grant.
   */
  ttlMs?: number;
}

/**
 * A limiter whose every permit is a lease of a permit service. A grant that arrives after the
 * caller gave up (its signal aborted) is released at once.
 *
 * @example
 * ```ts
 * import { LedgerHost } from "./ledger_host.ts";
 * import { PermitLedger } from "./permit_ledger.ts";
 * import { ServiceLimiter } from "./service_limiter.ts";
 *
 * const limiter = new ServiceLimiter(new LedgerHost(new PermitLedger({ capacity: 8 })));
 * await using _permit = await limiter.acquire(1, { deadline: performance.now() + 50 });
 * ```
 */
export class ServiceLimiter implements Limiter {
  #service: PermitService;
  #holder: string;
  #ttlMs: number;

  /** Leases permits from `service`. */
  constructor(
    service: PermitService,
    { holder = "anonymous", ttlMs = 30_000 }: ServiceLimiterOptions = {},
  ) {
    if (!(ttlMs > 0)) {
      throw new RangeError(
        `Cannot create a service limiter as 'ttlMs' must be a positive number of ms: current value is ${ttlMs}`,
      );
    }
    this.#service = service;
    this.#holder = holder;
    this.#ttlMs = ttlMs;
  }

  /** Resolves with `weight` permits leased from the service. */
  acquire(weight = 1, { signal, deadline }: LimiterAcquireOptions = {}): Promise<Permit> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const waitMs = deadline === undefined ? undefined : Math.max(0, deadline - performance.now());
    const asked = this.#service.acquire(
      { holder: this.#holder, weight, ttlMs: this.#ttlMs, waitMs },
      signal,
    );
    // A service that rejects on abort itself (a `LedgerHost` here) needs no race of ours.
    const reply = signal === undefined || this.#service.settlesOnAbort === true
      ? asked
      : abortable(asked, signal, (late) => this.#releaseLate(late));
    // Not async: one promise step fewer per acquire than an await of the reply.
    return reply.then((answer) => this.#permitFor(answer, weight, waitMs));
  }

  #permitFor(reply: AcquireReply, weight: number, waitMs: number | undefined): Permit {
    if (reply.granted) {
      const { id } = reply.lease;
      return permitOf(weight, async () => void await this.#service.release(id));
    }
    if (reply.reason === "queue full") {
      throw new AdmissionRejectedError(reply.waiting, reply.retryAfterMs);
    }
    throw new PermitDeadlineError(waitMs ?? 0);
  }

  #releaseLate(reply: AcquireReply): Promise<unknown> | undefined {
    return reply.granted ? this.#service.release(reply.lease.id) : undefined;
  }
}
