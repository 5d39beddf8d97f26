/**
 * The gateway as deployed: the product route, `/metrics` and the dashboard in one app, with JSON
 * 404 and 500.
 * Every adapter serves this and only this.
 *
 * @module
 */
import { Hono, type MiddlewareHandler } from "hono";
import {
  type BranchRegistry,
  type Bulkheads,
  circuitGauges,
  createGatewayMetrics,
  limiterGauges,
  LiveStats,
  overloadMetrics,
} from "../src/gateway/mod.ts";
import type { AdaptiveLimiter } from "../src/limits/mod.ts";
import { admission as admissionMiddleware, refusingEarly } from "./admission.ts";
import { createJobsRoute, type JobsRouteOptions } from "./jobs.ts";
import { createDashboardRoute } from "./dashboard.ts";
import { createMetricsRoute } from "./metrics.ts";
import { createGateway, type GatewayOptions, internalError, notFound } from "./product.ts";
import { createAggregateRoutes } from "./aggregate.ts";
import { defineGraph, type Endpoint } from "../src/aggregate/mod.ts";

/**
 * Options of {@linkcode createApp}: those of the gateway, metrics aside (the app owns them).
 *
 * @example
 * ```ts
 * import { createDownstream } from "../sim/downstream.ts";
 * import { defaultRegistry } from "../src/gateway/branch_registry.ts";
 * import type { AppOptions } from "./app.ts";
 *
 * const options: AppOptions = { registry: defaultRegistry(createDownstream()) };
 * ```
 */
export type AppOptions = Omit<GatewayOptions, "metrics"> & {
  registry: BranchRegistry;
  /** When given, the distributed jobs routes (`/jobs`, see `routes/jobs.ts`) with these options. */
  jobs?: JobsRouteOptions;
  /**
   * The inbound adaptive limit: every `/product/*` request is admitted through it before
   * anything else runs, or answered 503 with `Retry-After` (see `routes/admission.ts`). None
   * by default; every adapter passes one (`overloadFromEnv`).
   */
  admission?: AdaptiveLimiter;
  /**
   * One adaptive limit per downstream: each branch's fetcher is put behind its own, the product's
   * branches by name and the endpoints' as `<endpoint>.<branch>`.
   */
  bulkheads?: Bulkheads;
  /**
   * Aggregation endpoints (compiled from `fanfare.config.json` by every adapter), each served at
   * its route through `aggregate()`, behind the inbound adaptive limit when there is one.
   */
  endpoints?: readonly Endpoint[];
};

/**
 * Creates the whole gateway app: `GET /product/:id`, `GET /metrics`, the live dashboard at
 * `GET /` with its `GET /api/stats`, JSON 404 and 500, and the `/jobs` routes when `jobs`
 * is given, and each of `endpoints` at its route (see `routes/aggregate.ts`). With `admission`,
 * every `/product/*` request and every endpoint's request passes the inbound adaptive limit
 * first (a 503 with `Retry-After` when shed; while the limit and its queue are full, before the
 * app's router runs: see `refusingEarly`); with `bulkheads`, each product branch and each
 * endpoint's branch calls its downstream through its own adaptive limit; both add their gauges
 * and counters to `/metrics`.
 *
 * @example
 * ```ts
 * import { createApp } from "./app.ts";
 * import { createDownstream } from "../sim/downstream.ts";
 * import { defaultRegistry } from "../src/gateway/branch_registry.ts";
 *
 * const app = createApp({ registry: defaultRegistry(createDownstream({ tailEvery: 0 })) });
 * const response = await app.request("/product/sku-42");
 * const metrics = await (await app.request("/metrics")).text();
 * ```
 */
export function createApp(
  { jobs, admission, bulkheads, endpoints = [], ...options }: AppOptions,
): Hono {
  const metrics = createGatewayMetrics();
  const branches = options.registry.map(({ name }) => name);
  const app = new Hono();
  // Registered before the live stats take their first snapshot, so that it sees them.
  const refreshOverload = admission === undefined && bulkheads === undefined
    ? undefined
    : overloadMetrics(metrics.registry, { admission, bulkheads });
  const stats = new LiveStats(metrics, { branches });
  // The limiters' and the breakers' gauges are read when someone looks, not on every request.
  const refreshLimiter = options.limiter && limiterGauges(metrics.registry, options.limiter);
  const refreshCircuits = circuitGauges(metrics.registry, [
    ...options.registry,
    ...endpoints.flatMap(({ graph }) => graph.nodes.flatMap((node) => node.registry)),
  ]);
  const refreshing: MiddlewareHandler = async (_c, next) => {
    await refreshLimiter?.();
    refreshCircuits();
    refreshOverload?.();
    await next();
  };
  app.use("/metrics", refreshing).use("/api/stats", refreshing);
  // Each route the inbound limit guards: its pattern, the label of its 503s, its own budget and
  // what counts as a drop.
  const guarded = [
    {
      pattern: "/product/*",
      route: "/product/:id",
      defaultBudgetMs: options.defaultBudgetMs,
      dropAfterMs: Math.min(...options.registry.map((spec) => spec.timeoutMs)),
    },
    ...endpoints.map(({ route, budgetMs, graph }) => ({
      pattern: route,
      route,
      defaultBudgetMs: budgetMs,
      dropAfterMs: Math.min(...graph.nodes.map((node) => node.timeoutMs ?? Infinity)),
    })),
  ];
  // The routes' own counting never sees a shed request: count it here.
  const countShed = (route: string, receivedAt: number) => {
    metrics.requests.inc({ route, status: "503" });
    metrics.requestDuration.observe({ route }, (performance.now() - receivedAt) / 1000);
  };
  if (admission !== undefined) {
    for (const { pattern, route, defaultBudgetMs, dropAfterMs } of guarded) {
      app.use(
        pattern,
        admissionMiddleware(admission, {
          defaultBudgetMs,
          dropAfterMs,
          onShed: (_c, receivedAt) => countShed(route, receivedAt),
        }),
      );
    }
  }
  const registry = bulkheads === undefined ? options.registry : bulkheads.guard(options.registry);
  app
    .route("/", createGateway({ ...options, registry, metrics }))
    .route(
      "/",
      createAggregateRoutes(
        bulkheads === undefined ? endpoints : guardEndpoints(endpoints, bulkheads),
        {
          metrics,
          limiter: options.limiter,
          spare: options.spare,
          optionalWaitMs: options.optionalWaitMs,
        },
      ),
    )
    .route("/", createMetricsRoute(metrics.registry))
    .route(
      "/",
      createDashboardRoute({
        stats,
        registry: options.registry,
        // Each endpoint's own requests, from its route's counters.
        endpoints: endpoints.map(({ name, route }) => ({
          name,
          route,
          stats: new LiveStats(metrics, { route }),
        })),
      }),
    )
    .notFound(notFound)
    .onError(internalError);
  if (jobs !== undefined) app.route("/", createJobsRoute(jobs));
  if (admission !== undefined) {
    // Hono's own `app.request` calls `app.fetch` too, so every caller gets the early refusals.
    app.fetch = refusingEarly(app, admission, guarded, countShed);
  }
  return app;
}

/** `endpoints` with each branch's calls behind its own bulkhead, named as its metrics are. */
function guardEndpoints(endpoints: readonly Endpoint[], bulkheads: Bulkheads): Endpoint[] {
  return endpoints.map((endpoint) =>
    Object.freeze({
      ...endpoint,
      graph: defineGraph(
        endpoint.graph.nodes.map((node) => ({ ...node, registry: bulkheads.guard(node.registry) })),
      ),
    })
  );
}
