/**
 * Hedging benchmark (issue "Hedged requests"): how much of the tail `hedge()` cuts, and at what
 * extra load, against the simulated downstream.
 *
 * Two latency distributions, both drawn by the downstream's seeded model (seed {@linkcode SEED}):
 *
 * - `downstream`: the simulated downstream as shipped — lognormal, median 5 ms, p99 200 ms, and
 *   one call in 1,000 sleeping 2 s.
 * - `one-percent-10x`: a tight body (lognormal, median 10 ms, p99 15 ms) where one call in 100
 *   takes 100 ms, 10× the median.
 *
 * Modes, each over the same keys (so the same primary draws): `none` (no hedging), `fixed`
 * (hedge after a fixed {@linkcode FIXED_DELAY_MS} ms), `fixed-unbudgeted` (the same without a
 * hedge budget: what the budget saves), and `adaptive-p95` (hedge after the downstream's own p95
 * from an `AdaptiveDelay`). Budgeted modes spend a `HedgeBudget` of 5 % (burst 10). A hedge
 * carries `attempt=1` so the downstream redraws its latency; the loser is aborted, which cancels
 * its sleep in the downstream.
 *
 * Each mode runs in-process (the downstream Hono app as the fetcher, one event loop) with an
 * open-model arrival of {@linkcode RATE} req/s: an untimed warm-up of {@linkcode WARMUP} calls
 * (which also fills the adaptive delay's first window) and then {@linkcode COUNT} timed calls,
 * latency counted from each call's intended send time. Extra load is the downstream's own count
 * of requests started beyond one per call. Results go to `bench/results/hedge-deno.json`; the
 * experiments report charts them. About 3 minutes.
 *
 * ```sh
 * deno task bench:hedge
 * ```
 *
 * @module
 */
import { createDownstream } from "../sim/downstream.ts";
import { AdaptiveDelay, hedge, HedgeBudget, type HedgeOptions } from "../src/hedging/mod.ts";
import { DownstreamStats } from "../sim/downstream_stats.ts";
import type { LatencyModelOptions } from "../sim/latency_model.ts";
import { writeResult } from "./_experiment.ts";
import { openLoop } from "./_open_loop.ts";
import { quantile } from "./_quantiles.ts";
import { currentRuntime, loadAverage, machine } from "./_runtime.ts";

/** Seed of every latency draw. */
const SEED = 42;
/** Timed calls per mode. */
const COUNT = 20_000;
/** Untimed calls before them. */
const WARMUP = 2_000;
/** Arrival rate, calls per second. */
const RATE = 1_000;
/** The fixed mode's delay: a round number an operator might pick. */
const FIXED_DELAY_MS = 20;
/** Share of primaries the budgeted modes may hedge. */
const BUDGET_RATIO = 0.05;

/** One distribution of the benchmark. */
interface Distribution {
  id: string;
  label: string;
  model: LatencyModelOptions;
}

const DISTRIBUTIONS: Distribution[] = [
  {
    id: "downstream",
    label: "simulated downstream: lognormal median 5 ms, p99 200 ms, 1 in 1,000 takes 2 s",
    model: { medianMs: 5, p99Ms: 200, tailEvery: 1000, tailMs: 2000 },
  },
  {
    id: "one-percent-10x",
    label: "lognormal median 10 ms, p99 15 ms; 1 in 100 takes 100 ms (10x)",
    model: { medianMs: 10, p99Ms: 15, tailEvery: 100, tailMs: 100 },
  },
];

type ModeId = "none" | "fixed" | "fixed-unbudgeted" | "adaptive-p95";
const MODES: ModeId[] = ["none", "fixed", "fixed-unbudgeted", "adaptive-p95"];

/** One mode's figures on one distribution. */
export interface HedgeCase {
  distribution: string;
  mode: ModeId;
  calls: number;
  p50: number;
  p95: number;
  p99: number;
  p999: number;
  max: number;
  /** Downstream requests started beyond one per call, as a share of calls. */
  extraLoad: number;
  hedgesSent: number;
  hedgesWon: number;
  /** Due hedges the budget refused. */
  budgetExhausted: number;
  /** The delay in force at the end (the adaptive one's last p95), in ms; absent for `none`. */
  delayMs?: number;
  /** Largest lag of the load generator behind schedule, in ms. */
  maxSendLagMs: number;
  failed: number;
}

function options(mode: ModeId): Omit<HedgeOptions<unknown>, "signal"> {
  switch (mode) {
    case "none":
      return { delay: 0, maxAttempts: 1 };
    case "fixed":
      return { delay: FIXED_DELAY_MS, budget: new HedgeBudget({ ratio: BUDGET_RATIO }) };
    case "fixed-unbudgeted":
      return { delay: FIXED_DELAY_MS };
    case "adaptive-p95":
      return {
        delay: new AdaptiveDelay({ quantile: 0.95 }),
        budget: new HedgeBudget({ ratio: BUDGET_RATIO }),
      };
  }
}

