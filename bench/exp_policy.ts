/**
 * Experiment 3, partial-failure policy sweep: the gateway in-process under failFast,
 * collectAll and bestEffort, with 10 % branch errors (`fault.errorRate=0.1`), alone and plus
 * "branch 3 always fails" (`fault.recommendations=fail`, the fourth branch, optional). Per run:
 * p50/p99, completed-request rate (200 answers), completeness (branches present over the five),
 * degraded share; then a recommendation per SLO, computed from those figures.
 *
 * Open-model load at 300 requests/s, 1,500 requests per run, default registry (per-branch
 * timeouts 200–300 ms), budget 1000 ms, simulated downstream seed 20240601 (median 5 ms, p99
 * 200 ms, no injected tail); every run sends the same ids, so the same draws.
 *
 * ```sh
 * deno task exp:policy
 * ```
 *
 * @module
 */
import type { FailurePolicy } from "../src/executor/mod.ts";
import { Experiment } from "./_experiment.ts";
import { SEED } from "./_gateway_scenarios.ts";
import { inProcessTarget } from "./_load_target.ts";
import { formatStep, runStep, type StepResult, warmUp } from "./_load_step.ts";

const RATE = 300;
const REQUESTS = 1500;
const POLICIES: FailurePolicy[] = ["failFast", "collectAll", "bestEffort"];
const MIXES = [
  { id: "errors-10", label: "10 % branch errors", query: "fault.errorRate=0.1" },
  {
    id: "errors-10-branch-3",
    label: "10 % branch errors + branch 3 always fails",
    query: "fault.errorRate=0.1&fault.recommendations=fail",
  },
];

interface Row extends StepResult {
  mix: string;
  policy: FailurePolicy;
}

const exp = new Experiment("policy", SEED);
const target = inProcessTarget();
exp.log("warm-up: 300 untimed requests");
await warmUp(target, RATE, 300);
const rows: Row[] = [];
for (const mix of MIXES) {
  for (const policy of POLICIES) {
    const label = `${mix.id} ${policy}`;
    exp.log(`${label}: ${REQUESTS} requests at ${RATE}/s`);
    const step = await runStep(target, {
      label,
      ratePerSecond: RATE,
      count: REQUESTS,
      path: (i) => `/product/sku-${i}?policy=${policy}&${mix.query}`,
      log: (line) => exp.log(line),
    });
    exp.log(formatStep(step));
    rows.push({ ...step, mix: mix.id, policy });
  }
}

/** The SLOs a caller might hold the gateway to, and the policy each one picks, per mix. */
function recommend(mix: string) {
  const runs = rows.filter((r) => r.mix === mix);
  const best = (score: (r: Row) => number) => runs.reduce((a, b) => score(b) < score(a) ? b : a);
  const mostAnswered = best((r) => -r.completedShare * 1e6 + r.latencyMs.p99);
  const fastest = best((r) => r.latencyMs.p99);
  const allOrNothing = runs.filter((r) => r.degradedShare === 0);
  const strict = allOrNothing.length === 0
    ? undefined
    : allOrNothing.reduce((a, b) => b.latencyMs.p99 < a.latencyMs.p99 ? b : a);
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  return [
    {
      slo: "availability: the most requests answered 200 (a partial page is fine)",
      policy: mostAnswered.policy,
      why: `${pct(mostAnswered.completedShare)} answered 200 at p99 ${
        mostAnswered.latencyMs.p99.toFixed(0)
      } ms`,
    },
    {
      slo: "latency: the lowest p99, whatever the answer",
      policy: fastest.policy,
      why: `p99 ${fastest.latencyMs.p99.toFixed(0)} ms, but only ${
        pct(fastest.completedShare)
      } answered 200`,
    },
    {
      slo: "all-or-nothing: never a partial page",
      policy: strict?.policy ?? "none",
      why: strict === undefined
        ? "every policy answered some partial pages"
        : `no 200 answer misses a branch; ${pct(strict.completedShare)} answered 200, p99 ${
          strict.latencyMs.p99.toFixed(0)
        } ms`,
    },
  ];
}

const recommendations = Object.fromEntries(MIXES.map((m) => [m.id, recommend(m.id)]));
for (const [mix, recs] of Object.entries(recommendations)) {
  for (const r of recs) exp.log(`${mix} · ${r.slo}: ${r.policy} (${r.why})`);
}
const written = exp.write({
  description:
    "failFast vs collectAll vs bestEffort under 10 % branch errors, with and without branch 3 always failing",
  ratePerSecond: RATE,
  requestsPerRun: REQUESTS,
  budgetMs: 1000,
  mixes: MIXES,
  rows,
  recommendations,
});
exp.log(`wrote ${written}`);
