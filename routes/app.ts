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
  circuitGauges,
  createGatewayMetrics,
  limiterGauges,
  LiveStats,
} from "../src/gateway/mod.ts";
import type { JobBackend } from "../src/jobs/mod.ts";
import { createJobsRoute } from "./jobs.ts";
import { createDashboardRoute } from "./dashboard.ts";
import { createMetricsRoute } from "./metrics.ts";
import { createGateway, type GatewayOptions, internalError, notFound } from "./product.ts";

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
  /** When given, the distributed jobs routes (`/jobs`, see `routes/jobs.ts`) over it. */
  jobs?: JobBackend;
};

/**
 * Creates the whole gateway app: `GET /product/:id`, `GET /metrics`, the live dashboard at
 * `GET /` with its `GET /api/stats`, JSON 404 and 500, and the `/jobs` routes when `jobs`
 * is given.
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
export function createApp({ jobs, ...options }: AppOptions): Hono {
  const metrics = createGatewayMetrics();
  const branches = options.registry.map(({ name }) => name);
  const stats = new LiveStats(metrics, { branches });
  const app = new Hono();
  // The limiter's and the breakers' gauges are read when someone looks, not on every request.
  const refreshLimiter = options.limiter && limiterGauges(metrics.registry, options.limiter);
  const refreshCircuits = circuitGauges(metrics.registry, options.registry);
  const refreshing: MiddlewareHandler = async (_c, next) => {
    await refreshLimiter?.();
    refreshCircuits();
    await next();
  };
  app.use("/metrics", refreshing).use("/api/stats", refreshing);
  app
    .route("/", createGateway({ ...options, metrics }))
    .route("/", createMetricsRoute(metrics.registry))
    .route("/", createDashboardRoute({ stats, registry: options.registry }))
    .notFound(notFound)
    .onError(internalError);
  if (jobs !== undefined) app.route("/", createJobsRoute({ backend: jobs }));
  return app;
}
