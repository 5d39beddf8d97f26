/**
 * The overload protection's metrics: the inbound adaptive limit and each downstream's bulkhead —
 * limits, calls in flight, queue lengths, and requests turned away by reason.
 *
 * @module
 */
import type { AdaptiveLimiterStats, ShedReason } from "../limits/mod.ts";
import { SHED_REASONS } from "../limits/mod.ts";
import type { Counter, Gauge, MetricsRegistry } from "../metrics/mod.ts";

/**
 * Names of the inbound admission metrics; the live stats report `admission` when they are
 * registered.
 *
 * @example
 * ```ts
 * import { ADMISSION_METRICS } from "./overload_metrics.ts";
 * ADMISSION_METRICS.limit; // "fanfare_admission_limit"
 * ```
 */
export const ADMISSION_METRICS = Object.freeze({
  /** Gauge: the learned limit of requests in flight. */
  limit: "fanfare_admission_limit",
  /** Gauge: the ceiling the limit never exceeds. */
  maxLimit: "fanfare_admission_limit_max",
  /** Gauge: requests admitted and not finished. */
  inFlight: "fanfare_admission_in_flight",
  /** Gauge: requests waiting in the admission queue. */
  waiting: "fanfare_admission_queue_length",
  /** Counter: requests answered 503 by admission, by reason. */
  shed: "fanfare_admission_shed_total",
  /** Gauge: how late the last event-loop sample fired, in seconds. */
  lag: "fanfare_admission_event_loop_lag_seconds",
  /** Counter: back-offs of the limit for a late event loop. */
  lagBackOffs: "fanfare_admission_lag_backoffs_total",
});

/** Name of the per-branch bulkhead limit gauge (label `branch`), which the live stats report. */
export const BULKHEAD_LIMIT_METRIC = "fanfare_bulkhead_limit";

/**
 * What to read the metrics from: the inbound limiter and the bulkheads, either may be absent.
 *
 * @example
 * ```ts
 * import { AdaptiveLimiter } from "../limits/mod.ts";
 * import { Bulkheads } from "./bulkheads.ts";
 * import type { OverloadSources } from "./overload_metrics.ts";
 * const sources: OverloadSources = { admission: new AdaptiveLimiter(), bulkheads: new Bulkheads() };
 * ```
 */
export interface OverloadSources {
  /** The inbound limiter's state. */
  admission?: { stats(): AdaptiveLimiterStats };
  /** Each bulkhead's state by branch. */
  bulkheads?: { stats(): Record<string, AdaptiveLimiterStats> };
}

/**
 * Registers the overload metrics on `registry` and returns a function that refreshes them from
 * `sources`; call it before rendering (nothing runs per request). Counters advance by what the
 * limiters counted since the last refresh.
 *
 * - `fanfare_admission_limit`, `fanfare_admission_limit_max`, `fanfare_admission_in_flight`,
 *   `fanfare_admission_queue_length` (gauges), `fanfare_admission_requests_total{outcome}`
 *   (`admitted`, `rejected`, `shed`, `cancelled`) and `fanfare_admission_shed_total{reason}`
 *   (`queue_full`, `sojourn`, `budget`; rejected plus shed), `fanfare_admission_event_loop_lag_seconds`
 *   (gauge; 0 unless the limiter watches its event loop) and
 *   `fanfare_admission_lag_backoffs_total`.
 * - `fanfare_bulkhead_limit{branch}`, `fanfare_bulkhead_in_flight{branch}`,
 *   `fanfare_bulkhead_queue_length{branch}` and `fanfare_bulkhead_shed_total{branch,reason}`.
 *
 * @example
 * ```ts
 * import { AdaptiveLimiter } from "../limits/mod.ts";
 * import { MetricsRegistry } from "../metrics/mod.ts";
 * import { overloadMetrics } from "./overload_metrics.ts";
 *
 * const registry = new MetricsRegistry();
 * const refresh = overloadMetrics(registry, { admission: new AdaptiveLimiter() });
 * refresh();
 * registry.render().includes("fanfare_admission_limit 20"); // true
 * ```
 */
