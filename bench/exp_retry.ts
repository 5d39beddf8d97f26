/**
 * Experiment 11, retries, circuit breakers and supervised workers.
 *
 * Part 1, the gateway in process over the simulated downstream (seeded, no injected tail), with
 * the `reviews` downstream made faulty by a seeded wrapper: `flaky` answers 50 % of its calls a
 * fast 503, `down` answers every call a fast 503. Each case runs without policies and with
 * `guardBranches()` on every branch (proportional breaker: ≥ 90 % of ≥ 20 calls in 10 s, a probe
 * a second; retry budget 50 % + 10; 2 attempts a call). Requests are offered open-loop at 50/s,
 * 1,000 per run (20 s, so a breaker that opened shows its probe rate; a rate low enough that a
 * shared machine serves it without timeouts of its own, which would count against every
 * breaker), rounds alternate the cases. Figures: answers with reviews present, downstream calls per branch (extra load against
 * the same case without policies), when the breaker first opened (in reviews calls), reviews
 * calls per second once it was open, and the other branches' p50/p99 against the healthy runs.
 *
 * Part 2, `enrich` (the CLI, a subprocess per run): the same job with and without 1 in 100,000
 * tasks crashing its worker once; the checksums must be equal. 50M tasks by default;
 * `--enrich-tasks=N` runs fewer on a busy machine (the JSON records the count).
 *
 * ```sh
 * deno task exp:retry
 * deno task exp:retry -- --enrich-tasks=10000000
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { createDownstream } from "../sim/downstream.ts";
import { CircuitBreaker } from "../src/resilience/mod.ts";
import {
  type BranchRegistry,
  DEFAULT_BRANCH_BREAKER,
  defaultRegistry,
  type Fetcher,
  guardBranches,
  scatterGather,
} from "../src/gateway/mod.ts";
import { Experiment } from "./_experiment.ts";
import { BRANCHES, DOWNSTREAM_OPTIONS, SEED } from "./_gateway_scenarios.ts";
import { median, summarize } from "./_quantiles.ts";

const ROUNDS = 2;
const BUDGET_MS = 1_000;
const FAULTY = "reviews";
const CRASH_EVERY = 100_000;

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    rate: { type: "string" },
    requests: { type: "string" },
    "enrich-tasks": { type: "string" },
    "skip-enrich": { type: "boolean" },
  },
});
const RATE = Number(args.rate ?? 50);
const REQUESTS = Number(args.requests ?? 1_000);
const ENRICH_TASKS = Number(args["enrich-tasks"] ?? 50_000_000);

type Fault = "none" | "flaky" | "down";
interface Case {
  id: string;
  fault: Fault;
  guarded: boolean;
}
const CASES: Case[] = [
  { id: "healthy", fault: "none", guarded: false },
  { id: "flaky, no policies", fault: "flaky", guarded: false },
  { id: "flaky, retries + breaker", fault: "flaky", guarded: true },
  { id: "down, no policies", fault: "down", guarded: false },
  { id: "down, retries + breaker", fault: "down", guarded: true },
];

/** mulberry32: a small seeded generator, so the flaky downstream fails the same calls each run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface RunResult {
  case: string;
  round: number;
  requests: number;
  /** Requests whose answer has the faulty branch's data. */
  faultyAnswered: number;
  /** Downstream calls per branch. */
  calls: Record<string, number>;
  /** Reviews calls sent up to and including the one whose failure opened the breaker. */
  openedAfterCalls?: number;
  /** Reviews calls per second from the first opening to the end of the run. */
  callsPerSecondWhileOpen?: number;
  /** Per branch: p50 and p99 of its duration in ms over the run (ok branches). */
  branchLatency: Record<string, { p50: number; p99: number; count: number }>;
  outcomes: Record<string, Record<string, number>>;
  retriesSent: number;
  wallMs: number;
}

