/**
 * The permit object's HTTP API (under `/limiter/`), for Deno and Bun fleets: an itty-router
 * over the object's `LedgerHost`. Everything that arrives here comes from the network, so:
 *
 * - a call without the shared secret is a 401 on its header alone: at most
 *   {@linkcode MAX_BODY_BYTES} of its body are read and dropped, the rest cancelled (one global
 *   object with a 128 MB memory limit must not buffer an attacker's upload);
 * - a body is read chunk by chunk and refused with 413 past {@linkcode MAX_BODY_BYTES} (its
 *   bodies are a few small JSON fields; a `content-length` is not required, as a proxy in front
 *   may re-chunk the body);
 * - an acquire waits at most the object's maximum, with or without `waitMs`, and leaves the queue
 *   when its caller disconnects (where the runtime fires `request.signal`);
 * - only the holder named at acquire may release or renew a lease (lease ids are unguessable too).
 *
 * `POST acquire {holder, weight, ttlMs, waitMs?}`, `POST release {leaseId, holder}`,
 * `POST renew {leaseId, holder, ttlMs}`, `GET stats`; a bad body is a 400 naming each field.
 *
 * @example
 * ```ts
 * import { permitHttpApi } from "./_permit_http_api.ts";
 * import { LedgerHost, PermitLedger } from "../src/limits/mod.ts";
 *
 * const host = new LedgerHost(new PermitLedger({ capacity: 4 }));
 * const api = permitHttpApi(() => host, {
 *   authenticated: (request) => Promise.resolve(request.headers.has("authorization")),
 *   maxWaitMs: () => 10_000,
 *   stats: () => host.stats(),
 * });
 * const response = await api.fetch(new Request("http://object/limiter/stats"));
 * ```
 *
 * @module
 */
import { AutoRouter, error, type IRequest, json } from "itty-router";
import type * as z from "zod/mini";
import { type LedgerHost, permitApiSchemas, type PermitRequest } from "../src/limits/mod.ts";

/** Path prefix of the HTTP API. */
export const LIMITER_PATH = "/limiter";
/** Largest body the HTTP API reads, in bytes. */
export const MAX_BODY_BYTES = 4096;

/**
 * What {@linkcode permitHttpApi} needs of its object.
 *
 * @example
 * ```ts
 * import type { PermitHttpApiOptions } from "./_permit_http_api.ts";
 * const options: PermitHttpApiOptions = {
 *   authenticated: () => Promise.resolve(false),
 *   maxWaitMs: () => 10_000,
 *   stats: () => Promise.resolve({}),
 * };
 * ```
 */
export interface PermitHttpApiOptions {
  /** Whether the request carries the shared secret (from its headers only). */
  authenticated(request: Request): Promise<boolean>;
  /** Longest an acquire may wait in the queue, in ms. */
  maxWaitMs(): number;
  /** What `GET stats` answers. */
  stats(): Promise<unknown>;
}

/**
 * `request` with a wait of at most `maxWaitMs`, whether or not it gave one.
 *
 * @example
 * ```ts
 * import { boundedWait } from "./_permit_http_api.ts";
 * boundedWait({ holder: "a", weight: 1, ttlMs: 1000 }, 500).waitMs; // 500
 * ```
 */
export function boundedWait(request: PermitRequest, maxWaitMs: number): PermitRequest {
  return { ...request, waitMs: Math.min(request.waitMs ?? Infinity, maxWaitMs) };
}

/**
 * The HTTP API over the host `host()` returns (a getter: the object loads its host after
 * construction).
 *
 * @example
 * ```ts
 * import { permitHttpApi } from "./_permit_http_api.ts";
 * import { LedgerHost, PermitLedger } from "../src/limits/mod.ts";
 * const host = new LedgerHost(new PermitLedger({ capacity: 1 }));
 * const api = permitHttpApi(() => host, {
 *   authenticated: () => Promise.resolve(true),
 *   maxWaitMs: () => 1000,
 *   stats: () => host.stats(),
 * });
 * ```
 */
export function permitHttpApi(
  host: () => LedgerHost,
  { authenticated, maxWaitMs, stats }: PermitHttpApiOptions,
): { fetch(request: Request): Promise<Response> } {
  /** Whether lease `leaseId` is free of any holder other than `holder`. */
  const heldBy = (leaseId: string, holder: string): boolean => {
    const current = host().ledger.holderOf(leaseId);
    return current === undefined || current === holder;
  };
  const withBody = <S extends z.ZodMiniType>(schema: S) => async (request: IRequest) => {
    const raw = request as unknown as Request;
    const text = await readCapped(raw.body, MAX_BODY_BYTES);
    if (text === undefined) {
      return error(413, {
        error: "body too large",
        message: `a body must hold at most ${MAX_BODY_BYTES} bytes`,
      });
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
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
      const raw = request as unknown as Request;
      if (!(await authenticated(raw))) {
        // Decided on the header alone. The body is not kept: up to MAX_BODY_BYTES of it is read
        // and dropped (a small body drained keeps the connection, which workerd otherwise resets
        // before the client reads the 401), and a longer one is cancelled there.
        await readCapped(raw.body, MAX_BODY_BYTES);
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
    .post("/acquire", withBody(permitApiSchemas.acquire), async (request) => {
      const signal = (request as unknown as Request).signal;
      try {
        return json(await host().acquire(boundedWait(request.content, maxWaitMs()), signal));
      } catch (thrown) {
        // The caller is gone and its waiter has left the queue: nobody reads this answer.
        if (signal.aborted) return error(499, { error: "client closed request" });
        throw thrown;
      }
    })
    .post("/release", withBody(permitApiSchemas.release), async (request) => {
      const { leaseId, holder } = request.content;
      return json({ released: heldBy(leaseId, holder) && await host().release(leaseId) });
    })
    .post("/renew", withBody(permitApiSchemas.renew), async (request) => {
      const { leaseId, holder, ttlMs } = request.content;
      return json({ lease: heldBy(leaseId, holder) ? await host().renew(leaseId, ttlMs) : null });
    })
    .get("/stats", async () => json(await stats()));
}

/** The body as text, or `undefined` (and the body cancelled) once it passes `maxBytes`. */
async function readCapped(
  body: ReadableStream<Uint8Array> | null | undefined,
  maxBytes: number,
): Promise<string | undefined> {
  // workerd gives a GET request's body as undefined, not null.
  if (body == null) return "";
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let size = 0;
  // Nothing to release at the end: the body is finished or cancelled by then.
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return text + decoder.decode();
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    text += decoder.decode(value, { stream: true });
  }
}

function invalid(fields: { field: string; message: string }[]): Response {
  return json({ error: "invalid request", fields }, { status: 400 });
}
