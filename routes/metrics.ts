/**
 * `GET /metrics`: the Prometheus text exposition of a metrics registry.
 *
 * @module
 */
import { Hono } from "hono";
import { type MetricsRegistry, PROMETHEUS_CONTENT_TYPE } from "../src/metrics/mod.ts";

/**
 * Creates an app serving `registry` at `GET /metrics`.
 *
 * @example
 * ```ts
 * import { createMetricsRoute } from "./metrics.ts";
 * import { MetricsRegistry } from "../src/metrics/metrics.ts";
 *
 * const registry = new MetricsRegistry();
 * registry.counter("jobs_total", "Jobs done.").inc();
 * const text = await (await createMetricsRoute(registry).request("/metrics")).text();
 * ```
 */
export function createMetricsRoute(registry: MetricsRegistry): Hono {
  return new Hono().get("/metrics", function exposeMetrics(c) {
    return c.body(registry.render(), 200, { "content-type": PROMETHEUS_CONTENT_TYPE });
  });
}
