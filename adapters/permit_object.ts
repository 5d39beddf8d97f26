/**
 * `PermitObject`: the Durable Object that is fanfare's global concurrency ceiling. A thin shell
 * over `LedgerHost` and `PermitLedger` (src/): it loads the ledger in `blockConcurrencyWhile`,
 * writes it to storage after every change, keeps an alarm at the next lease expiry, and serves
 * the `PermitService` calls as RPC methods and as an HTTP API routed with itty-router.
 *
 * Persistence: every change is written with `storage.put` in the same synchronous turn as the
 * change (no await in between), and the runtime's output gate holds the reply until the write
 * is durable. A grant whose write did not land was never seen by its caller, so a restart can
 * neither lose a lease nor grant its permits twice. Waiters are not stored: a waiter is a live
 * call, and it fails with the object.
 *
 * Expiry: the alarm reclaims expired leases (idempotent: it only applies the passage of time),
 * and every call applies it first anyway, because an alarm can be late, retried, or lost with
 * a restart of the local runtime.
 *
 * HTTP API (under `/limiter/`, JSON bodies, `authorization: Bearer <LIMITER_SECRET>`):
 * `POST acquire {holder, weight, ttlMs, waitMs?}`, `POST release {leaseId, holder}`,
 * `POST renew {leaseId, holder, ttlMs}`, `GET stats`. Without the secret, or with a wrong one:
 * 401 on the header alone (the body is never read) and nothing changes. A body holds at most
 * {@linkcode MAX_BODY_BYTES} (else 413); a bad body is a 400 naming each field
 * (`_permit_http_api.ts`). Lease ids carry 128 random bits, and only the holder named at acquire may release or
 * renew one. No acquire waits longer than `LIMITER_MAX_WAIT_MS` (RPC or HTTP, with or without
 * `waitMs`), and an HTTP waiter leaves the queue when its caller disconnects.
 *
 * @example
 * ```toml
 * [[durable_objects.bindings]]
 * name = "LIMITER"
 * class_name = "PermitObject"
 * ```
 *
 * @module
 */
// @ts-types="./_cloudflare_workers.ts"
import { DurableObject } from "cloudflare:workers";

/**
 * The object's state as the base class takes it. Read off the base class rather than named, so
 * that this file checks both against the local declaration and against the full Workers types
 * (which miniflare's types bring into a program that also checks the tests).
 */
type DurableObjectState = ConstructorParameters<typeof DurableObject>[0];
import { boundedWait, LIMITER_PATH, MAX_BODY_BYTES, permitHttpApi } from "./_permit_http_api.ts";
import {
  type AcquireReply,
  AUTHORIZATION_HEADER,
  type Lease,
  LedgerHost,
  type LedgerState,
  type LedgerStats,
  PermitLedger,
  type PermitRequest,
  type PermitService,
} from "../src/limits/mod.ts";

/** Storage key of the ledger's state. */
const STATE_KEY = "ledger";
export { LIMITER_PATH, MAX_BODY_BYTES };

/**
 * Bindings the object reads.
 *
 * @example
 * ```toml
 * [vars]
 * LIMITER_CAPACITY = "64"
 * ```
 */
export interface PermitObjectEnv {
  /** Permits in all (a positive integer); 64 when unset. */
  LIMITER_CAPACITY?: string;
  /** Most acquires queued in the object; 1024 when unset. */
  LIMITER_MAX_WAITERS?: string;
  /** Shared secret of the HTTP API; without it the HTTP API answers 401 to everyone. */
  LIMITER_SECRET?: string;
  /** Longest any acquire waits in the queue, in ms, whatever it asks; 10000 when unset. */
  LIMITER_MAX_WAIT_MS?: string;
}

/**
 * What the object's `stats` answers: the ledger's snapshot plus the alarm's work since this
 * instance started (`runs`, leases `reclaimed`).
 *
 * @example
 * ```ts
 * import type { PermitObjectStats } from "./permit_object.ts";
 * const reclaimedByAlarm = (stats: PermitObjectStats) => stats.alarm.reclaimed;
 * ```
 */
export interface PermitObjectStats extends LedgerStats {
  alarm: { runs: number; reclaimed: number };
}

/**
 * The global permit ledger as a Durable Object. Reach it by RPC on its stub (`acquire`,
 * `release`, `renew`, `stats`) or over HTTP through its `fetch`.
 *
 * @example
 * ```ts ignore
 * const stub = env.LIMITER.get(env.LIMITER.idFromName("global"));
 * const reply = await stub.acquire({ holder: "isolate-1", weight: 8, ttlMs: 30_000, waitMs: 100 });
 * ```
 */
