/**
 * Experiment 12, overload: goodput and latency of the gateway from half its capacity to eight
 * times it, for three protections — none, the static 64-permit global ceiling (`npm start`
 * before overload protection), and the adaptive inbound limit with per-downstream bulkheads
 * (`npm start` now, on top of that ceiling) — and, beside them, what a user would write instead
 * of fanfare: a hand-written Hono handler that calls the five branches under one timeout behind a
 * counter of requests in flight, answering a fixed 503 at 128 (`hand-written`,
 * `limitedNaiveGateway` of `bench/_overhead_apps.ts`). It always waits for all five branches,
 * where fanfare's default skips optional ones it has no permit for: it does more per request.
 *
 * Over HTTP on 127.0.0.1: for each protection a gateway (`bench/_serve.ts gateway …
 * <protection>`) and a simulated downstream (seed 20240601, tail off), each in its own Deno
 * process, all eight running side by side; each load step visits the four gateways in turn, so
 * that a drift in the shared machine's load hits adjacent steps alike. Each step's open-model
 * generator (`bench/_open_loop.ts`) runs in a fresh process (`bench/_generate.ts`), on Bun
 * when it is installed (it needs about half the CPU Deno's `fetch` does), so that no step
 * inherits another's connections or memory.
 *
 * 1. Capacity, measured in this run against the static configuration: open-loop probes of
 *    `PROBE_SECONDS` at doubling rates from `PROBE_START`/s until goodput falls below half the
 *    offered rate twice in a row, then at 1.25, 1.5 and 1.75 times the best of them (doubling
 *    alone only brackets the peak); capacity is the most goodput seen. (A closed loop of 64
 *    clients, as `wrk -c64` in the issue, itself overloads a gateway on a busy machine and
 *    reads its collapse as its capacity.)
 * 2. Steps of `STEP_SECONDS` at 0.5×, 1×, 2×, 4× and 8× that capacity, each against every
 *    protection in turn, open loop (latency from the intended send time), client timeout 5 s,
 *    bestEffort, budget 1000 ms. Right after the 4× step, `RECOVERY_SECONDS` at 0.5× show how
 *    fast latency comes back (p50 per 500 ms against the earlier 0.5× step's p90). The gateway's
 *    `/metrics` is polled every 100 ms for its admission limit.
 *
 * Between steps each gateway drains: no branch in flight, it and its downstream idle (under a
 * tenth of a core), and fewer than 4,096 sockets in TIME_WAIT on the machine, for at most 90 s —
 * a collapsed gateway works through its backlog long after its clients gave up, and must not
 * share the cores (or the ephemeral ports) with the next step. Each step records
 * the cores used by the gateway, its downstream and the generator.
 *
 * Each step also reads the gateway's own counters from `/metrics` before it and once the gateway
 * has drained after it (the 4× step's therefore include its recovery step): the outcomes of the
 * required and of the optional branches, and the sheds of the admission limit and of the
 * bulkheads by reason — where the 502s and 503s came from.
 *
 * Goodput is 200 answers within the 1000 ms budget (from the intended send time) per second of
 * the step: a gateway without protection still answers 200 seconds late, after its requests
 * queued in its socket before its own budget clock started, and those answers are not good.
 * "Admitted" requests are all but the 503s (and the requests that got no answer at all); their
 * p99 is against the same budget.
 *
 * ```sh
 * deno task exp:overload
 * ADMISSION_MAX_LAG_MS=0 deno task exp:overload   # the adaptive gateway without its event-loop watch
 * ```
 *
 * @module
 */
import { Experiment } from "./_experiment.ts";
import { SEED } from "./_gateway_scenarios.ts";
import { DRAIN_MAX_MS, drained } from "./_drain.ts";
import { httpTarget, type LoadTarget } from "./_load_target.ts";
import type { ProductSummary } from "./_product_reply.ts";
import type { Sample } from "./_open_loop.ts";
import { generate, GENERATOR } from "./_generate.ts";
import { type Quantiles, summarize } from "./_quantiles.ts";
import { loadAverage } from "./_runtime.ts";

