/**
 * The three apps of the overhead benchmark (`bench/overhead.ts`), shared by its in-process runs
 * and its loopback processes (`bench/_overhead_serve.ts`): a trivial downstream, a hand-written
 * Hono gateway, and the fanfare gateway with the `npm start` defaults off or on.
 *
 * @module
 */
import { Hono } from "hono";
import { createApp } from "../routes/app.ts";
import {
  BUDGET_HEADER,
  defaultRegistry,
  type Fetcher,
  hedgeOptionalReads,
  inProcessFetcher,
  overloadFromEnv,
} from "../src/gateway/mod.ts";
import { AdaptiveLimiter, limiterFromEnv } from "../src/limits/mod.ts";
import { compileProduct, parseConfig } from "../src/aggregate/mod.ts";
import config from "../fanfare.config.json" with { type: "json" };

/** The default registry's branches, in its order: what both gateways fan out to. */
export const BRANCHES = ["price", "inventory", "reviews", "recommendations", "shipping"] as const;

/** The hand-written handler's one timeout, the fanfare gateway's default budget. */
const BUDGET_MS = 1000;

/** The gateways the benchmark compares, in the order each round runs them. */
export const GATEWAYS = ["naive", "equivalent", "fanfare", "fanfare-defaults"] as const;

/** One of {@linkcode GATEWAYS}. */
export type GatewayId = typeof GATEWAYS[number];

/** What each gateway is, in words for the printout and the report. */
export const GATEWAY_LABELS: Record<GatewayId, string> = {
  naive: "hand-written Hono handler (Promise.allSettled, one AbortSignal.timeout)",
  equivalent:
    "hand-written with fanfare's per-request work: a deadline per branch (AbortSignal.any), budget and trace headers, no redirects, bounded bodies, timings",
  fanfare: "fanfare createApp, no limiter, no hedging",
  "fanfare-defaults":
    "fanfare createApp as npm start: the config's product page, 64-permit LocalLimiter, hedged optional reads, admission limit, bulkheads",
};

/**
 * A downstream that answers every `GET /:branch/:id` at once with a small JSON.
 *
 * @example
 * ```ts
 * import { trivialDownstream } from "./_overhead_apps.ts";
 * const response = await trivialDownstream().request("/price/sku-1");
 * ```
 */
export function trivialDownstream(): Hono {
  return new Hono().get(
    "/:branch/:id",
    (c) => c.json({ branch: c.req.param("branch"), id: c.req.param("id"), value: 42 }),
  );
}

/**
 * The baseline a new user would write: `GET /product/:id` calls the five branches at
 * `<base>/<branch>/<id>` through `downstream` under one `AbortSignal.timeout`, waits for all
 * with `Promise.allSettled`, and merges the JSON of those that answered 2xx.
 *
 * @example
 * ```ts
 * import { naiveGateway, trivialDownstream } from "./_overhead_apps.ts";
 * const gateway = naiveGateway(trivialDownstream(), "http://downstream.internal");
 * const { product } = await (await gateway.request("/product/sku-1")).json();
 * ```
 */
export function naiveGateway(downstream: Fetcher, base: string): Hono {
  return new Hono().get("/product/:id", async function naiveProduct(c) {
    const id = c.req.param("id");
    const signal = AbortSignal.timeout(BUDGET_MS);
    const settled = await Promise.allSettled(BRANCHES.map(async (name) => {
      const response = await downstream.fetch(new Request(`${base}/${name}/${id}`, { signal }));
      if (!response.ok) throw new Error(`${name} answered ${response.status}`);
      return await response.json();
    }));
    const product: Record<string, unknown> = {};
    settled.forEach((outcome, i) => {
      if (outcome.status === "fulfilled") product[BRANCHES[i]] = outcome.value;
    });
    return c.json({ id, product });
  });
}

/**
 * Requests {@linkcode limitedNaiveGateway} lets in at once: the ceiling of fanfare's learned
 * limit (`ADMISSION_MAX_LIMIT`), where that limit sits during `exp:overload`'s steps past capacity.
 */
export const HAND_WRITTEN_LIMIT = 128;

