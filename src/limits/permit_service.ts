/**
 * The permit service: what a home of a `PermitLedger` answers, whether it lives in
 * this isolate (`LedgerHost`), in a Durable Object reached by RPC, or behind HTTP
 * ({@linkcode httpPermitService}). Replies are plain values (errors do not keep their class
 * across RPC or HTTP), and the HTTP bodies are checked with zod on both sides.
 *
 * @module
 */
import * as z from "zod/mini";
import type { Lease, LedgerStats } from "./permit_ledger.ts";

/** Longest lease the HTTP API grants, in ms (ten minutes). */
export const MAX_HTTP_TTL_MS = 600_000;
/** Longest wait the HTTP API accepts, in ms (one minute). */
export const MAX_HTTP_WAIT_MS = 60_000;

/**
 * An acquire sent to a permit service.
 *
 * @example
 * ```ts
 * import type { PermitRequest } from "./permit_service.ts";
 * const request: PermitRequest = { holder: "isolate-a", weight: 8, ttlMs: 30_000, waitMs: 100 };
 * ```
 */
export interface PermitRequest {
  /** Who asks (reported in stats, never trusted). */
  holder: string;
  /** Permits wanted at once. */
  weight: number;
  /** Lease lifetime once granted, in ms. */
  ttlMs: number;
  /** Longest wait in the queue, in ms; absent: wait until granted or the call ends. */
  waitMs?: number;
}

/**
 * A permit service's answer to an acquire.
 *
 * @example
 * ```ts
 * import type { AcquireReply } from "./permit_service.ts";
 * const reply: AcquireReply = { granted: false, reason: "queue full", waiting: 1024, retryAfterMs: 1000 };
 * ```
 */
export type AcquireReply =
  | { granted: true; lease: Lease }
  | { granted: false; reason: "queue full"; waiting: number; retryAfterMs: number }
  | { granted: false; reason: "deadline" };

/**
 * The calls a permit service answers. `acquire` may take a `signal`; a home that cannot carry
 * it (RPC) ignores it, so callers must release a grant that arrives after they gave up.
 *
 * @example
 * ```ts
 * import type { PermitService } from "./permit_service.ts";
 * async function once(service: PermitService) {
 *   const reply = await service.acquire({ holder: "me", weight: 1, ttlMs: 1000 });
 *   if (reply.granted) await service.release(reply.lease.id);
 * }
 * ```
 */
export interface PermitService {
  /** Grants, queues until granted or the wait ends, or turns away at once. */
  acquire(request: PermitRequest, signal?: AbortSignal): Promise<AcquireReply>;
  /** Returns a lease; `false` when it was not held (idempotent). */
  release(leaseId: string): Promise<boolean>;
  /** Extends a held lease to `ttlMs` from now; `null` when it is not held any more. */
  renew(leaseId: string, ttlMs: number): Promise<Lease | null>;
  /** The ledger's snapshot. */
  stats(): Promise<LedgerStats>;
  /**
   * `true` when `acquire` rejects as soon as its signal aborts, as a `LedgerHost` in this isolate
   * does; a caller then adds no race of its own. Absent: a remote service may answer late.
   */
  readonly settlesOnAbort?: boolean;
}

const holder = z.string().check(z.minLength(1), z.maxLength(128));
const leaseId = z.string().check(z.minLength(1), z.maxLength(96));

/**
 * zod schemas of the HTTP API's request bodies: `POST /acquire`, `/release`, `/renew`.
 *
 * @example
 * ```ts
 * import { permitApiSchemas } from "./permit_service.ts";
 * permitApiSchemas.release.parse({ leaseId: "l-1", holder: "deno-1" });
 * ```
 */
export const permitApiSchemas: {
  readonly acquire: z.ZodMiniType<PermitRequest>;
  readonly release: z.ZodMiniType<{ leaseId: string; holder: string }>;
  readonly renew: z.ZodMiniType<{ leaseId: string; holder: string; ttlMs: number }>;
} = {
  acquire: z.object({
    holder,
    weight: z.int().check(z.minimum(1)),
    ttlMs: z.number().check(z.positive(), z.maximum(MAX_HTTP_TTL_MS)),
    waitMs: z.optional(z.number().check(z.minimum(0), z.maximum(MAX_HTTP_WAIT_MS))),
  }),
  release: z.object({ leaseId, holder }),
  renew: z.object({
    leaseId,
    holder,
    ttlMs: z.number().check(z.positive(), z.maximum(MAX_HTTP_TTL_MS)),
  }),
} as const;

/** Header carrying the shared secret of the HTTP API, as `Bearer <secret>`. */
export const AUTHORIZATION_HEADER = "authorization";

/**
 * Options of {@linkcode httpPermitService}.
 *
 * @example
 * ```ts
 * import type { HttpPermitServiceOptions } from "./permit_service.ts";
 * const options: HttpPermitServiceOptions = { secret: "s3cret" };
 * ```
 */
export interface HttpPermitServiceOptions {
  /** The shared secret the object was deployed with. */
  secret: string;
  /** The `fetch` to send with; the global one by default. */
  fetch?: (request: Request) => Promise<Response>;
}

/**
 * A {@linkcode PermitService} over the HTTP API of a deployed permit object (`POST /acquire`,
 * `/release`, `/renew`, `GET /stats` under `baseUrl`), so Deno and Bun fleets share the ceiling
 * of a Worker. A non-2xx answer rejects with an `Error` naming the call, status and body.
 * The API lets only a lease's holder release or renew it, so this remembers the holder of each
 * lease it was granted until it releases it; a lease it was not granted is not held (`false`,
 * `null`) without a call.
 *
 * @example
 * ```ts
 * import { httpPermitService } from "./permit_service.ts";
 * import { ServiceLimiter } from "./service_limiter.ts";
 *
 * const service = httpPermitService("https://gateway.example.com/limiter/", { secret: "s3cret" });
 * const limiter = new ServiceLimiter(service, { holder: "deno-1" });
 * ```
 */
export function httpPermitService(
  baseUrl: string | URL,
  { secret, fetch: send = (request) => fetch(request) }: HttpPermitServiceOptions,
): PermitService {
  const base = new URL(baseUrl);
  if (!base.pathname.endsWith("/")) base.pathname += "/";
  const call = async (path: string, body?: unknown, signal?: AbortSignal) => {
    const response = await send(
      new Request(new URL(path, base), {
        method: body === undefined ? "GET" : "POST",
        headers: { [AUTHORIZATION_HEADER]: `Bearer ${secret}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      }),
    );
    const text = await response.text();
    if (!response.ok) {
      throw new Error(
        `Cannot ${path} at the permit service as it answered ${response.status}: ${
          text.slice(0, 200)
        }`,
      );
    }
    return JSON.parse(text);
  };
  const holders = new Map<string, string>();
  return {
    acquire: async (request, signal) => {
      const reply: AcquireReply = await call("acquire", request, signal);
      if (reply.granted) holders.set(reply.lease.id, reply.lease.holder);
      return reply;
    },
    release: async (id) => {
      const holder = holders.get(id);
      if (holder === undefined) return false;
      const { released } = await call("release", { leaseId: id, holder });
      holders.delete(id);
      return released;
    },
    renew: async (id, ttlMs) => {
      const holder = holders.get(id);
      if (holder === undefined) return null;
      const { lease } = await call("renew", { leaseId: id, holder, ttlMs });
      if (lease === null) holders.delete(id);
      return lease ?? null;
    },
    stats: () => call("stats"),
  };
}
