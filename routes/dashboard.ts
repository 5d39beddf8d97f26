/**
 * The live dashboard: `GET /` serves one self-contained page, `GET /api/stats` the JSON it polls
 * every second.
 *
 * @module
 */
import { Hono } from "hono";
import type { BranchRegistry, LiveStats, LiveStatsReport } from "../src/gateway/mod.ts";
import { DASHBOARD_PAGE } from "./_dashboard_page.ts";

/**
 * `GET /api/stats`: the live numbers plus the registry's branches (for the page's fault form).
 * `limiter` and `hedges` are absent when the gateway has no global limiter or no hedging.
 *
 * @example
 * ```ts
 * import type { StatsBody } from "./dashboard.ts";
 * const body: StatsBody = {
 *   windowS: 10,
 *   requests: { total: 0, ratePerS: 0, p50Ms: null, p99Ms: null, degradedShare: null, statuses: {} },
 *   branches: { inFlight: 0, byName: {} },
 *   registry: [{ name: "price", required: true, timeoutMs: 300 }],
 * };
 * ```
 */
export interface StatsBody extends LiveStatsReport {
  /** Every branch of the gateway, in the order they start. */
  registry: { name: string; required: boolean; timeoutMs: number }[];
  /**
   * The aggregation endpoints the gateway serves besides the product route, if any, each with
   * its own requests over the window, its degraded share included.
   */
  endpoints?: { name: string; route: string; requests?: LiveStatsReport["requests"] }[];
}

/**
 * Options of {@linkcode createDashboardRoute}.
 *
 * @example
 * ```ts
 * import { createDownstream } from "../sim/downstream.ts";
 * import { defaultRegistry } from "../src/gateway/branch_registry.ts";
 * import { createGatewayMetrics } from "../src/gateway/gateway_metrics.ts";
 * import { LiveStats } from "../src/gateway/live_stats.ts";
 * import type { DashboardOptions } from "./dashboard.ts";
 *
 * const options: DashboardOptions = {
 *   stats: new LiveStats(createGatewayMetrics()),
 *   registry: defaultRegistry(createDownstream()),
 * };
 * ```
 */
export interface DashboardOptions {
  /** The rolling view of the gateway's metrics. */
  stats: LiveStats;
  /** The gateway's branches. */
  registry: BranchRegistry;
  /**
   * Aggregation endpoints: the page's "Try a request" may also call them, and with `stats` (a
   * `LiveStats` on the endpoint's route) it shows each one's requests.
   */
  endpoints?: readonly { name: string; route: string; stats?: LiveStats }[];
}

/**
 * Creates the dashboard's routes: `GET /` (HTML) and `GET /api/stats` (JSON, never cached).
 *
 * @example
 * ```ts
 * import { createDashboardRoute } from "./dashboard.ts";
 * import { createDownstream } from "../sim/downstream.ts";
 * import { defaultRegistry } from "../src/gateway/branch_registry.ts";
 * import { createGatewayMetrics } from "../src/gateway/gateway_metrics.ts";
 * import { LiveStats } from "../src/gateway/live_stats.ts";
 *
 * const registry = defaultRegistry(createDownstream());
 * const dashboard = createDashboardRoute({ stats: new LiveStats(createGatewayMetrics()), registry });
 * const { requests } = await (await dashboard.request("/api/stats")).json();
 * ```
 */
export function createDashboardRoute(
  { stats, registry, endpoints = [] }: DashboardOptions,
): Hono {
  const branches = registry.map(({ name, required, timeoutMs }) => ({ name, required, timeoutMs }));
  const routes = [...endpoints];
  return new Hono()
    .get("/", function servePage(c) {
      return c.html(DASHBOARD_PAGE, 200, { "cache-control": "no-cache" });
    })
    .get("/api/stats", function serveStats(c) {
      const body: StatsBody = { ...stats.read(), registry: branches };
      if (routes.length > 0) {
        body.endpoints = routes.map(({ name, route, stats }) => {
          const entry: NonNullable<StatsBody["endpoints"]>[number] = { name, route };
          if (stats !== undefined) entry.requests = stats.read().requests;
          return entry;
        });
      }
      return c.json(body, 200, { "cache-control": "no-store" });
    });
}