async function runCase(spec: Case, round: number): Promise<RunResult> {
  const downstream = createDownstream({ ...DOWNSTREAM_OPTIONS });
  const random = seeded(SEED + round);
  const calls: Record<string, number> = Object.fromEntries(BRANCHES.map((b) => [b, 0]));
  const guards = spec.guarded ? guardBranches(BRANCHES) : undefined;
  let openedAfterCalls: number | undefined;
  let openedAt: number | undefined;
  if (guards !== undefined) {
    // The same breaker, watched: note the reviews call whose failure first opened it.
    guards[FAULTY].breaker = new CircuitBreaker({
      ...DEFAULT_BRANCH_BREAKER,
      onStateChange: (to) => {
        if (to !== "open" || openedAt !== undefined) return;
        openedAfterCalls = calls[FAULTY];
        openedAt = performance.now();
      },
    });
  }
  const faulty: Fetcher = {
    fetch(request) {
      const branch = new URL(request.url).pathname.split("/")[1];
      calls[branch]++;
      if (branch === FAULTY) {
        const fail = spec.fault === "down" || (spec.fault === "flaky" && random() < 0.5);
        if (fail) return new Response("unavailable", { status: 503 });
      }
      return downstream.fetch(request);
    },
  };
  const registry: BranchRegistry = defaultRegistry(faulty, { resilience: guards });
  const started = performance.now();
  const pending: Promise<void>[] = [];
  const durations: Record<string, number[]> = Object.fromEntries(BRANCHES.map((b) => [b, []]));
  const outcomes: Record<string, Record<string, number>> = {};
  let faultyAnswered = 0;
  let retriesSent = 0;
  for (let i = 0; i < REQUESTS; i++) {
    const due = started + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    pending.push(
      scatterGather(registry, `sku-${i}`, { budgetMs: BUDGET_MS }).then((report) => {
        if (report.data[FAULTY] !== undefined) faultyAnswered++;
        for (const [name, b] of Object.entries(report.branches)) {
          (outcomes[name] ??= {})[b.outcome] = (outcomes[name][b.outcome] ?? 0) + 1;
          if (b.outcome === "ok") durations[name].push(b.endMs! - b.startMs!);
          retriesSent += b.retries ?? 0;
        }
      }),
    );
  }
  await Promise.all(pending);
  const ended = performance.now();
  const openSeconds = openedAt === undefined ? 0 : (ended - openedAt) / 1000;
  return {
    case: spec.id,
    round,
    requests: REQUESTS,
    faultyAnswered,
    calls,
    openedAfterCalls,
    callsPerSecondWhileOpen: openedAt === undefined
      ? undefined
      : (calls[FAULTY] - openedAfterCalls!) / openSeconds,
    branchLatency: Object.fromEntries(
      BRANCHES.map((b) => {
        const q = summarize(durations[b]);
        return [b, { p50: q.p50, p99: q.p99, count: durations[b].length }];
      }),
    ),
    outcomes,
    retriesSent,
    wallMs: ended - started,
  };
}

const exp = new Experiment("retry", SEED);
const runs: RunResult[] = [];
for (let round = 1; round <= ROUNDS; round++) {
  for (const spec of CASES) {
    exp.log(`round ${round}/${ROUNDS}, ${spec.id}: ${REQUESTS} requests at ${RATE}/s`);
    const run = await runCase(spec, round);
    runs.push(run);
    exp.log(
      `  reviews answered ${run.faultyAnswered}/${run.requests}, calls ${
        JSON.stringify(run.calls)
      }, retries ${run.retriesSent}` +
        (run.openedAfterCalls === undefined
          ? ""
          : `, breaker opened after ${run.openedAfterCalls} reviews calls, then ${
            run.callsPerSecondWhileOpen!.toFixed(2)
          } calls/s`),
    );
  }
}

const sum = (record: Record<string, number>) => Object.values(record).reduce((a, b) => a + b, 0);
const of = (id: string) => runs.filter((r) => r.case === id);
/** Per case, medians over rounds of the figures the checks use. */
const byCase = Object.fromEntries(CASES.map(({ id }) => {
  const rs = of(id);
  return [id, {
    answeredShare: median(rs.map((r) => r.faultyAnswered / r.requests)),
    callsTotal: median(rs.map((r) => sum(r.calls))),
    callsFaulty: median(rs.map((r) => r.calls[FAULTY])),
    openedAfterCalls: rs.every((r) => r.openedAfterCalls !== undefined)
      ? Math.max(...rs.map((r) => r.openedAfterCalls!))
      : undefined,
    callsPerSecondWhileOpen: rs.every((r) => r.callsPerSecondWhileOpen !== undefined)
      ? median(rs.map((r) => r.callsPerSecondWhileOpen!))
      : undefined,
    otherP50: median(
      rs.flatMap((r) => BRANCHES.filter((b) => b !== FAULTY).map((b) => r.branchLatency[b].p50)),
    ),
    otherP99: median(
      rs.flatMap((r) => BRANCHES.filter((b) => b !== FAULTY).map((b) => r.branchLatency[b].p99)),
    ),
  }];
}));

const flakyPlain = byCase["flaky, no policies"];
const flakyGuarded = byCase["flaky, retries + breaker"];
const downGuarded = byCase["down, retries + breaker"];
const healthy = byCase.healthy;
const extraLoad = flakyGuarded.callsTotal / flakyPlain.callsTotal - 1;
const recovered = (flakyGuarded.answeredShare - flakyPlain.answeredShare) /
  (1 - flakyPlain.answeredShare);