export function overloadMetrics(
  registry: MetricsRegistry,
  { admission, bulkheads }: OverloadSources,
): () => void {
  const refreshers: (() => void)[] = [];
  if (admission !== undefined) {
    const limit = registry.gauge(ADMISSION_METRICS.limit, "Learned limit of requests in flight.");
    const maxLimit = registry.gauge(
      ADMISSION_METRICS.maxLimit,
      "Ceiling of the learned limit of requests in flight.",
    );
    const inFlight = registry.gauge(ADMISSION_METRICS.inFlight, "Requests admitted, unfinished.");
    const waiting = registry.gauge(ADMISSION_METRICS.waiting, "Requests in the admission queue.");
    const outcomes = registry.counter(
      "fanfare_admission_requests_total",
      "Requests offered to admission, by outcome: admitted, rejected, shed or cancelled.",
      ["outcome"],
    );
    const shed = registry.counter(
      ADMISSION_METRICS.shed,
      "Requests answered 503 by admission, by reason: queue_full, sojourn or budget.",
      ["reason"],
    );
    const lag = registry.gauge(
      ADMISSION_METRICS.lag,
      "How late the last event-loop sample of the admission limiter fired, in seconds.",
    );
    const lagBackOffs = registry.counter(
      ADMISSION_METRICS.lagBackOffs,
      "Back-offs of the admission limit for an event loop running late.",
    );
    const seen = new Deltas();
    refreshers.push(() => {
      const now = admission.stats();
      lag.set({}, now.lagMs / 1000);
      seen.advance(lagBackOffs, {}, now.lagBackOffs);
      limit.set({}, now.limit);
      maxLimit.set({}, now.maxLimit);
      inFlight.set({}, now.inFlight);
      waiting.set({}, now.waiting);
      for (const outcome of ["admitted", "rejected", "shed", "cancelled"] as const) {
        seen.advance(outcomes, { outcome }, now[outcome]);
      }
      advanceReasons(seen, shed, {}, now.turnedAway);
    });
  }
  if (bulkheads !== undefined) {
    const limit = registry.gauge(
      BULKHEAD_LIMIT_METRIC,
      "Learned limit of calls in flight to each downstream.",
      ["branch"],
    );
    const inFlight = registry.gauge(
      "fanfare_bulkhead_in_flight",
      "Calls in flight to each downstream under its bulkhead.",
      ["branch"],
    );
    const waiting = registry.gauge(
      "fanfare_bulkhead_queue_length",
      "Calls waiting for each downstream's bulkhead.",
      ["branch"],
    );
    const shed = registry.counter(
      "fanfare_bulkhead_shed_total",
      "Calls turned away by each downstream's bulkhead, by reason.",
      ["branch", "reason"],
    );
    const seen = new Deltas();
    refreshers.push(() => {
      for (const [branch, now] of Object.entries(bulkheads.stats())) {
        limit.set({ branch }, now.limit);
        inFlight.set({ branch }, now.inFlight);
        waiting.set({ branch }, now.waiting);
        advanceReasons(seen, shed, { branch }, now.turnedAway);
      }
    });
  }
  return function refreshOverloadMetrics() {
    for (const refresh of refreshers) refresh();
  };
}

function advanceReasons(
  seen: Deltas,
  counter: Counter,
  labels: Record<string, string>,
  turnedAway: Record<ShedReason, number>,
): void {
  for (const reason of SHED_REASONS) {
    seen.advance(counter, { ...labels, reason }, turnedAway[reason]);
  }
}

/** Turns running totals read from a limiter into counter increments. */
class Deltas {
  #last = new Map<string, number>();

  advance(counter: Counter | Gauge, labels: Record<string, string>, total: number): void {
    const key = JSON.stringify(labels);
    const last = this.#last.get(key) ?? 0;
    this.#last.set(key, total);
    counter.inc(labels, Math.max(0, total - last));
  }
}
