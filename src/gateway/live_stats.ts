/**
 * `LiveStats`: the dashboard's numbers — request rate, quantiles, degraded share, per-branch
 * latency and outcome mix over the last few seconds — computed from the gateway's own metrics
 * by keeping a short history of their snapshots and reading the difference.
 *
 * Nothing runs in the background (a Worker has no timers between requests): each
 * {@linkcode LiveStats.read} takes a snapshot and compares it with the one that opens the window.
 *
 * @module
 */
import {
  type GatewayMetrics,
  HEDGE_METRICS,
  LIMITER_METRICS,
  RETRY_METRICS,
} from "./gateway_metrics.ts";
import { ADMISSION_METRICS, BULKHEAD_LIMIT_METRIC } from "./overload_metrics.ts";
import { type Histogram, histogramQuantile, type MetricsRegistry } from "../metrics/mod.ts";

/**
 * One branch's numbers over the window.
 *
 * @example
 * ```ts
 * import type { BranchStats } from "./live_stats.ts";
 * const reviews: BranchStats = { count: 9, p50Ms: 6.2, p99Ms: 190, outcomes: { ok: 8, timeout: 1 } };
 * ```
 */
export interface BranchStats {
  /** Branches that ran to an outcome (skipped ones are not timed). */
  count: number;
  /** Median latency in ms; `null` when none ran. */
  p50Ms: number | null;
  /** 99th percentile latency in ms; `null` when none ran. */
  p99Ms: number | null;
  /** How many ended each way: `ok`, `error`, `timeout`, `skipped`, `aborted`, … */
  outcomes: Record<string, number>;
}

/**
 * What {@linkcode LiveStats.read} answers; served as JSON by `GET /api/stats`. Quantiles come
 * from the metrics' histogram buckets (5 ms, 10 ms, 25 ms, … 10 s), so they are estimates as
 * fine as those buckets.
 *
 * @example
 * ```ts
 * import type { LiveStatsReport } from "./live_stats.ts";
 * const report: LiveStatsReport = {
 *   windowS: 10,
 *   requests: { total: 120, ratePerS: 4, p50Ms: 7.5, p99Ms: 240, degradedShare: 0.1, statuses: { "200": 40 } },
 *   branches: { inFlight: 2, byName: {} },
 * };
 * ```
 */
export interface LiveStatsReport {
  /** Seconds the window actually spans (shorter just after start). */
  windowS: number;
  /** Requests of the counted route. */
  requests: {
    /** Since the process or isolate started. */
    total: number;
    /** Per second over the window. */
    ratePerS: number;
    /** Latency quantiles in ms over the window; `null` when no request finished in it. */
    p50Ms: number | null;
    p99Ms: number | null;
    /** Share of the window's 200 answers that lacked an optional branch; `null` without 200s. */
    degradedShare: number | null;
    /** Answers in the window by HTTP status. */
    statuses: Record<string, number>;
  };
  branches: {
    /** Branches started and not settled now, over all requests of this process or isolate. */
    inFlight: number;
    /** Each branch over the window, in registry order first. */
    byName: Record<string, BranchStats>;
  };
  /** The global limiter now; absent when the gateway has none. */
  limiter?: { inFlight?: number; ceiling?: number; waiting?: number };
  /** Hedges over the window; absent when the gateway does not hedge. */
  hedges?: { sent?: number; won?: number };
  /** Retries sent over the window; absent when no branch retries. */
  retries?: { sent: number };
  /**
   * Each breaker's state as of the last refresh of its gauges (`closed`, `half-open`, `open`),
   * by branch; absent when no branch has a breaker.
   */
  circuits?: Record<string, string>;
  /**
   * The inbound adaptive limit now (`limit`, its ceiling `maxLimit`, requests `inFlight` and
   * `waiting`) and requests it answered 503 over the window (`shed`); absent without one.
   */
  admission?: {
    limit?: number;
    maxLimit?: number;
    inFlight?: number;
    waiting?: number;
    shed: number;
  };
  /** Each downstream's bulkhead limit now, by branch; absent without bulkheads. */
  bulkheads?: Record<string, number>;
}

/**
 * Options of {@linkcode LiveStats}.
 *
 * @example
 * ```ts
 * import type { LiveStatsOptions } from "./live_stats.ts";
 * const options: LiveStatsOptions = { windowMs: 5000, branches: ["price", "reviews"] };
 * ```
 */
export interface LiveStatsOptions {
  /** How far back the window reaches, in ms; 10,000 by default. */
  windowMs?: number;
  /** The `route` label of the requests to count; `/product/:id` by default. */
  route?: string;
  /** Branch names to list (with zeros) even before they ran, in this order. */
  branches?: readonly string[];
  /** `performance.now()`-like clock when the history starts; `performance.now()` by default. */
  startedAt?: number;
}

interface HistogramTotals {
  buckets: number[];
  count: number;
}

