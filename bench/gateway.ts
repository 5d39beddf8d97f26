/**
 * Gateway latency benchmark (the issue's "Numbers"): what a scatter-gather of five branches
 * costs a request, and whether a 2 s straggler stays inside a 300 ms budget.
 *
 * Scenarios (`bench/_gateway_scenarios.ts`), all on the simulated downstream with a fixed seed
 * (median 5 ms, p99 200 ms lognormal, random 2 s tail off):
 *
 * 1. `healthy`: F=5 branches, budget 10000 ms and every per-branch timeout 10000 ms, so nothing
 *    is cut; request p50/p99 against each branch's (from the response's `timings`), against the
 *    slowest branch of each request and against the sum of the five.
 * 2. `healthy-default-timeouts`: the same with the default registry (200–300 ms per branch),
 *    which cuts the lognormal tail; reports how much it cuts.
 * 3. `straggler`: `reviews` sleeps 2 s on every call, bestEffort, budget 300 ms, per-branch
 *    timeouts 10000 ms so that the budget does the cutting; target: request p99 < budget + 20 ms.
 *
 * Each scenario runs twice with an open-model arrival (request `i` due at `i / rate`, latency
 * counted from that intended time): in-process (the gateway app's `fetch`, the downstream app
 * as its in-process fetcher; load generator, gateway and downstream share one event loop),
 * 2,000 requests at 200 req/s; then over HTTP on loopback, against a downstream process and one
 * gateway process per scenario (all Deno, `bench/_serve.ts`), 1,000 requests at 100 req/s.
 * Each mode starts with an untimed warm-up. Deno only (it spawns Deno processes). Results go to
 * `bench/results/gateway-<runtime>.json`; the whole run takes about 70 s.
 *
 * Caveat: over loopback the load generator, the downstream and the gateway compete for the same
 * cores, and the gateway's cut is a timer in a process that may be busy; on a 2-core machine the
 * straggler's loopback p99 lands close to its target, so read it together with the printed load.
 *
 * ```sh
 * deno task bench:gateway
 * ```
 *
 * @module
 */

import { createApp } from "../routes/app.ts";
import { createDownstream } from "../sim/downstream.ts";
import type { BranchCounters } from "../sim/downstream_stats.ts";
import { DownstreamStats } from "../sim/downstream_stats.ts";
import {
  BRANCHES,
  DEFAULT_TIMEOUTS_MS,
  DOWNSTREAM_OPTIONS,
  type Scenario,
  SCENARIOS,
  SEED,
  STRAGGLER,
} from "./_gateway_scenarios.ts";
import { openLoop, type Reply, type Sample } from "./_open_loop.ts";
import { type BenchProcess, startServe } from "./_processes.ts";
import { quantile, type Quantiles, summarize } from "./_quantiles.ts";
import { writeResult } from "./_experiment.ts";
import { currentRuntime, loadAverage, machine } from "./_runtime.ts";

/** The straggler target: request p99 below the budget plus this. */
const BUDGET_TOLERANCE_MS = 20;
/** Polls of the downstream's counters until nothing is in flight; with 20 ms apart, 2 s. */
const SETTLE_POLLS = 100;

type ModeId = "in-process" | "http";

interface Mode {
  id: ModeId;
  requests: number;
  ratePerSecond: number;
  warmupRequests: number;
}

const MODES: Record<ModeId, Mode> = {
  "in-process": { id: "in-process", requests: 2000, ratePerSecond: 200, warmupRequests: 400 },
  http: { id: "http", requests: 1000, ratePerSecond: 100, warmupRequests: 200 },
};

/** How one mode reaches a scenario's gateway and the downstream's counters. */
interface Target {
  send(path: string, signal: AbortSignal): Promise<Reply>;
  resetStats(): Promise<void>;
  stats(): Promise<Record<string, BranchCounters>>;
}

interface Timing {
  startMs?: number;
  endMs?: number;
  outcome: string;
}

interface GatewayBody {
  degraded?: string[];
  timings?: Record<string, Timing>;
}

interface Check {
  name: string;
  value: number;
  goal: string;
  pass: boolean;
}