const checks = [
  {
    name: "flaky: share of the failed reviews answers that retries recover",
    value: recovered,
    goal: "most; ≤ 0.5 is the ceiling of one retry when each attempt fails half the time",
    pass: recovered > 0.5,
  },
  {
    name: "flaky: extra downstream calls over all branches",
    value: extraLoad,
    goal: "≤ 0.10",
    pass: extraLoad <= 0.1,
  },
  {
    name: "down: reviews calls until the breaker opened (worst round)",
    value: downGuarded.openedAfterCalls ?? NaN,
    goal: "≤ 20 (its minimum of calls)",
    pass: (downGuarded.openedAfterCalls ?? Infinity) <= 20,
  },
  {
    name: "down: reviews calls per second while open",
    value: downGuarded.callsPerSecondWhileOpen ?? NaN,
    goal: "≈ 1 (the probe rate: one per openMs of 1 s)",
    pass: (downGuarded.callsPerSecondWhileOpen ?? Infinity) <= 1.5,
  },
  {
    name: "down + breaker: other branches' p99 ÷ healthy",
    value: downGuarded.otherP99 / healthy.otherP99,
    goal: "≈ 1 (noise of a shared machine: within ±25 %)",
    pass: Math.abs(downGuarded.otherP99 / healthy.otherP99 - 1) <= 0.25,
  },
];
for (const c of checks) {
  exp.log(`${c.pass ? "PASS" : "MISS"}  ${c.name}: ${c.value.toFixed(3)}, target ${c.goal}`);
}

// Part 2: enrich, clean and with crashes, as subprocesses.
interface EnrichRun {
  crashEvery: number;
  processed: number;
  failed: number;
  restarts: number;
  crashedOut: number;
  checksum: string;
  wallMs: number;
  tasksPerSecond: number;
  peakRssMB: number;
}
async function enrich(crashEvery: number): Promise<EnrichRun> {
  const script = new URL("../cli/enrich.ts", import.meta.url).pathname;
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      script,
      `--tasks=${ENRICH_TASKS}`,
      `--seed=${SEED % 1000}`,
      "--fail-every=997",
      `--crash-every=${crashEvery}`,
      "--json",
      "--progress-ms=5000",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(`enrich exited ${code}: ${new TextDecoder().decode(stderr)}`);
  }
  const s = JSON.parse(new TextDecoder().decode(stdout));
  return { crashEvery, ...pick(s) };
}
function pick(s: Record<string, unknown>) {
  const keys = [
    "processed",
    "failed",
    "restarts",
    "crashedOut",
    "checksum",
    "wallMs",
    "tasksPerSecond",
    "peakRssMB",
  ] as const;
  return Object.fromEntries(keys.map((k) => [k, s[k]])) as Omit<EnrichRun, "crashEvery">;
}

let enrichRuns: EnrichRun[] = [];
if (!args["skip-enrich"]) {
  for (const crashEvery of [0, CRASH_EVERY]) {
    exp.log(`enrich: ${ENRICH_TASKS.toLocaleString("en")} tasks, crash every ${crashEvery || "—"}`);
    const run = await enrich(crashEvery);
    exp.log(`  ${JSON.stringify(run)}`);
    enrichRuns.push(run);
  }
  const [clean, crashed] = enrichRuns;
  checks.push({
    name: `enrich: checksum with 1 in ${
      CRASH_EVERY.toLocaleString("en")
    } tasks crashing = clean run's`,
    value: crashed.checksum === clean.checksum ? 1 : 0,
    goal: "equal, every crashed task retried and counted once",
    pass: crashed.checksum === clean.checksum && crashed.processed === clean.processed &&
      crashed.restarts === Math.floor(ENRICH_TASKS / CRASH_EVERY),
  });
  exp.log(`${checks.at(-1)!.pass ? "PASS" : "MISS"}  ${checks.at(-1)!.name}`);
} else enrichRuns = [];

const written = exp.write({
  description:
    "retries and a circuit breaker per downstream (reviews flaky at 50 % fast 503s, or down), " +
    "and enrich with 1 in 100,000 tasks crashing its worker",
  ratePerSecond: RATE,
  requestsPerRun: REQUESTS,
  rounds: ROUNDS,
  budgetMs: BUDGET_MS,
  faultyBranch: FAULTY,
  runs,
  byCase,
  enrich: { tasks: ENRICH_TASKS, crashEvery: CRASH_EVERY, runs: enrichRuns },
  checks,
});
exp.log(`wrote ${written}`);