interface Snapshot {
  at: number;
  statuses: Record<string, number>;
  latency: HistogramTotals;
  degraded: number;
  branchLatency: Record<string, HistogramTotals>;
  branchOutcomes: Record<string, Record<string, number>>;
  hedges: { sent?: number; won?: number };
  retries: number | undefined;
  admissionShed?: number;
}

/** Snapshots kept per window at most: one per `windowMs / HISTORY_STEPS`. */
const HISTORY_STEPS = 20;

/**
 * Rolling view of a gateway's metrics for a dashboard.
 *
 * @example
 * ```ts
 * import { createGatewayMetrics } from "./gateway_metrics.ts";
 * import { LiveStats } from "./live_stats.ts";
 *
 * const metrics = createGatewayMetrics();
 * const live = new LiveStats(metrics, { startedAt: 0 });
 * metrics.requests.inc({ route: "/product/:id", status: "200" });
 * metrics.requestDuration.observe({ route: "/product/:id" }, 0.008);
 * live.read(1000).requests.ratePerS; // 1
 * ```
 */
export class LiveStats {
  readonly #metrics: GatewayMetrics;
  readonly #windowMs: number;
  readonly #route: string;
  readonly #branches: readonly string[];
  #history: Snapshot[];

  /** Starts the history with a snapshot of `metrics` as they are now. */
  constructor(
    metrics: GatewayMetrics,
    { windowMs = 10_000, route = "/product/:id", branches = [], startedAt = performance.now() }:
      LiveStatsOptions = {},
  ) {
    if (!(windowMs > 0) || !Number.isFinite(windowMs)) {
      throw new RangeError(
        `Cannot keep live stats as 'windowMs' must be a positive finite number: current value is ${windowMs}`,
      );
    }
    this.#metrics = metrics;
    this.#windowMs = windowMs;
    this.#route = route;
    this.#branches = branches;
    this.#history = [this.#snapshot(startedAt)];
  }

