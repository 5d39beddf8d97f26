/**
 * The gateway's metric set, registered on one {@linkcode MetricsRegistry}.
 *
 * @module
 */
import type { Limiter } from "../limits/mod.ts";
import type { CircuitBreaker, CircuitState } from "../resilience/mod.ts";
import { type Counter, type Gauge, type Histogram, MetricsRegistry } from "../metrics/mod.ts";

/**
 * Names of the global limiter's gauges in the metrics registry. The live stats (`live_stats.ts`) report
 * `limiter` only when at least one of them is registered, and each field only when its gauge is.
 *
 * @example
 * ```ts
 * import { LIMITER_METRICS } from "./gateway_metrics.ts";
 * import { MetricsRegistry } from "../metrics/metrics.ts";
 *
 * const registry = new MetricsRegistry();
 * registry.gauge(LIMITER_METRICS.ceiling, "Permits of the global limiter.").set({}, 100);
 * ```
 */
export const LIMITER_METRICS = Object.freeze({
  /** Gauge: permits held by branches now, over the whole ceiling. */
  inFlight: "fanfare_limiter_permits_in_use",
  /** Gauge: the global ceiling in permits. */
  ceiling: "fanfare_limiter_capacity",
  /** Gauge: acquirers waiting for a permit now. */
  waiting: "fanfare_limiter_waiters",
});

/**
 * Names of the hedging counters in the metrics registry (any labels; series are summed).
 * The live stats report `hedges` only when at least one of them is registered.
 *
 * @example
 * ```ts
 * import { HEDGE_METRICS } from "./gateway_metrics.ts";
 * import { MetricsRegistry } from "../metrics/metrics.ts";
 *
 * const registry = new MetricsRegistry();
 * registry.counter(HEDGE_METRICS.sent, "Hedges sent.", ["branch"]).inc({ branch: "reviews" });
 * ```
 */
export const HEDGE_METRICS = Object.freeze({
  /** Counter: second attempts fired. */
  sent: "fanfare_hedges_sent_total",
  /** Counter: second attempts that answered first. */
  won: "fanfare_hedges_won_total",
});

/**
 * How a branch of one request ended, as the gateway reports it: `timeout` covers the branch's
 * own limit, the request's budget and a downstream 504; `aborted` means a sibling's failure
 * (failFast) or the client going away cut it.
 *
 * @example
 * ```ts
 * import type { BranchResultKind } from "./gateway_metrics.ts";
 * const kind: BranchResultKind = "timeout";
 * ```
 */
export type BranchResultKind = "ok" | "error" | "timeout" | "skipped" | "aborted" | "circuit-open";

/**
 * The gateway's metrics plus the registry that renders them.
 *
 * @example
 * ```ts
 * import { createGatewayMetrics } from "./gateway_metrics.ts";
 *
 * const metrics = createGatewayMetrics();
 * metrics.branchOutcomes.inc({ branch: "price", outcome: "ok" });
 * metrics.registry.render().includes('fanfare_branch_outcomes_total{branch="price",outcome="ok"} 1');
 * ```
 */
export interface GatewayMetrics {
  /** Renders every metric below. */
  readonly registry: MetricsRegistry;
  /** `fanfare_http_requests_total{route,status}`. */
  readonly requests: Counter;
  /** `fanfare_http_request_duration_seconds{route}`. */
  readonly requestDuration: Histogram;
  /** `fanfare_branch_duration_seconds{branch,outcome}`; skipped branches are not observed. */
  readonly branchDuration: Histogram;
  /** `fanfare_branch_outcomes_total{branch,outcome}` with outcome a {@linkcode BranchResultKind}. */
  readonly branchOutcomes: Counter;
  /** `fanfare_degraded_responses_total{route}`: 200 answers missing at least one optional branch. */
  readonly degraded: Counter;
  /** `fanfare_branches_in_flight`: branches started and not yet settled, over all requests. */
  readonly branchesInFlight: Gauge;
}

/**
 * Registers the gateway's metrics on `registry` (a new one by default).
 *
 * @example
 * ```ts
 * import { createGatewayMetrics } from "./gateway_metrics.ts";
 * import { MetricsRegistry } from "../metrics/metrics.ts";
 *
 * const registry = new MetricsRegistry();
 * const metrics = createGatewayMetrics(registry);
 * metrics.requests.inc({ route: "/product/:id", status: "200" });
 * ```
 */