interface ScenarioResult {
  mode: ModeId;
  scenario: Scenario["id"];
  label: string;
  policy: string;
  budgetMs: number;
  timeoutsMs: Record<string, number>;
  requests: number;
  ratePerSecond: number;
  wallSeconds: number;
  statuses: Record<string, number>;
  /** Requests that got no HTTP answer at all, with the first reason. */
  transportErrors: { count: number; first?: string };
  sendLagMs: { p99: number; max: number };
  /** Intended send time → body read. */
  request: Quantiles;
  /** Per request: when its last branch ended, from the gateway's arrival (response timings). */
  slowestBranchEnd: Quantiles;
  /** Per request: the sum of its five branch durations, what a sequential join would wait. */
  sumOfBranches: Quantiles;
  /** Per request: request latency minus its slowest branch's end. */
  overheadMs: Quantiles;
  /** Per branch: durations (end − start, cut calls at their cut) and outcomes. */
  branches: Record<string, { durationMs: Quantiles; outcomes: Record<string, number> }>;
  /** All branch durations pooled, at 0.99^(1/5) ≈ 0.998: the p99 of the max of 5 i.i.d. draws. */
  pooledBranchP998Ms: number;
  /** Branch calls that took longer than the default registry's timeout for that branch. */
  overDefaultTimeout: Record<string, number>;
  /** Requests answered 200 with at least one branch missing, over all requests. */
  degradedShare: number;
  /**
   * The downstream's per-branch counters over the scenario, once nothing is in flight. It honours
   * the forwarded budget header: a call it ends itself with a 504 at the budget counts as served.
   */
  downstream: Record<string, BranchCounters>;
  /** Downstream calls still in flight right after the scenario's last answer. */
  downstreamInFlightAtEnd: number;
  checks: Check[];
}

function fmt(ms: number): string {
  return Number.isNaN(ms) ? "n/a" : ms.toFixed(1);
}

function pct(share: number): string {
  return `${(share * 100).toFixed(2)} %`;
}

function productPath(scenario: Scenario, id: string): string {
  return `/product/${id}?policy=${scenario.policy}&budget=${scenario.budgetMs}`;
}

async function readReply(response: Response): Promise<Reply> {
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: response.status, body };
}

function count(record: Record<string, number>, key: string): void {
  record[key] = (record[key] ?? 0) + 1;
}

function analyze(
  mode: Mode,
  scenario: Scenario,
  samples: Sample[],
  wallSeconds: number,
  [atEnd, downstream]: Record<string, BranchCounters>[],
): ScenarioResult {
  const statuses: Record<string, number> = {};
  const durations: Record<string, number[]> = {};
  const outcomes: Record<string, Record<string, number>> = {};
  const overDefaultTimeout: Record<string, number> = {};
  for (const name of BRANCHES) {
    durations[name] = [];
    outcomes[name] = {};
    overDefaultTimeout[name] = 0;
  }
  const slowest: number[] = [];
  const sums: number[] = [];
  const overhead: number[] = [];
  let degraded = 0;
  let transportErrors = 0;
  let firstError: string | undefined;
  for (const sample of samples) {
    count(statuses, String(sample.status));
    if (sample.error !== undefined) {
      transportErrors++;
      firstError ??= sample.error;
    }
    const body = sample.body as GatewayBody | undefined;
    if (sample.status === 200 && (body?.degraded?.length ?? 0) > 0) degraded++;
    const timings = body?.timings;
    if (timings === undefined) continue;
    let lastEnd = 0;
    let sum = 0;
    for (const name of BRANCHES) {
      const timing = timings[name];
      if (timing === undefined) continue;
      count(outcomes[name], timing.outcome);
      if (timing.startMs === undefined || timing.endMs === undefined) continue;
      const duration = timing.endMs - timing.startMs;
      durations[name].push(duration);
      sum += duration;
      lastEnd = Math.max(lastEnd, timing.endMs);
      if (duration > DEFAULT_TIMEOUTS_MS[name]) overDefaultTimeout[name]++;
    }
    slowest.push(lastEnd);
    sums.push(sum);
    overhead.push(sample.latencyMs - lastEnd);
  }
  const pooled = Object.values(durations).flat().sort((a, b) => a - b);
  const sendLag = summarize(samples.map((s) => s.sendLagMs));
  const result: ScenarioResult = {
    mode: mode.id,
    scenario: scenario.id,
    label: scenario.label,
    policy: scenario.policy,
    budgetMs: scenario.budgetMs,
    timeoutsMs: scenario.timeoutsMs,
    requests: samples.length,
    ratePerSecond: mode.ratePerSecond,
    wallSeconds,
    statuses,
    transportErrors: { count: transportErrors, first: firstError },
    sendLagMs: { p99: sendLag.p99, max: sendLag.max },
    request: summarize(samples.map((s) => s.latencyMs)),
    slowestBranchEnd: summarize(slowest),
    sumOfBranches: summarize(sums),
    overheadMs: summarize(overhead),
    branches: Object.fromEntries(
      BRANCHES.map((name) => [name, {
        durationMs: summarize(durations[name]),
        outcomes: outcomes[name],
      }]),
    ),
    pooledBranchP998Ms: quantile(pooled, 0.99 ** (1 / BRANCHES.length)),
    overDefaultTimeout,
    degradedShare: degraded / samples.length,
    downstream,
    downstreamInFlightAtEnd: Object.values(atEnd).reduce((sum, c) => sum + c.inFlight, 0),
    checks: [],
  };
  result.checks = checks(result, scenario);
  return result;
}