const PROBE_START = 25;
const PROBE_MAX = 6400;
const PROBE_SECONDS = 3;
const STEP_SECONDS = 5;
const RECOVERY_SECONDS = 3;
const MULTIPLIERS = [0.5, 1, 2, 4, 8];
const GUARD_MS = 5000;
const BUDGET_MS = 1000;
const POLL_MS = 100;
const PROTECTIONS = ["none", "static", "adaptive", "hand-written"] as const;
type Protection = typeof PROTECTIONS[number];

/** One step's figures. */
interface StepFigures {
  protection: Protection;
  multiplier: number;
  offeredPerSecond: number;
  achievedPerSecond: number;
  requests: number;
  statuses: Record<string, number>;
  /** 200 answers within the budget per second. */
  goodputPerSecond: number;
  /** Goodput over the capacity measured in this run. */
  goodputShare: number;
  admittedLatencyMs: Quantiles;
  shedLatencyMs: Quantiles;
  /** 503s from the generator's actual send (its own lag on a busy machine taken out). */
  shedFromSendMs: Quantiles;
  /** The 503s answered by admission, before anything ran (`{ error: "overloaded", reason }`). */
  admissionShedLatencyMs: Quantiles;
  /** 503s answered by the route: the ceiling's queue was full, or it kept a required branch out. */
  lateSheds: number;
  /** How late the generator sent, p99 and max in ms. */
  sendLagMs: { p99: number; max: number };
  /** 502s over admitted requests. */
  badGatewayShare: number;
  peakRssBytes: number;
  /**
   * Cores used over the step by the gateway, its downstream and the load generator (this
   * process): where a 2-core machine's time went.
   */
  cpuCores: { gateway: number; downstream: number; generator: number };
  /** How long the gateway took to drain after the step, in ms (null: not within the bound). */
  drainMs: number | null;
  /** The gateway's admission limit, polled (adaptive only): [ms since step start, limit]. */
  limitSeries: [number, number][];
  /**
   * The gateway's own counters over the step (read after it drained): outcomes of the required
   * branches (`price`, `inventory`) and of the others, admission and bulkhead sheds by reason.
   */
  counters: Record<string, number>;
  loadAverage: number;
}

/**
 * What came back after the 4× step: p50 per 500 ms bucket of the 0.5× step that followed, against
 * the p90 of the 0.5× step before the overload (a bucket's median within the old spread is back).
 */
interface Recovery {
  protection: Protection;
  baselineP90Ms: number;
  buckets: { fromMs: number; p50Ms: number; count: number }[];
  /** First bucket start from which every bucket's p50 stays at or below the baseline p90. */
  backToBaselineMs: number | null;
}

const exp = new Experiment("overload", SEED);

/**
 * The most 200 answers per second the static configuration gives within the budget: open-loop
 * probes of `PROBE_SECONDS` at doubling rates until goodput falls below half the offered rate
 * twice in a row, then at 1.25, 1.5 and 1.75 times the best of them, each once the gateway has
 * drained. An answer later than the budget does not count: a probe's backlog answered seconds
 * after it stopped sending would otherwise read as capacity.
 */
