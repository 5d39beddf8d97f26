/**
 * Prometheus-style metrics: counters, gauges and histograms in a registry that renders the
 * text exposition format.
 *
 * @example
 * ```ts
 * import { MetricsRegistry } from "./mod.ts";
 * const registry = new MetricsRegistry();
 * registry.counter("requests_total", "Requests.", ["status"]).inc({ status: "200" });
 * const text = registry.render();
 * ```
 *
 * @module
 */

export {
  Counter,
  DEFAULT_BUCKETS,
  Gauge,
  Histogram,
  type Labels,
  MetricsRegistry,
  PROMETHEUS_CONTENT_TYPE,
} from "./metrics.ts";
export { histogramQuantile } from "./histogram_quantile.ts";