/**
 * The overload protection a new user would write first: {@linkcode naiveGateway} behind a
 * middleware that counts the requests in flight and answers a fixed 503 JSON with `Retry-After`
 * when `limit` are. The simplest thing to set beside fanfare's admission in an overload.
 *
 * @example
 * ```ts
 * import { limitedNaiveGateway, trivialDownstream } from "./_overhead_apps.ts";
 * const gateway = limitedNaiveGateway(trivialDownstream(), "http://downstream.internal", 1);
 * const response = await gateway.request("/product/sku-1");
 * ```
 */
export function limitedNaiveGateway(downstream: Fetcher, base: string, limit: number): Hono {
  let inFlight = 0;
  return new Hono()
    .use("/product/*", async function limitInFlight(c, next) {
      if (inFlight >= limit) {
        c.header("retry-after", "1");
        return c.json({ error: "overloaded", reason: "limit", retryAfterS: 1 }, 503);
      }
      inFlight++;
      try {
        await next();
      } finally {
        inFlight--;
      }
    })
    .route("/", naiveGateway(downstream, base));
}

/** The hand-written handlers' bound on an answer's body, as fanfare's default. */
const MAX_ANSWER_CHARS = 1 << 20;

/**
 * What a user would write by hand to do the work a fanfare product request does, in the idioms
 * the platform documents: each branch under `AbortSignal.any` of the client's signal and its own
 * `AbortSignal.timeout` (the earlier of its timeout and the request's budget), the budget left in
 * fanfare's budget header, a `traceparent` per request (answered as `traceresponse`), redirects
 * not followed, the content type and size of each answer checked before `JSON.parse`, and each
 * branch's timings, outcome and reason in the answer. Less than fanfare still: no depth check,
 * no metrics, no degraded-reason classes. It shows what the features cost written plainly.
 *
 * @example
 * ```ts
 * import { equivalentGateway, trivialDownstream } from "./_overhead_apps.ts";
 * const gateway = equivalentGateway(trivialDownstream(), "http://downstream.internal");
 * const { timings } = await (await gateway.request("/product/sku-1")).json();
 * ```
 */
export function equivalentGateway(downstream: Fetcher, base: string): Hono {
  // Each branch's own timeout, taken from the default registry so that both keep the same.
  const timeoutsMs = defaultRegistry(downstream).map((branch) => branch.timeoutMs);
  return new Hono().get("/product/:id", async function equivalentProduct(c) {
    const origin = performance.now();
    const deadline = origin + BUDGET_MS;
    const id = c.req.param("id");
    const traceId = crypto.randomUUID().replaceAll("-", "");
    const traceparent = `00-${traceId}-${traceId.slice(0, 16)}-00`;
    const timings: Record<string, { startMs: number; endMs: number; deadlineMs: number }> = {};
    const settled = await Promise.allSettled(BRANCHES.map(async (name, i) => {
      const startMs = performance.now();
      const until = Math.min(startMs + timeoutsMs[i], deadline);
      const signal = AbortSignal.any([c.req.raw.signal, AbortSignal.timeout(until - startMs)]);
      try {
        const response = await downstream.fetch(
          new Request(`${base}/${name}/${encodeURIComponent(id)}`, {
            headers: {
              [BUDGET_HEADER]: String(Math.floor(until - startMs)),
              accept: "application/json",
              "accept-encoding": "identity",
              traceparent,
            },
            redirect: "manual",
            signal,
          }),
        );
        if (!response.ok) throw new Error(`${name} answered ${response.status}`);
        if (!response.headers.get("content-type")?.startsWith("application/json")) {
          throw new Error(`${name} answered no JSON`);
        }
        const text = await response.text();
        if (text.length > MAX_ANSWER_CHARS) throw new Error(`${name} answered too much`);
        return JSON.parse(text);
      } finally {
        timings[name] = {
          startMs: startMs - origin,
          endMs: performance.now() - origin,
          deadlineMs: until - origin,
        };
      }
    }));
    const product: Record<string, unknown> = {};
    const degraded: string[] = [];
    const reasons: Record<string, string> = {};
    settled.forEach((outcome, i) => {
      if (outcome.status === "fulfilled") product[BRANCHES[i]] = outcome.value;
      else {
        degraded.push(BRANCHES[i]);
        reasons[BRANCHES[i]] = String(outcome.reason);
      }
    });
    c.header("traceresponse", traceparent);
    return c.json({ id, product, degraded, reasons, timings, budgetMs: BUDGET_MS });
  });
}