export function createGatewayMetrics(
  registry: MetricsRegistry = new MetricsRegistry(),
): GatewayMetrics {
  return {
    registry,
    requests: registry.counter(
      "fanfare_http_requests_total",
      "HTTP requests answered by the gateway, by route and status.",
      ["route", "status"],
    ),
    requestDuration: registry.histogram(
      "fanfare_http_request_duration_seconds",
      "Time from receiving a request to having its response, by route.",
      ["route"],
    ),
    branchDuration: registry.histogram(
      "fanfare_branch_duration_seconds",
      "Time from starting a downstream branch to its outcome, by branch and outcome.",
      ["branch", "outcome"],
    ),
    branchOutcomes: registry.counter(
      "fanfare_branch_outcomes_total",
      "Downstream branches by outcome: ok, error, timeout, skipped, aborted or circuit-open.",
      ["branch", "outcome"],
    ),
    degraded: registry.counter(
      "fanfare_degraded_responses_total",
      "Successful responses missing at least one optional branch, by route.",
      ["route"],
    ),
    branchesInFlight: registry.gauge(
      "fanfare_branches_in_flight",
      "Downstream branches started and not yet settled.",
    ),
  };
}

/**
 * The gateway's hedging counters, by branch.
 *
 * @example
 * ```ts
 * import { hedgeMetrics } from "./gateway_metrics.ts";
 * import { MetricsRegistry } from "../metrics/metrics.ts";
 *
 * const hedges = hedgeMetrics(new MetricsRegistry());
 * hedges.declined.inc({ branch: "reviews", reason: "budget" });
 * ```
 */
export interface HedgeMetrics {
  /** `fanfare_hedges_sent_total{branch}`: hedge attempts sent. */
  readonly sent: Counter;
  /** `fanfare_hedges_won_total{branch}`: calls a hedge answered first. */
  readonly won: Counter;
  /**
   * `fanfare_hedges_declined_total{branch,reason}`: hedges that were due but not sent, because
   * the hedge budget was exhausted (`reason="budget"`) or the limiter had no spare permit
   * (`reason="capacity"`).
   */
  readonly declined: Counter;
}

/**
 * The hedging counters of `registry`, registered on first use. Only a gateway that hedges
 * registers them, so that a dashboard can tell "hedging off" from "no hedge sent".
 *
 * @example
 * ```ts
 * import { createGatewayMetrics, hedgeMetrics } from "./gateway_metrics.ts";
 *
 * const metrics = createGatewayMetrics();
 * hedgeMetrics(metrics.registry).sent.inc({ branch: "reviews" });
 * hedgeMetrics(metrics.registry).sent === hedgeMetrics(metrics.registry).sent; // true
 * ```
 */
export function hedgeMetrics(registry: MetricsRegistry): HedgeMetrics {
  // Looked up per request by the gateway: register once per registry, then reuse.
  let metrics = hedgeMetricsOf.get(registry);
  if (metrics === undefined) {
    metrics = {
      sent: registry.counter(HEDGE_METRICS.sent, "Hedge attempts sent, by branch.", ["branch"]),
      won: registry.counter(
        HEDGE_METRICS.won,
        "Branch calls a hedge answered first, by branch.",
        ["branch"],
      ),
      declined: registry.counter(
        "fanfare_hedges_declined_total",
        "Hedges due but not sent: budget exhausted or no spare capacity, by branch and reason.",
        ["branch", "reason"],
      ),
    };
    hedgeMetricsOf.set(registry, metrics);
  }
  return metrics;
}

const hedgeMetricsOf = new WeakMap<MetricsRegistry, HedgeMetrics>();

/**
 * The retry counters of a gateway whose branches retry; from {@linkcode retryMetrics}.
 *
 * @example
 * ```ts
 * import { retryMetrics } from "./gateway_metrics.ts";
 * import { MetricsRegistry } from "../metrics/mod.ts";
 * retryMetrics(new MetricsRegistry()).sent.inc({ branch: "reviews" });
 * ```
 */
export interface RetryMetrics {
  /** `fanfare_retries_sent_total{branch}`: retries sent. */
  readonly sent: Counter;
  /**
   * `fanfare_retries_declined_total{branch,reason}`: retryable failures not retried, because the
   * retry budget was dry (`budget`), the wait would pass the deadline (`deadline`), or the
   * call's attempts, hedges included, were spent (`attempts`).
   */
  readonly declined: Counter;
}

/**
 * Registers (once per registry) and returns the retry counters.
 *
 * @example
 * ```ts
 * import { createGatewayMetrics, retryMetrics } from "./gateway_metrics.ts";
 * const retries = retryMetrics(createGatewayMetrics().registry);
 * retries.declined.inc({ branch: "reviews", reason: "budget" });
 * ```
 */