async function measureCapacity(target: LoadTarget): Promise<{ capacity: number; probes: Probe[] }> {
  const probes: Probe[] = [];
  const probe = async (rate: number) => {
    const { samples } = await step(target, rate, PROBE_SECONDS);
    const goodput = samples.filter((s) => s.status === 200 && s.latencyMs <= BUDGET_MS).length /
      PROBE_SECONDS;
    probes.push({ offeredPerSecond: rate, goodputPerSecond: goodput });
    exp.log(`  probe ${rate}/s: goodput ${goodput.toFixed(0)}/s`);
    return goodput;
  };
  let lagging = 0;
  for (let rate = PROBE_START; rate <= PROBE_MAX; rate *= 2) {
    const goodput = await probe(rate);
    // Noise on a shared machine dents single probes: stop only once two in a row clearly lag.
    lagging = goodput < 0.5 * rate ? lagging + 1 : 0;
    if (lagging === 2) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  // Doubling brackets the most goodput between the best probe's rate and twice it: a gateway
  // that held 1,593 of 1,600/s and 1,016 of 3,200/s (at d78c25e) may hold 2,000. Three probes
  // in between find it to within an eighth.
  const best = probes.reduce((a, b) => b.goodputPerSecond > a.goodputPerSecond ? b : a);
  for (const factor of [1.25, 1.5, 1.75]) {
    await drained(target);
    await probe(Math.round(best.offeredPerSecond * factor));
  }
  return { capacity: Math.max(...probes.map((p) => p.goodputPerSecond)), probes };
}

/** One capacity probe. */
interface Probe {
  offeredPerSecond: number;
  goodputPerSecond: number;
}

const COUNTED = [
  "fanfare_branch_outcomes_total",
  "fanfare_admission_shed_total",
  "fanfare_bulkhead_shed_total",
  "fanfare_admission_lag_backoffs_total",
];
const REQUIRED = new Set(["price", "inventory"]);

/**
 * The counters of `COUNTED` from the gateway's `/metrics`, summed by one label each: branch
 * outcomes as `required:<outcome>` / `optional:<outcome>`, sheds as `admission:<reason>` /
 * `bulkhead:<reason>`, and the admission limit's back-offs for a late event loop as
 * `admission:lag_backoffs`.
 */
async function counters(target: LoadTarget): Promise<Record<string, number>> {
  let text = "";
  try {
    text = await (await fetch(`${target.url}metrics`, { signal: AbortSignal.timeout(5000) }))
      .text();
  } catch {
    // Still too busy after its drain: this step goes without counters.
  }
  const sums: Record<string, number> = {};
  for (const match of text.matchAll(/^(fanfare_\w+)(?:\{([^}]*)\})? (\S+)$/gm)) {
    const [, name, labelText = "", value] = match;
    if (!COUNTED.includes(name)) continue;
    if (name === "fanfare_admission_lag_backoffs_total") {
      sums["admission:lag_backoffs"] = Number(value);
      continue;
    }
    const labels = Object.fromEntries(
      [...labelText.matchAll(/(\w+)="([^"]*)"/g)].map(([, k, v]) => [k, v]),
    );
    const key = name === "fanfare_branch_outcomes_total"
      ? `${REQUIRED.has(labels.branch) ? "required" : "optional"}:${labels.outcome}`
      : `${name.includes("bulkhead") ? "bulkhead" : "admission"}:${labels.reason}`;
    sums[key] = (sums[key] ?? 0) + Number(value);
  }
  return sums;
}

function difference(after: Record<string, number>, before: Record<string, number>) {
  return Object.fromEntries(
    Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]).filter(([, v]) => v !== 0),
  );
}

/**
 * Runs one open-loop step from a fresh generator process (`bench/_generator.ts`) while polling
 * the gateway's RSS and admission limit. The step's clock and CPU accounting start when the
 * generator says it is about to send.
 */
async function step(
  target: LoadTarget,
  rate: number,
  seconds: number,
): Promise<
  {
    samples: Sample[];
    peakRss: number;
    limits: [number, number][];
    wallS: number;
    cpuCores: StepFigures["cpuCores"];
  }
