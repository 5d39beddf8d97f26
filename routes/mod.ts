/**
 * The gateway as Hono routes: the whole app (`createApp`), or its parts to mount in an app of
 * your own — the product route, `/metrics`, the dashboard and the distributed jobs' API — and
 * the JSON 400/404/500 answers they share.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { defaultRegistry, urlFetcher } from "../src/gateway/mod.ts";
 * import { createGateway, notFound } from "./mod.ts";
 *
 * const registry = defaultRegistry(urlFetcher("https://downstream.example/"));
 * const app = new Hono().route("/", createGateway({ registry })).notFound(notFound);
 * export default app;
 * ```
 *
 * @module
 */

export { type AppOptions, createApp } from "./app.ts";
export {
  aggregate,
  type AggregateOptions,
  type AggregateRoutesOptions,
  COMPLETE_HEADER,
  createAggregateRoutes,
} from "./aggregate.ts";
export {
  BUDGET_RANGE_MS,
  createGateway,
  type GatewayOptions,
  internalError,
  invalidRequest,
  type InvalidRequestBody,
  notFound,
  reportInvalid,
} from "./product.ts";
export { createJobsRoute, type JobsRouteOptions, MAX_JOB_ITEMS, MAX_WAIT_MS } from "./jobs.ts";
export { createMetricsRoute } from "./metrics.ts";
export { createDashboardRoute, type DashboardOptions, type StatsBody } from "./dashboard.ts";