export function retryMetrics(registry: MetricsRegistry): RetryMetrics {
  let metrics = retryMetricsOf.get(registry);
  if (metrics === undefined) {
    metrics = {
      sent: registry.counter(RETRY_METRICS.sent, "Retries sent, by branch.", ["branch"]),
      declined: registry.counter(
        "fanfare_retries_declined_total",
        "Retryable failures not retried: budget dry, past the deadline or no attempt left, by branch and reason.",
        ["branch", "reason"],
      ),
    };
    retryMetricsOf.set(registry, metrics);
  }
  return metrics;
}

const retryMetricsOf = new WeakMap<MetricsRegistry, RetryMetrics>();

/**
 * Metric names the live stats read for retries and breakers.
 *
 * @example
 * ```ts
 * import { RETRY_METRICS } from "./gateway_metrics.ts";
 * RETRY_METRICS.circuitState; // "fanfare_circuit_state"
 * ```
 */
export const RETRY_METRICS = Object.freeze({
  /** Counter: retries sent. */
  sent: "fanfare_retries_sent_total",
  /** Gauge: 1 for each branch's current breaker state, 0 for the other two. */
  circuitState: "fanfare_circuit_state",
});

const CIRCUIT_STATES: readonly CircuitState[] = ["closed", "half-open", "open"];

/**
 * Registers the breakers' metrics of `branches` (those that have one) and returns a function
 * that refreshes them, to call before each scrape: `fanfare_circuit_state{branch,state}` (1 for
 * the current state) and `fanfare_circuit_transitions_total{branch,to}`. A breaker is pure
 * state, so it is read when someone looks, not on every call.
 *
 * @example
 * ```ts
 * import { CircuitBreaker } from "../resilience/mod.ts";
 * import { circuitGauges, createGatewayMetrics } from "./gateway_metrics.ts";
 *
 * const metrics = createGatewayMetrics();
 * const refresh = circuitGauges(metrics.registry, [{ name: "price", breaker: new CircuitBreaker() }]);
 * refresh();
 * ```
 */
export function circuitGauges(
  registry: MetricsRegistry,
  branches: readonly { readonly name: string; readonly breaker?: CircuitBreaker }[],
): () => void {
  const guarded = branches.filter((b) => b.breaker !== undefined);
  if (guarded.length === 0) return () => {};
  const state = registry.gauge(
    RETRY_METRICS.circuitState,
    "Circuit breaker state per branch: 1 for the current state (closed, half-open, open).",
    ["branch", "state"],
  );
  const transitions = registry.counter(
    "fanfare_circuit_transitions_total",
    "Circuit breaker transitions per branch, by the state entered.",
    ["branch", "to"],
  );
  const seen = new Map<string, Record<CircuitState, number>>();
  return function refreshCircuitGauges() {
    for (const { name, breaker } of guarded) {
      const now = breaker!.state;
      for (const s of CIRCUIT_STATES) state.set({ branch: name, state: s }, s === now ? 1 : 0);
      const counts = breaker!.transitions;
      const before = seen.get(name) ?? { closed: 0, open: 0, "half-open": 0 };
      for (const s of CIRCUIT_STATES) {
        // The breaker counts from its start; the counter moves by what is new since last time.
        if (counts[s] > before[s]) transitions.inc({ branch: name, to: s }, counts[s] - before[s]);
      }
      seen.set(name, counts);
    }
  };
}

/**
 * Registers the global limiter's gauges in `registry` and returns a function that refreshes
 * them from `limiter.stats()`; call it before rendering metrics. A limiter without `stats` has no
 * gauges (the dashboard then shows the ceiling as unknown).
 *
 * @example
 * ```ts
 * import { createGatewayMetrics, limiterGauges } from "./gateway_metrics.ts";
 * import { LocalLimiter } from "../limits/local_limiter.ts";
 *
 * const metrics = createGatewayMetrics();
 * const refresh = limiterGauges(metrics.registry, new LocalLimiter({ capacity: 64 }));
 * await refresh();
 * ```
 */
export function limiterGauges(
  registry: MetricsRegistry,
  limiter: Limiter,
): () => Promise<void> {
  const stats = limiter.stats?.bind(limiter);
  if (stats === undefined) return () => Promise.resolve();
  const inUse = registry.gauge(LIMITER_METRICS.inFlight, "Permits of the global limiter in use.");
  const capacity = registry.gauge(LIMITER_METRICS.ceiling, "Permits of the global limiter.");
  const waiting = registry.gauge(LIMITER_METRICS.waiting, "Acquirers waiting for a permit.");
  return async function refreshLimiterGauges() {
    const now = await stats();
    inUse.set({}, now.inUse);
    capacity.set({}, now.capacity);
    waiting.set({}, now.waiting);
  };
}