> {
  let peakRss = target.rssBytes();
  const limits: [number, number][] = [];
  let started = performance.now();
  let cpuBefore = target.cpuSeconds();
  let polling: Promise<void> | undefined;
  const poll = async () => {
    peakRss = Math.max(peakRss, target.rssBytes());
    try {
      const text = await (await fetch(`${target.url}metrics`, {
        signal: AbortSignal.timeout(1000),
      })).text();
      const limit = /^fanfare_admission_limit (\S+)$/m.exec(text)?.[1];
      if (limit !== undefined) limits.push([performance.now() - started, Number(limit)]);
    } catch {
      // An overloaded gateway may not answer its metrics in time; the step goes on.
    }
  };
  let timer: ReturnType<typeof setInterval> | undefined;
  try {
    const { samples, cpuSeconds } = await generate(target.url!, {
      ratePerSecond: rate,
      count: Math.round(rate * seconds),
      guardMs: GUARD_MS,
      budgetMs: BUDGET_MS,
      onStarted: () => {
        started = performance.now();
        cpuBefore = target.cpuSeconds();
        timer = setInterval(() => polling ??= poll().finally(() => polling = undefined), POLL_MS);
      },
    });
    const wallS = (performance.now() - started) / 1000;
    const cpuAfter = target.cpuSeconds();
    const cpuCores = {
      gateway: (cpuAfter.gateway - cpuBefore.gateway) / wallS,
      downstream: (cpuAfter.downstream - cpuBefore.downstream) / wallS,
      generator: cpuSeconds / wallS,
    };
    return { samples, peakRss, limits, wallS, cpuCores };
  } finally {
    clearInterval(timer);
    await polling;
  }
}

function figures(
  protection: Protection,
  multiplier: number,
  rate: number,
  capacity: number,
  { samples, peakRss, limits, cpuCores }: Awaited<ReturnType<typeof step>>,
  gatewayCounters: Record<string, number>,
  drainMs: number | null,
): StepFigures {
  const statuses: Record<string, number> = {};
  for (const s of samples) statuses[s.status] = (statuses[s.status] ?? 0) + 1;
  const admitted = samples.filter((s) => s.status !== 503 && s.status !== 0);
  const shed = samples.filter((s) => s.status === 503);
  const atAdmission = shed.filter((s) => (s.body as ProductSummary).shedAtAdmission);
  const last = samples.reduce((m, s) => Math.max(m, s.sendLagMs), 0);
  const sendSeconds = (samples.length - 1) / rate + last / 1000;
  const good = samples.filter((s) => s.status === 200 && s.latencyMs <= BUDGET_MS).length;
  const goodput = good / (samples.length / rate);
  return {
    protection,
    multiplier,
    offeredPerSecond: rate,
    achievedPerSecond: samples.length / Math.max(sendSeconds, 1 / rate),
    requests: samples.length,
    statuses,
    goodputPerSecond: goodput,
    goodputShare: goodput / capacity,
    admittedLatencyMs: summarize(admitted.map((s) => s.latencyMs)),
    shedLatencyMs: summarize(shed.map((s) => s.latencyMs)),
    shedFromSendMs: summarize(shed.map((s) => s.latencyMs - s.sendLagMs)),
    admissionShedLatencyMs: summarize(atAdmission.map((s) => s.latencyMs)),
    lateSheds: shed.length - atAdmission.length,
    sendLagMs: (({ p99, max }) => ({ p99, max }))(summarize(samples.map((s) => s.sendLagMs))),
    badGatewayShare: admitted.length === 0 ? 0 : (statuses["502"] ?? 0) / admitted.length,
    peakRssBytes: peakRss,
    cpuCores,
    drainMs,
    limitSeries: limits.map(([t, l]) => [Math.round(t), l]),
    counters: gatewayCounters,
    loadAverage: loadAverage(),
  };
}