function checks(result: ScenarioResult, scenario: Scenario): Check[] {
  const p99 = result.request.p99;
  if (scenario.id === "straggler") {
    const limit = scenario.budgetMs + BUDGET_TOLERANCE_MS;
    return [{ name: "request p99", value: p99, goal: `< ${limit} ms`, pass: p99 < limit }];
  }
  if (scenario.id !== "healthy") return [];
  const sumOfP99s = BRANCHES.reduce((s, name) => s + result.branches[name].durationMs.p99, 0);
  const slowestP99 = result.slowestBranchEnd.p99;
  return [
    {
      name: "request p99 vs the sum of the per-branch p99s",
      value: p99,
      goal: `< ${fmt(sumOfP99s)} ms`,
      pass: p99 < sumOfP99s,
    },
    {
      name: "request p99 vs the p99 of each request's slowest branch",
      value: p99,
      goal: `≤ ${fmt(slowestP99 + BUDGET_TOLERANCE_MS)} ms (+${BUDGET_TOLERANCE_MS})`,
      pass: p99 <= slowestP99 + BUDGET_TOLERANCE_MS,
    },
  ];
}

function row(name: string, q: Quantiles, extra = ""): string {
  const cells = [q.p50, q.p90, q.p99, q.p999, q.max].map((v) => fmt(v).padStart(8)).join("");
  return `    ${name.padEnd(26)}${cells}  ${extra}`;
}

