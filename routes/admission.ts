/**
 * Inbound admission: a Hono middleware that holds each request to the gateway's adaptive
 * concurrency limit before anything else runs — no body read, no validation, no downstream —
 * and `refusingEarly`, which answers the refusals that need no wait before the app's router.
 *
 * @module
 */
import type { Context, Hono, MiddlewareHandler } from "hono";
import { RegExpRouter } from "hono/router/reg-exp-router";
import type { AdaptiveLimiter } from "../src/limits/mod.ts";
import { BUDGET_HEADER } from "../src/gateway/mod.ts";

/** Status for a client that went away while queued, after nginx's convention. */
const CLIENT_CLOSED_REQUEST = 499;

/**
 * The 503 body of a request turned away by admission.
 *
 * @example
 * ```ts
 * import type { OverloadedBody } from "./admission.ts";
 * const body: OverloadedBody = { error: "overloaded", reason: "sojourn", retryAfterS: 1 };
 * ```
 */
export interface OverloadedBody {
  error: "overloaded";
  /** `"queue_full"`, `"sojourn"` or `"budget"`. */
  reason: string;
  retryAfterS: number;
}

/**
 * Options of {@linkcode admission}.
 *
 * @example
 * ```ts
 * import type { AdmissionOptions } from "./admission.ts";
 * const options: AdmissionOptions = { defaultBudgetMs: 1000 };
 * ```
 */
export interface AdmissionOptions {
  /** The budget of a request that names none, in ms; 1000 by default (the product route's). */
  defaultBudgetMs?: number;
  /** Called with every 503 the middleware answers (the app counts them in its metrics). */
  onShed?: (c: Context, receivedAt: number) => void;
  /**
   * A 502 counts as a drop (a sign of overload) only when it took at least this long, in ms:
   * the shortest branch timeout, so that only a branch cut by its timeout counts, not a
   * downstream that answered an error at once (its bulkhead's business). 0 by default: every
   * 502 counts. A 503 or 504 always counts; a 500 never does.
   */
  dropAfterMs?: number;
}

/**
 * A middleware admitting each request through `limiter` (an `AdaptiveLimiter`): admitted
 * requests run and release their permit when their response is ready, so the limit learns from
 * their latency (an answer that shows overload drops it instead: see `dropAfterMs`); the others
 * are answered `503 { error: "overloaded", reason, retryAfterS }` with `Retry-After` at once, or
 * after at most a short wait in the limiter's queue. A request may wait only while it can still start within its budget: the `budget` query
 * parameter or the `x-fanfare-budget-ms` header, whichever is lower, else `defaultBudgetMs`.
 *
 * The request's arrival time is stored as the context variable `receivedAt`, so the route's own
 * budget counts the time spent waiting here.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { AdaptiveLimiter } from "../src/limits/mod.ts";
 * import { admission } from "./admission.ts";
 *
 * const app = new Hono()
 *   .use("/product/*", admission(new AdaptiveLimiter({ maxLimit: 128 })))
 *   .get("/product/:id", (c) => c.json({ id: c.req.param("id") }));
 * const response = await app.request("/product/sku-1");
 * ```
 */
export function admission(
  limiter: Pick<AdaptiveLimiter, "tryAcquire" | "admit">,
  { defaultBudgetMs = 1000, onShed, dropAfterMs = 0 }: AdmissionOptions = {},
): MiddlewareHandler {
  return async function admit(c, next) {
    const receivedAt = performance.now();
    c.set("receivedAt", receivedAt);
    // Under the limit, nothing else is read: the budget and the signal matter only to a wait.
    let permit = limiter.tryAcquire();
    if (permit === undefined) {
      const admission = limiter.admit({
        signal: c.req.raw.signal,
        deadline: receivedAt + budgetOf(c, defaultBudgetMs),
      });
      // A refusal is most of what an overloaded gateway answers: it is built without Hono's
      // context helpers and with no error or rejected promise on the way (see `admit`).
      const decided = admission.kind === "queued" ? await admission.decided : admission;
      if (decided.kind === "rejected") {
        onShed?.(c, receivedAt);
        return overloaded(decided.reason, decided.retryAfterMs);
      }
      if (decided.kind === "aborted") return clientClosed();
      permit = decided.permit;
    }
    let dropped = true;
    try {
      await next();
      const status = c.res.status;
      dropped = status === 503 || status === 504 ||
        (status === 502 && performance.now() - receivedAt >= dropAfterMs);
    } finally {
      // A drop (a required branch cut by its timeout, the ceiling's queue full) tells the limit
      // more than its latency, which those timeouts cap.
      await (dropped ? permit.drop() : permit.release());
    }
  };
}