function recovery(protection: Protection, baselineP90Ms: number, samples: Sample[], rate: number) {
  const bucketMs = 500;
  const buckets: Recovery["buckets"] = [];
  samples.forEach((_sample, i) => {
    const b = Math.floor((i * 1000 / rate) / bucketMs);
    (buckets[b] ??= { fromMs: b * bucketMs, p50Ms: 0, count: 0 }).count++;
  });
  for (const bucket of buckets) {
    const inBucket = samples.filter((_, i) =>
      Math.floor((i * 1000 / rate) / bucketMs) * bucketMs === bucket.fromMs
    );
    bucket.p50Ms = summarize(inBucket.map((s) => s.latencyMs)).p50;
  }
  let back: number | null = null;
  for (let i = buckets.length - 1; i >= 0; i--) {
    if (buckets[i].p50Ms <= baselineP90Ms) back = buckets[i].fromMs;
    else break;
  }
  return { protection, baselineP90Ms, buckets, backToBaselineMs: back } satisfies Recovery;
}

function line(f: StepFigures): string {
  const st = Object.entries(f.statuses).map(([k, v]) => `${k}×${v}`).join(" ");
  return `  ${f.protection} ${f.multiplier}× (${f.offeredPerSecond.toFixed(0)}/s offered, ${
    f.achievedPerSecond.toFixed(0)
  }/s sent): goodput ${f.goodputPerSecond.toFixed(0)}/s (${
    (f.goodputShare * 100).toFixed(0)
  } % of capacity); admitted p99 ${f.admittedLatencyMs.p99.toFixed(0)} ms; 503 p99 ${
    f.shedLatencyMs.p99.toFixed(0)
  } ms (admission's ${
    f.admissionShedLatencyMs.p99.toFixed(0)
  } ms; ${f.lateSheds} from the route); 502 ${
    (f.badGatewayShare * 100).toFixed(1)
  } % of admitted; ${st}; RSS ${(f.peakRssBytes / 2 ** 20).toFixed(0)} MB; limit ${
    f.limitSeries.length === 0
      ? "–"
      : `${Math.min(...f.limitSeries.map((p) => p[1]))}–${
        Math.max(...f.limitSeries.map((p) => p[1]))
      }`
  }; load ${f.loadAverage.toFixed(1)}\n    cores: gateway ${
    f.cpuCores.gateway.toFixed(2)
  }, downstream ${f.cpuCores.downstream.toFixed(2)}, generator ${
    f.cpuCores.generator.toFixed(2)
  }; drained in ${
    f.drainMs === null ? `more than ${DRAIN_MAX_MS}` : f.drainMs.toFixed(0)
  } ms\n    gateway: ${Object.entries(f.counters).map(([k, v]) => `${k}×${v}`).join(" ")}`;
}

// All four gateways run side by side, each in front of its own downstream, and every load
// step visits them in turn: on a shared machine whose load drifts by the minute, adjacent steps
// compare better than three sweeps run one after another.
const targets = new Map<Protection, LoadTarget>();
const steps: StepFigures[] = [];
const recoveries: Recovery[] = [];
let capacity = NaN;
let probes: Probe[] = [];
try {
  for (const protection of PROTECTIONS) {
    targets.set(protection, await httpTarget("healthy-default-timeouts", protection));
  }
  exp.log(
    `capacity: open-loop probes of ${PROBE_SECONDS} s at doubling rates, then at 1.25–1.75× the best, static, generator on ${GENERATOR}`,
  );
  await step(targets.get("static")!, PROBE_START, 4); // warm-up, untimed
  ({ capacity, probes } = await measureCapacity(targets.get("static")!));
  exp.log(`capacity ${capacity.toFixed(0)} answers/s (load ${loadAverage().toFixed(1)})`);
  const baselineP90 = new Map<Protection, number>();
  for (const [protection, target] of targets) {
    exp.log(`${protection}: warm-up at 0.5× for 2 s`);
    await step(target, capacity * 0.5, 2);
  }
  for (const multiplier of MULTIPLIERS) {
    for (const [protection, target] of targets) {
      const rate = capacity * multiplier;
      const before = await counters(target);
      const ran = await step(target, rate, STEP_SECONDS);
      // The recovery step must follow the 4× step at once: its counters include the recovery
      // step's (at 0.5×, a few hundred requests); every other step's are read once it drained.
      const after = multiplier === 4
        ? await step(target, capacity * 0.5, RECOVERY_SECONDS)
        : undefined;
      const drainMs = await drained(target);
      const f = figures(
        protection,
        multiplier,
        rate,
        capacity,
        ran,
        difference(await counters(target), before),
        drainMs,
      );
      steps.push(f);
      exp.log(line(f));
      if (multiplier === 0.5) baselineP90.set(protection, f.admittedLatencyMs.p90);
      if (after !== undefined) {
        const base = baselineP90.get(protection)!;
        const r = recovery(protection, base, after.samples, capacity * 0.5);
        recoveries.push(r);
        exp.log(
          `  ${protection} after 4×: p50 per 500 ms ${
            r.buckets.map((b) => b.p50Ms.toFixed(0)).join(" ")
          } ms (baseline p90 ${base.toFixed(0)}); back from ${r.backToBaselineMs ?? "never"} ms`,
        );
      }
    }
  }
} finally {
  await Promise.all([...targets.values()].map((target) => target.close()));
}