function formatResult(r: ScenarioResult): string[] {
  const statuses = Object.entries(r.statuses).map(([s, n]) => `${s}×${n}`).join(" ");
  const lines = [
    `  ${r.mode} · ${r.scenario}: ${r.label}`,
    `    ${r.requests} requests at ${r.ratePerSecond} req/s in ${r.wallSeconds.toFixed(1)} s; ` +
    `statuses ${statuses}; degraded ${pct(r.degradedShare)}; ` +
    `send lag p99 ${fmt(r.sendLagMs.p99)} ms, max ${fmt(r.sendLagMs.max)} ms` +
    (r.transportErrors.count > 0
      ? `; ${r.transportErrors.count} without answer (${r.transportErrors.first})`
      : ""),
    `    ${"ms".padEnd(26)}${
      ["p50", "p90", "p99", "p99.9", "max"].map((h) => h.padStart(8)).join("")
    }`,
    row("request", r.request),
    row("slowest branch (its end)", r.slowestBranchEnd),
    row("sum of the 5 branches", r.sumOfBranches),
    row("request − slowest end", r.overheadMs),
  ];
  const downstreamNote =
    `    downstream: ${r.downstreamInFlightAtEnd} calls still in flight after the last answer; ` +
    `"served" includes its own 504 at the forwarded budget, "aborted" the calls the gateway cut first`;
  for (const name of BRANCHES) {
    const { durationMs, outcomes } = r.branches[name];
    const outcomeText = Object.entries(outcomes).map(([o, n]) => `${o} ${n}`).join(", ");
    const ds = r.downstream[name];
    const dsText = ds === undefined
      ? ""
      : `; downstream served ${ds.served}, aborted ${ds.aborted}`;
    lines.push(row(`branch ${name}`, durationMs, `${outcomeText}${dsText}`));
  }
  if (r.scenario === "healthy") {
    const calls = BRANCHES.length * r.requests;
    const over = Object.values(r.overDefaultTimeout).reduce((a, b) => a + b, 0);
    const maxP99 = Math.max(...BRANCHES.map((n) => r.branches[n].durationMs.p99));
    const sumP99 = BRANCHES.reduce((s, n) => s + r.branches[n].durationMs.p99, 0);
    lines.push(
      `    request p99 ${fmt(r.request.p99)} ms; slowest per-branch p99 ${fmt(maxP99)} ms; ` +
        `sum of the five p99s ${fmt(sumP99)} ms; p99 of each request's slowest branch ` +
        `${fmt(r.slowestBranchEnd.p99)} ms`,
      `    the five branches are independent draws, so the p99 of their max is a branch's ` +
        `p99.8 (0.99^(1/5)): pooled branch p99.8 = ${fmt(r.pooledBranchP998Ms)} ms`,
      `    the default registry's timeouts (price/inventory 300, recommendations 250, ` +
        `reviews/shipping 200 ms) would have cut ${over} of ${calls} branch calls ` +
        `(${pct(over / calls)}): ${
          BRANCHES.map((n) => `${n} ${r.overDefaultTimeout[n]}`).join(", ")
        }`,
    );
  }
  lines.push(downstreamNote);
  for (const c of r.checks) {
    lines.push(`    ${c.pass ? "PASS" : "MISS"}  ${c.name}: ${fmt(c.value)} ms, target ${c.goal}`);
  }
  return lines;
}

/** The downstream's counters now, then once nothing is in flight (or after 2 s). */
async function settledStats(target: Target): Promise<Record<string, BranchCounters>[]> {
  const atEnd = await target.stats();
  let snapshot = atEnd;
  for (let poll = 0; poll < SETTLE_POLLS; poll++) {
    if (Object.values(snapshot).every((c) => c.inFlight === 0)) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
    snapshot = await target.stats();
  }
  return [atEnd, snapshot];
}

async function warmUp(mode: Mode, scenario: Scenario, target: Target): Promise<void> {
  const started = performance.now();
  await openLoop({
    count: mode.warmupRequests,
    ratePerSecond: mode.ratePerSecond * 2,
    send: (i, signal) => target.send(productPath(scenario, `warm-${i}`), signal),
  });
  console.log(
    `  ${mode.id} · warm-up: ${mode.warmupRequests} untimed requests on ${scenario.id} ` +
      `(${((performance.now() - started) / 1000).toFixed(1)} s)`,
  );
}

async function runScenario(mode: Mode, scenario: Scenario, target: Target) {
  await target.resetStats();
  console.log(
    `  ${mode.id} · ${scenario.id}: ${mode.requests} requests at ${mode.ratePerSecond} req/s …`,
  );
  const started = performance.now();
  const samples = await openLoop({
    count: mode.requests,
    ratePerSecond: mode.ratePerSecond,
    send: (i, signal) => target.send(productPath(scenario, `sku-${i}`), signal),
    onProgress: (sent) => {
      if (sent < mode.requests) console.log(`    sent ${sent}/${mode.requests}`);
    },
  });
  const wallSeconds = (performance.now() - started) / 1000;
  const result = analyze(mode, scenario, samples, wallSeconds, await settledStats(target));
  console.log(formatResult(result).join("\n"));
  return result;
}

