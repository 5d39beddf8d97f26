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
 * `POST acquire {holder, weight, ttlMs, waitMs?}`, `POST release {leaseId}`,
 * `POST renew {leaseId, ttlMs}`, `GET stats`. Without the secret, or with a wrong one: 401 and
 * nothing changes. A bad body: 400 naming each field.
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
import { AutoRouter, error, type IRequest, json } from "itty-router";
import type * as z from "zod/mini";
import {
  type AcquireReply,
  AUTHORIZATION_HEADER,
  type Lease,
  LedgerHost,
  type LedgerState,
  type LedgerStats,
  permitApiSchemas,
  PermitLedger,
  type PermitRequest,
  type PermitService,
} from "../src/limits/mod.ts";

/** Storage key of the ledger's state. */
const STATE_KEY = "ledger";
/** Path prefix of the HTTP API. */
export const LIMITER_PATH = "/limiter";

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
  #alarmAt = Infinity;
  #alarmRuns = { runs: 0, reclaimed: 0 };
  #router = createRouter(this, (request) => this.#authenticated(request));

  /** Loads the ledger before the first call is let in. */
  constructor(ctx: DurableObjectState, env: PermitObjectEnv) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      const capacity = positiveInteger("LIMITER_CAPACITY", env.LIMITER_CAPACITY, 64);
      const maxWaiters = positiveInteger("LIMITER_MAX_WAITERS", env.LIMITER_MAX_WAITERS, 1024);
      const stored = await ctx.storage.get<LedgerState>(STATE_KEY);
      this.#alarmAt = (await ctx.storage.getAlarm()) ?? Infinity;
      const ledger = stored === undefined
        ? new PermitLedger({ capacity, maxWaiters })
        : PermitLedger.fromState(stored, { capacity });
      this.#host = new LedgerHost(ledger, { onChange: (changed) => this.#persist(changed) });
      // Leases that expired while the object was away are reclaimed before anyone asks.
      this.#host.advance();
    });
  }

  /** RPC: grants, queues until granted or `waitMs` ends, or turns away at once. */
  acquire(request: PermitRequest): Promise<AcquireReply> {
    return this.#ledger().acquire(request);
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
    return this.#router.fetch(request);
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

function createRouter(
  object: PermitService,
  authenticated: (request: Request) => Promise<boolean>,
) {
  const withBody = <S extends z.ZodMiniType>(schema: S) => async (request: IRequest) => {
    let body: unknown;
    try {
      body = await request.json();
    } catch {
      return invalid([{ field: "body", message: "must be a JSON object" }]);
    }
    const parsed = schema.safeParse(body);
    if (!parsed.success) {
      return invalid(parsed.error.issues.map((issue) => ({
        field: issue.path.map(String).join(".") || "body",
        message: issue.message,
      })));
    }
    request.content = parsed.data;
  };
  return AutoRouter({
    base: LIMITER_PATH,
    before: [async function authenticate(request: IRequest) {
      if (!(await authenticated(request as unknown as Request))) {
        // Read the body first: answering before it is read makes the client's connection reset
        // (seen from miniflare's dispatchFetch as ECONNRESET) instead of giving it the 401.
        await (request as unknown as Request).arrayBuffer().catch(() => undefined);
        return error(401, {
          error: "unauthenticated",
          hint: "send 'authorization: Bearer <LIMITER_SECRET>'",
        });
      }
    }],
    // AutoRouter calls it with the (absent) response, not the request.
    missing: () => error(404, { error: "not found" }),
    catch: (thrown: unknown) => {
      // The ledger throws RangeError/TypeError for a request it cannot serve (weight over capacity).
      if (thrown instanceof RangeError || thrown instanceof TypeError) {
        const field = thrown.message.match(/'(\w+)'/)?.[1] ?? "body";
        return invalid([{ field, message: thrown.message }]);
      }
      console.error(thrown);
      return error(500, { error: "internal error" });
    },
  })
    .post(
      "/acquire",
      withBody(permitApiSchemas.acquire),
      async (request) => json(await object.acquire(request.content)),
    )
    .post(
      "/release",
      withBody(permitApiSchemas.release),
      async (request) => json({ released: await object.release(request.content.leaseId) }),
    )
    .post(
      "/renew",
      withBody(permitApiSchemas.renew),
      async (request) =>
        json({ lease: await object.renew(request.content.leaseId, request.content.ttlMs) }),
    )
    .get("/stats", async () => json(await object.stats()));
}

function invalid(fields: { field: string; message: string }[]): Response {
  return json({ error: "invalid request", fields }, { status: 400 });
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