async function runCase(distribution: Distribution, mode: ModeId): Promise<HedgeCase> {
  const stats = new DownstreamStats();
  const app = createDownstream({ seed: SEED, stats, ...distribution.model });
  const hedging = options(mode);
  const counters = { sent: 0, won: 0, budgetExhausted: 0 };
  const call = (key: string, signal: AbortSignal) =>
    hedge(async (attemptSignal, attempt) => {
      const query = attempt > 1 ? `?attempt=${attempt - 1}` : "";
      const response = await app.fetch(
        new Request(`http://downstream.internal/price/${key}${query}`, { signal: attemptSignal }),
      );
      const body = await response.json();
      if (!response.ok) throw new Error(`downstream answered ${response.status}`);
      return body;
    }, {
      ...hedging,
      signal,
      onHedge: () => counters.sent++,
      onDeclined: (reason) => reason === "budget" && counters.budgetExhausted++,
    });

  await openLoop({
    count: WARMUP,
    ratePerSecond: RATE,
    send: async (index, signal) => ({ status: 200, body: await call(`warm-${index}`, signal) }),
  });
  await app.request("/stats/reset", { method: "POST" });
  Object.assign(counters, { sent: 0, won: 0, budgetExhausted: 0 });

  const samples = await openLoop({
    count: COUNT,
    ratePerSecond: RATE,
    send: async (index, signal) => {
      const { winner } = await call(`k-${index}`, signal);
      if (winner > 1) counters.won++;
      return { status: 200, body: undefined };
    },
  });
  const started = Object.values(stats.snapshot()).reduce(
    (sum, { served, aborted, inFlight }) => sum + served + aborted + inFlight,
    0,
  );
  const latencies = samples.map(({ latencyMs }) => latencyMs).sort((a, b) => a - b);
  const delay = hedging.delay;
  return {
    distribution: distribution.id,
    mode,
    calls: COUNT,
    p50: round(quantile(latencies, 0.5)),
    p95: round(quantile(latencies, 0.95)),
    p99: round(quantile(latencies, 0.99)),
    p999: round(quantile(latencies, 0.999)),
    max: round(latencies[latencies.length - 1]),
    extraLoad: round((started - COUNT) / COUNT, 4),
    hedgesSent: counters.sent,
    hedgesWon: counters.won,
    budgetExhausted: counters.budgetExhausted,
    delayMs: mode === "none"
      ? undefined
      : round(typeof delay === "number" ? delay : delay.delayMs()),
    maxSendLagMs: round(Math.max(...samples.map(({ sendLagMs }) => sendLagMs))),
    failed: samples.filter(({ status }) => status !== 200).length,
  };
}

function round(value: number, digits = 2): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function formatTable(cases: HedgeCase[]): string[] {
  const lines = [
    "| distribution | mode | p50 | p95 | p99 | p99.9 | extra load | hedges sent / won | budget exhausted | delay |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const c of cases) {
    lines.push(
      `| ${c.distribution} | ${c.mode} | ${c.p50} | ${c.p95} | ${c.p99} | ${c.p999} | ${
        (c.extraLoad * 100).toFixed(1)
      } % | ${c.hedgesSent} / ${c.hedgesWon} | ${c.budgetExhausted} | ${
        c.delayMs === undefined ? "–" : `${c.delayMs} ms`
      } |`,
    );
  }
  return lines;
}

const loadStart = loadAverage();
const began = performance.now();
const cases: HedgeCase[] = [];
for (const distribution of DISTRIBUTIONS) {
  for (const mode of MODES) {
    const result = await runCase(distribution, mode);
    cases.push(result);
    console.log(
      `${distribution.id} ${mode}: p99 ${result.p99} ms, p99.9 ${result.p999} ms, extra load ${
        (result.extraLoad * 100).toFixed(1)
      } %`,
    );
  }
}
const cuts = DISTRIBUTIONS.map(({ id }) => {
  const none = cases.find((c) => c.distribution === id && c.mode === "none")!;
  const adaptive = cases.find((c) => c.distribution === id && c.mode === "adaptive-p95")!;
  const p99Cut = round(none.p99 / adaptive.p99);
  return {
    distribution: id,
    p99Cut,
    p999Cut: round(none.p999 / adaptive.p999),
    extraLoad: adaptive.extraLoad,
    target: "p99 cut >= 5x with <= 5 % extra requests",
    met: p99Cut >= 5 && adaptive.extraLoad <= 0.05,
  };
});
const { name, version } = currentRuntime();
const report = {
  runtime: name,
  version,
  date: new Date().toISOString(),
  machine: machine(),
  seed: SEED,
  calls: COUNT,
  warmup: WARMUP,
  ratePerSecond: RATE,
  fixedDelayMs: FIXED_DELAY_MS,
  budgetRatio: BUDGET_RATIO,
  distributions: DISTRIBUTIONS,
  loadAverage: { start: loadStart, end: loadAverage() },
  cases,
  adaptiveVersusNone: cuts,
};
const written = writeResult(`hedge-${name}.json`, report);

console.log("");
for (const line of formatTable(cases)) console.log(line);
console.log("");
for (const cut of cuts) {
  console.log(
    `${cut.distribution}: adaptive p95 cuts p99 ${cut.p99Cut}x and p99.9 ${cut.p999Cut}x with ${
      (cut.extraLoad * 100).toFixed(1)
    } % extra requests; target (${cut.target}) ${cut.met ? "met" : "not met"}`,
  );
}
console.log(
  `seed ${SEED}; ${
    ((performance.now() - began) / 1000).toFixed(0)
  } s; load ${loadStart} → ${report.loadAverage.end}; wrote ${written}`,
);