export class PermitObject extends DurableObject<PermitObjectEnv> implements PermitService {
  #host: LedgerHost | undefined;
  #maxWaitMs: number;
  #alarmAt = Infinity;
  #alarmRuns = { runs: 0, reclaimed: 0 };
  #api = permitHttpApi(() => this.#ledger(), {
    authenticated: (request) => this.#authenticated(request),
    maxWaitMs: () => this.#maxWaitMs,
    stats: () => this.stats(),
  });

  /** Loads the ledger before the first call is let in. */
  constructor(ctx: DurableObjectState, env: PermitObjectEnv) {
    super(ctx, env);
    this.#maxWaitMs = positiveInteger("LIMITER_MAX_WAIT_MS", env.LIMITER_MAX_WAIT_MS, 10_000);
    ctx.blockConcurrencyWhile(async () => {
      const capacity = positiveInteger("LIMITER_CAPACITY", env.LIMITER_CAPACITY, 64);
      const maxWaiters = positiveInteger("LIMITER_MAX_WAITERS", env.LIMITER_MAX_WAITERS, 1024);
      const stored = await ctx.storage.get<LedgerState>(STATE_KEY);
      this.#alarmAt = (await ctx.storage.getAlarm()) ?? Infinity;
      const ledger = stored === undefined
        ? new PermitLedger({ capacity, maxWaiters, leaseIdSuffix: randomHex })
        : PermitLedger.fromState(stored, { capacity, leaseIdSuffix: randomHex });
      this.#host = new LedgerHost(ledger, { onChange: (changed) => this.#persist(changed) });
      // Leases that expired while the object was away are reclaimed before anyone asks.
      this.#host.advance();
    });
  }

  /** RPC: grants, queues until granted or `waitMs` ends, or turns away at once. */
  acquire(request: PermitRequest): Promise<AcquireReply> {
    return this.#ledger().acquire(boundedWait(request, this.#maxWaitMs));
  }

  /** RPC: returns a lease; `false` when it was not held. */
  release(leaseId: string): Promise<boolean> {
    return this.#ledger().release(leaseId);
  }

  /** RPC: extends a held lease; `null` when it is not held any more. */
  renew(leaseId: string, ttlMs: number): Promise<Lease | null> {
    return this.#ledger().renew(leaseId, ttlMs);
  }

  /**
   * RPC: the ledger's snapshot as of the last call or alarm (reading it applies no time, so a
   * lease past its expiry shows until the alarm or the next call reclaims it), and what the
   * alarm did since this instance started.
   */
  stats(): Promise<PermitObjectStats> {
    return Promise.resolve({ ...this.#ledger().ledger.stats(), alarm: { ...this.#alarmRuns } });
  }

  /** The HTTP API. */
  override fetch(request: Request): Promise<Response> {
    return this.#api.fetch(request);
  }

  /** Reclaims expired leases; running twice, or late, does no harm. */
  override alarm(): void {
    this.#alarmAt = Infinity;
    const host = this.#ledger();
    const before = host.ledger.counters.reclaimed;
    host.advance();
    this.#alarmRuns.runs++;
    this.#alarmRuns.reclaimed += host.ledger.counters.reclaimed - before;
  }

  /** Whether `request` carries the shared secret. */
  async #authenticated(request: Request): Promise<boolean> {
    const secret = this.env.LIMITER_SECRET;
    const given = request.headers.get(AUTHORIZATION_HEADER)?.match(/^Bearer (.+)$/)?.[1];
    if (!secret || given === undefined) return false;
    return await sameSecret(given, secret);
  }

  #ledger(): LedgerHost {
    if (this.#host === undefined) {
      throw new Error("Cannot use the permit object as its ledger failed to load");
    }
    return this.#host;
  }

  #persist(ledger: PermitLedger): void {
    // No await before the put: the change and its write are one atomic step for the runtime.
    this.ctx.storage.put(STATE_KEY, ledger.toState());
    let next = Infinity;
    for (const lease of ledger.leases()) next = Math.min(next, lease.expiresAt);
    if (next === this.#alarmAt) return;
    this.#alarmAt = next;
    if (next === Infinity) this.ctx.storage.deleteAlarm();
    else this.ctx.storage.setAlarm(next);
  }
}

/** 128 random bits as hex: the unguessable part of a lease id. */
function randomHex(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Compares two secrets in time independent of where they differ: both are hashed first. */
async function sameSecret(given: string, expected: string): Promise<boolean> {
  const digest = async (text: string) =>
    new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  const [a, b] = await Promise.all([digest(given), digest(expected)]);
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i] ^ b[i];
  return difference === 0;
}

function positiveInteger(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 1) {
    throw new RangeError(
      `Cannot start the permit object as '${name}' must be a positive integer: current value is ${
        JSON.stringify(value)
      }`,
    );
  }
  return parsed;
}