const at4 = steps.find((s) => s.protection === "adaptive" && s.multiplier === 4)!;
const adaptive = steps.filter((s) => s.protection === "adaptive");
const rec = recoveries.find((r) => r.protection === "adaptive");
const checks = [
  {
    name: "adaptive at 4×: goodput ÷ capacity",
    value: at4.goodputShare,
    goal: "≥ 0.8",
    pass: at4.goodputShare >= 0.8,
  },
  {
    name: "adaptive, every step: 503 p99 from intended send (ms)",
    value: Math.max(...adaptive.map((s) => s.shedLatencyMs.p99 || 0)),
    goal: "≤ 50",
    pass: adaptive.every((s) => !(s.shedLatencyMs.p99 > 50)),
  },
  {
    name: "adaptive, every step: admitted p99 (ms)",
    value: Math.max(...adaptive.map((s) => s.admittedLatencyMs.p99 || 0)),
    goal: `≤ ${BUDGET_MS}`,
    pass: adaptive.every((s) => !(s.admittedLatencyMs.p99 > BUDGET_MS)),
  },
  {
    name: "adaptive, every step: 502 share of admitted",
    value: Math.max(...adaptive.map((s) => s.badGatewayShare)),
    goal: "< 0.05",
    pass: adaptive.every((s) => s.badGatewayShare < 0.05),
  },
  {
    name: "adaptive, every step: gateway peak RSS (MB)",
    value: Math.max(...adaptive.map((s) => s.peakRssBytes)) / 2 ** 20,
    goal: "< 300",
    pass: adaptive.every((s) => s.peakRssBytes < 300 * 2 ** 20),
  },
  {
    name: "adaptive after 4×: p50 back within the 0.5× step's p90 (ms after the overload stopped)",
    value: rec?.backToBaselineMs ?? null,
    goal: "≤ 2000",
    pass: rec?.backToBaselineMs !== null && (rec?.backToBaselineMs ?? Infinity) <= 2000,
  },
];
for (const c of checks) {
  exp.log(`${c.pass ? "PASS" : "MISS"}  ${c.name}: ${c.value}, target ${c.goal}`);
}
const written = exp.write({
  description:
    "open-model sweep 0.5×–8× of measured capacity over HTTP, three protections: none, static ceiling, adaptive + bulkheads; and a hand-written handler with an in-flight counter",
  capacityPerSecond: capacity,
  capacityMethod:
    `the most 200s/s within the budget of open-loop probes of ${PROBE_SECONDS} s at doubling rates from ${PROBE_START}/s, then at 1.25, 1.5 and 1.75 times the best of them, static ceiling`,
  capacityProbes: probes,
  generator: GENERATOR,
  stepSeconds: STEP_SECONDS,
  budgetMs: BUDGET_MS,
  guardMs: GUARD_MS,
  steps,
  recoveries,
  checks,
});
exp.log(`wrote ${written}`);