/**
 * `createApp` over `downstream` with the default registry; with `defaults`, built as `npm start`
 * builds it: the product page of `fanfare.config.json`, `LIMITER_CAPACITY=64`,
 * `HEDGE=optional-reads`, and the overload protection's defaults (admission limit with its
 * event-loop watch, bulkheads); `admission` in place of that admission limit.
 *
 * @example
 * ```ts
 * import { fanfareGateway, trivialDownstream } from "./_overhead_apps.ts";
 * const gateway = fanfareGateway(trivialDownstream(), { defaults: true });
 * const response = await gateway.request("/product/sku-1");
 * ```
 */
export function fanfareGateway(
  downstream: Fetcher,
  { defaults, admission }: { defaults: boolean; admission?: AdaptiveLimiter },
): Hono {
  if (!defaults) return createApp({ registry: defaultRegistry(downstream) });
  const hedge = hedgeOptionalReads();
  return createApp({
    registry: compileProduct(parseConfig(config, "fanfare.config.json"), { default: downstream }, {
      hedge,
    }) ?? defaultRegistry(downstream, { hedge }),
    limiter: limiterFromEnv({ LIMITER_CAPACITY: "64" }),
    ...overloadFromEnv({}),
    ...(admission === undefined ? {} : { admission }),
  });
}

/**
 * The gateway `id` in front of `downstream`, whose requests name `base` as their origin.
 *
 * @example
 * ```ts
 * import { gatewayById, trivialDownstream } from "./_overhead_apps.ts";
 * const gateway = gatewayById("naive", trivialDownstream(), "http://downstream.internal");
 * ```
 */
export function gatewayById(id: GatewayId, downstream: Fetcher, base: string): Hono {
  if (id === "naive") return naiveGateway(downstream, base);
  if (id === "equivalent") return equivalentGateway(downstream, base);
  return fanfareGateway(downstream, { defaults: id === "fanfare-defaults" });
}

/**
 * `count` product paths (`/product/sku-<n>`, n < 10,000) with ids from xorshift32 seeded with
 * `seed`: the same requests in every run and on every runtime.
 *
 * @example
 * ```ts
 * import { productPaths } from "./_overhead_apps.ts";
 * const paths = productPaths(14, 4000);
 * ```
 */
export function productPaths(seed: number, count: number): string[] {
  const paths = new Array<string>(count);
  let s = seed;
  for (let i = 0; i < count; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    paths[i] = `/product/sku-${(s >>> 0) % 10_000}`;
  }
  return paths;
}

/** The servers `bench:refusal` compares, each answering every `/product/:id` with a 503. */
export const REFUSERS = ["refuse-naive", "refuse-fanfare"] as const;

/** One of {@linkcode REFUSERS}. */
export type RefuserId = typeof REFUSERS[number];

/** What each refuser is, in words for the printout. */
export const REFUSER_LABELS: Record<RefuserId, string> = {
  "refuse-naive": "hand-written handler: a fixed 503 JSON with Retry-After, no router",
  "refuse-fanfare": "fanfare createApp as npm start builds it, its admission limit held full",
};

/**
 * A server that refuses every product request: the least a runtime's HTTP server does for a
 * 503 (`refuse-naive`), or the `npm start` app (see {@linkcode fanfareGateway}) whose admission
 * limit of one permit is taken for good, with no queue, so that admission refuses every request
 * at once.
 *
 * @example
 * ```ts
 * import { refuserById } from "./_overhead_apps.ts";
 * const response = await refuserById("refuse-fanfare").fetch(new Request("http://g/product/sku-1"));
 * response.status; // 503
 * ```
 */
export function refuserById(
  id: RefuserId,
): { fetch(request: Request): Response | Promise<Response> } {
  if (id === "refuse-naive") {
    const body = JSON.stringify({ error: "overloaded", reason: "queue_full", retryAfterS: 1 });
    return {
      fetch: () =>
        new Response(body, {
          status: 503,
          headers: { "content-type": "application/json", "retry-after": "1" },
        }),
    };
  }
  const admission = new AdaptiveLimiter({ initialLimit: 1, maxLimit: 1, maxQueue: 0 });
  // Held until the process ends: every request finds the limit full.
  admission.tryAcquire();
  return fanfareGateway(inProcessFetcher(trivialDownstream()), { defaults: true, admission });
}