  /** The numbers at `nowMs` (same clock as `startedAt`) over the last `windowMs`. */
  read(nowMs: number = performance.now()): LiveStatsReport {
    const now = this.#snapshot(nowMs);
    const history = this.#history;
    // Keep the newest snapshot at or before the window's start: it opens the window.
    while (history.length > 1 && history[1].at <= nowMs - this.#windowMs) history.shift();
    const base = history[0];
    if (nowMs - history[history.length - 1].at >= this.#windowMs / HISTORY_STEPS) {
      history.push(now);
    }
    return this.#compare(base, now);
  }

  #compare(base: Snapshot, now: Snapshot): LiveStatsReport {
    const seconds = Math.max(0, now.at - base.at) / 1000;
    const statuses = difference(now.statuses, base.statuses);
    const finished = Object.values(statuses).reduce((sum, n) => sum + n, 0);
    const latency = histogramDifference(now.latency, base.latency);
    const okCount = statuses["200"] ?? 0;
    const byName: Record<string, BranchStats> = {};
    const names = new Set([...this.#branches, ...Object.keys(now.branchOutcomes)]);
    for (const name of names) {
      const timed = histogramDifference(
        now.branchLatency[name] ?? emptyTotals(this.#metrics.branchDuration),
        base.branchLatency[name] ?? emptyTotals(this.#metrics.branchDuration),
      );
      byName[name] = {
        count: timed.count,
        ...quantilesMs(this.#metrics.branchDuration, timed),
        outcomes: difference(now.branchOutcomes[name] ?? {}, base.branchOutcomes[name] ?? {}),
      };
    }
    const report: LiveStatsReport = {
      windowS: round(seconds),
      requests: {
        total: Object.values(now.statuses).reduce((sum, n) => sum + n, 0),
        ratePerS: seconds === 0 ? 0 : round(finished / seconds),
        ...quantilesMs(this.#metrics.requestDuration, latency),
        degradedShare: okCount === 0 ? null : round((now.degraded - base.degraded) / okCount),
        statuses,
      },
      branches: { inFlight: sumOf(this.#metrics.branchesInFlight.samples()), byName },
    };
    const limiter = this.#limiter();
    if (limiter !== undefined) report.limiter = limiter;
    if (Object.keys(now.hedges).length > 0) {
      report.hedges = difference(now.hedges, base.hedges);
    }
    if (now.retries !== undefined) report.retries = { sent: now.retries - (base.retries ?? 0) };
    const circuits = this.#circuits();
    if (circuits !== undefined) report.circuits = circuits;
    if (now.admissionShed !== undefined) {
      const gauges: Omit<NonNullable<LiveStatsReport["admission"]>, "shed"> = {};
      for (const field of ["limit", "maxLimit", "inFlight", "waiting"] as const) {
        const value = readNamed(this.#metrics.registry, ADMISSION_METRICS[field], "gauge");
        if (value !== undefined) gauges[field] = value;
      }
      report.admission = { ...gauges, shed: now.admissionShed - (base.admissionShed ?? 0) };
    }
    const bulkheads = this.#metrics.registry.get(BULKHEAD_LIMIT_METRIC);
    if (bulkheads?.type === "gauge") {
      report.bulkheads = Object.fromEntries(
        bulkheads.samples().map(({ labels, value }) => [labels.branch, value]),
      );
    }
    return report;
  }

  #snapshot(at: number): Snapshot {
    const metrics = this.#metrics;
    const onRoute = ({ labels }: { labels: Record<string, string> }) =>
      labels.route === this.#route;
    const statuses: Record<string, number> = {};
    for (const { labels, value } of metrics.requests.samples().filter(onRoute)) {
      statuses[labels.status] = (statuses[labels.status] ?? 0) + value;
    }
    const branchLatency: Record<string, HistogramTotals> = {};
    for (const { labels, buckets, count } of metrics.branchDuration.samples()) {
      const totals = branchLatency[labels.branch] ??= emptyTotals(metrics.branchDuration);
      addInto(totals, buckets, count);
    }
    const branchOutcomes: Record<string, Record<string, number>> = {};
    for (const { labels, value } of metrics.branchOutcomes.samples()) {
      const outcomes = branchOutcomes[labels.branch] ??= {};
      outcomes[labels.outcome] = (outcomes[labels.outcome] ?? 0) + value;
    }
    const latency = emptyTotals(metrics.requestDuration);
    for (const { buckets, count } of metrics.requestDuration.samples().filter(onRoute)) {
      addInto(latency, buckets, count);
    }
    const hedges: Snapshot["hedges"] = {};
    for (const [field, name] of Object.entries(HEDGE_METRICS)) {
      const value = readNamed(metrics.registry, name, "counter");
      if (value !== undefined) hedges[field as keyof typeof HEDGE_METRICS] = value;
    }
    return {
      at,
      statuses,
      latency,
      degraded: sumOf(metrics.degraded.samples().filter(onRoute)),
      branchLatency,
      branchOutcomes,
      hedges,
      retries: readNamed(metrics.registry, RETRY_METRICS.sent, "counter"),
      admissionShed: readNamed(metrics.registry, ADMISSION_METRICS.shed, "counter"),
    };
  }

  #circuits(): LiveStatsReport["circuits"] {
    const gauge = this.#metrics.registry.get(RETRY_METRICS.circuitState);
    if (gauge === undefined || gauge.type !== "gauge") return undefined;
    const circuits: Record<string, string> = {};
    for (const { labels, value } of gauge.samples()) {
      if (value === 1) circuits[labels.branch] = labels.state;
    }
    return circuits;
  }

  #limiter(): LiveStatsReport["limiter"] {
    const limiter: NonNullable<LiveStatsReport["limiter"]> = {};
    for (const [field, name] of Object.entries(LIMITER_METRICS)) {
      const value = readNamed(this.#metrics.registry, name, "gauge");
      if (value !== undefined) limiter[field as keyof typeof LIMITER_METRICS] = value;
    }
    return Object.keys(limiter).length === 0 ? undefined : limiter;
  }
}

/** The sum of every series of the metric `name` when it is registered with `type`. */
function readNamed(
  registry: MetricsRegistry,
  name: string,
  type: "counter" | "gauge",
): number | undefined {
  const metric = registry.get(name);
  return metric === undefined || metric.type !== type ? undefined : sumOf(metric.samples());
}

function sumOf(samples: { value: number }[]): number {
  return samples.reduce((sum, { value }) => sum + value, 0);
}

function emptyTotals(histogram: Histogram): HistogramTotals {
  return { buckets: histogram.buckets.map(() => 0), count: 0 };
}

function addInto(totals: HistogramTotals, buckets: readonly number[], count: number): void {
  buckets.forEach((n, i) => totals.buckets[i] += n);
  totals.count += count;
}

function histogramDifference(now: HistogramTotals, base: HistogramTotals): HistogramTotals {
  return { buckets: now.buckets.map((n, i) => n - base.buckets[i]), count: now.count - base.count };
}

function difference<K extends string>(
  now: Partial<Record<K, number>>,
  base: Partial<Record<K, number>>,
): Record<K, number> {
  const result = {} as Record<K, number>;
  for (const key of Object.keys(now) as K[]) result[key] = now[key]! - (base[key] ?? 0);
  return result;
}

function quantilesMs(
  histogram: Histogram,
  { buckets, count }: HistogramTotals,
): { p50Ms: number | null; p99Ms: number | null } {
  const ms = (q: number) => {
    const seconds = histogramQuantile(q, histogram.buckets, buckets, count);
    return seconds === undefined ? null : round(seconds * 1000);
  };
  return { p50Ms: ms(0.5), p99Ms: ms(0.99) };
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