/**
 * One route admission guards, for {@linkcode refusingEarly}: its Hono pattern (as given to
 * `app.use`) and the route label its 503s are counted under.
 *
 * @example
 * ```ts
 * import type { GuardedRoute } from "./admission.ts";
 * const product: GuardedRoute = { pattern: "/product/*", route: "/product/:id" };
 * ```
 */
export interface GuardedRoute {
  pattern: string;
  route: string;
}

/**
 * Wraps an app's `fetch` so that, while `limiter` is over its limit with its queue full, a
 * request to one of `routes` is answered its 503 before the app's router runs: no context, no
 * middleware chain, no query parsed and no signal built. That is most of what an overloaded
 * gateway answers, and each refusal takes time from the one thread that also runs the admitted
 * requests. Every other request goes to the app's `fetch`, where the {@linkcode admission}
 * middleware decides as before (a place now, a short wait, or a refusal for its budget). The
 * routes are matched by Hono's own router on the app's own `getPath`, as `app.use` matches them.
 * `onShed` is called with the matched route's label and the arrival time of every 503 answered
 * here.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { AdaptiveLimiter } from "../src/limits/mod.ts";
 * import { admission, refusingEarly } from "./admission.ts";
 *
 * const limiter = new AdaptiveLimiter({ maxLimit: 100 });
 * const app = new Hono()
 *   .use("/product/*", admission(limiter))
 *   .get("/product/:id", (c) => c.json({ id: c.req.param("id") }));
 * const fetch = refusingEarly(app, limiter, [{ pattern: "/product/*", route: "/product/:id" }]);
 * const response = await fetch(new Request("http://localhost/product/sku-1"));
 * ```
 */
export function refusingEarly(
  app: Pick<Hono, "fetch" | "getPath">,
  limiter: Pick<AdaptiveLimiter, "tryRefuse">,
  routes: readonly GuardedRoute[],
  onShed?: (route: string, receivedAt: number) => void,
): Hono["fetch"] {
  const { fetch, getPath } = app;
  const router = new RegExpRouter<string>();
  for (const { pattern, route } of routes) router.add("ALL", pattern, route);
  return function refuseOrFetch(request, ...rest) {
    const [matched] = router.match(request.method, getPath(request));
    if (matched.length > 0) {
      const receivedAt = performance.now();
      const refusal = limiter.tryRefuse();
      if (refusal !== undefined) {
        onShed?.(matched[0][0], receivedAt);
        return overloaded(refusal.reason, refusal.retryAfterMs);
      }
    }
    return fetch(request, ...rest);
  };
}

/** `503 { error: "overloaded", reason, retryAfterS }` with `Retry-After`. */
function overloaded(reason: string, retryAfterMs: number): Response {
  const retryAfterS = Math.max(1, Math.ceil(retryAfterMs / 1000));
  const body: OverloadedBody = { error: "overloaded", reason, retryAfterS };
  return new Response(JSON.stringify(body), {
    status: 503,
    headers: { "content-type": "application/json", "retry-after": String(retryAfterS) },
  });
}

/** 499 for a client that went away before it was admitted. */
function clientClosed(): Response {
  return Response.json({ error: "client closed request" }, { status: CLIENT_CLOSED_REQUEST });
}

/** The request's budget in ms, read cheaply; a bad value is left for the route's validator. */
function budgetOf(c: Context, fallback: number): number {
  const query = Number(c.req.query("budget") ?? fallback);
  const header = Number(c.req.header(BUDGET_HEADER) ?? Infinity);
  const budget = Math.min(query > 0 ? query : fallback, header >= 0 ? header : Infinity);
  return Number.isFinite(budget) ? budget : fallback;
}