async function runInProcess(): Promise<ScenarioResult[]> {
  const mode = MODES["in-process"];
  const stats = new DownstreamStats();
  const downstream = createDownstream({ ...DOWNSTREAM_OPTIONS, stats });
  const results: ScenarioResult[] = [];
  for (const [i, scenario] of SCENARIOS.entries()) {
    const app = createApp({ registry: scenario.registry(downstream) });
    const target: Target = {
      send: async (pathAndQuery, signal) =>
        readReply(
          await app.fetch(new Request(`http://gateway.internal${pathAndQuery}`, { signal })),
        ),
      resetStats: () => Promise.resolve(stats.reset()),
      stats: () => Promise.resolve(stats.snapshot()),
    };
    if (i === 0) await warmUp(mode, scenario, target);
    results.push(await runScenario(mode, scenario, target));
  }
  return results;
}

async function runOverHttp(): Promise<ScenarioResult[]> {
  const mode = MODES.http;
  const processes: BenchProcess[] = [];
  const results: ScenarioResult[] = [];
  try {
    const downstream = await startServe("downstream", [], "stats");
    processes.push(downstream);
    const gateways = await Promise.all(
      SCENARIOS.map((s) => startServe("gateway", [s.id, downstream.url], "metrics")),
    );
    processes.push(...gateways);
    console.log(
      `  http: downstream on ${downstream.url}, gateways on ${
        gateways.map((g, i) => `${g.url} (${SCENARIOS[i].id})`).join(", ")
      }`,
    );
    const statsUrl = `${downstream.url}stats`;
    for (const [i, scenario] of SCENARIOS.entries()) {
      const base = gateways[i].url.replace(/\/$/, "");
      const target: Target = {
        send: async (pathAndQuery, signal) =>
          readReply(await fetch(`${base}${pathAndQuery}`, { signal })),
        resetStats: async () => {
          await (await fetch(`${statsUrl}/reset`, { method: "POST" })).body?.cancel();
        },
        stats: async () => (await (await fetch(statsUrl)).json()).branches,
      };
      await warmUp(mode, scenario, target);
      results.push(await runScenario(mode, scenario, target));
    }
  } finally {
    const statuses = await Promise.all(processes.map((p) => p.stop()));
    const failed = statuses.filter((s) => !s.success && s.signal !== "SIGTERM").length;
    console.log(
      `  http: stopped ${processes.length} processes` + (failed > 0 ? `, ${failed} failed` : ""),
    );
  }
  return results;
}

const runtime = currentRuntime();
const versions = Deno.version;
const loadAtStart = loadAverage();
const startedAt = performance.now();
console.log(
  `gateway benchmark on ${runtime.name} ${runtime.version} (V8 ${versions.v8}), seed ${SEED}, ` +
    `downstream median 5 ms / p99 200 ms lognormal, random tail off; ` +
    `${machine().cores} cores, 1-min load ${loadAtStart.toFixed(2)}`,
);
console.log(
  `  note: the default registry's per-branch timeouts (200-300 ms) sit at the downstream's p99, ` +
    `so they cut the lognormal tail; the 'healthy' scenario uses 10000 ms timeouts instead and ` +
    `'healthy-default-timeouts' reports what the defaults cut`,
);
const results = [...await runInProcess(), ...await runOverHttp()];
const report = {
  benchmark: "gateway",
  runtime: runtime.name,
  version: runtime.version,
  v8: versions.v8,
  typescript: versions.typescript,
  date: new Date().toISOString(),
  command: "deno task bench:gateway",
  machine: machine(),
  loadAverage: { start: loadAtStart, end: loadAverage() },
  seed: SEED,
  downstreamModel: {
    medianMs: 5,
    p99Ms: 200,
    tailEvery: DOWNSTREAM_OPTIONS.tailEvery,
    tailMs: 2000,
    straggler: STRAGGLER,
  },
  defaultTimeoutsMs: DEFAULT_TIMEOUTS_MS,
  budgetToleranceMs: BUDGET_TOLERANCE_MS,
  modes: MODES,
  results,
};
const written = writeResult(`gateway-${runtime.name}.json`, report);
const misses = results.flatMap((r) =>
  r.checks.filter((c) => !c.pass).map((c) => `${r.mode} ${r.scenario} ${c.name}`)
);
console.log(
  `done in ${((performance.now() - startedAt) / 1000).toFixed(1)} s; wrote ${written}` +
    (misses.length > 0 ? `; MISSES: ${misses.join("; ")}` : "; all checks pass"),
);
