/**
 * Experiment 10, failure injection: throughput of the gateway in-process with 10 % of branch
 * calls failing (`fault.errorRate=0.1`) against the healthy baseline; target: within 10 %.
 *
 * Throughput is capacity: requests offered at 3,000/s (above what one event loop serves here)
 * for 4,000 requests, answered requests per second of wall time. Runs alternate healthy and
 * failing, three of each, and the medians are compared, since the machine is shared. bestEffort,
 * budget 1000 ms, default registry, simulated downstream seed 20240601 (median 5 ms, p99 200 ms,
 * no injected tail).
 *
 * ```sh
 * deno task exp:failure
 * ```
 *
 * @module
 */
import { Experiment } from "./_experiment.ts";
import { SEED } from "./_gateway_scenarios.ts";
import { inProcessTarget } from "./_load_target.ts";
import { formatStep, runStep, type StepResult, warmUp } from "./_load_step.ts";
import { median } from "./_quantiles.ts";

const RATE = 3000;
const REQUESTS = 4000;
const ROUNDS = 3;
const TOLERANCE = 0.1;
const MODES = [
  { id: "healthy", query: "" },
  { id: "errors-10", query: "&fault.errorRate=0.1" },
];

const exp = new Experiment("failure", SEED);
const target = inProcessTarget();
exp.log("warm-up: 1000 untimed requests");
await warmUp(target, 1000, 1000);
const runs: (StepResult & { mode: string; round: number })[] = [];
for (let round = 1; round <= ROUNDS; round++) {
  for (const mode of MODES) {
    exp.log(`round ${round}/${ROUNDS}, ${mode.id}: ${REQUESTS} requests offered at ${RATE}/s`);
    const step = await runStep(target, {
      label: `${mode.id} #${round}`,
      ratePerSecond: RATE,
      count: REQUESTS,
      path: (i) => `/product/sku-${i}?policy=bestEffort${mode.query}`,
    });
    exp.log(formatStep(step));
    runs.push({ ...step, mode: mode.id, round });
  }
}
const throughput = Object.fromEntries(
  MODES.map((
    m,
  ) => [m.id, median(runs.filter((r) => r.mode === m.id).map((r) => r.answeredPerSecond))]),
);
const ratio = throughput["errors-10"] / throughput.healthy;
const check = {
  name: "throughput at 10 % branch errors ÷ healthy (medians)",
  value: ratio,
  goal: `≥ ${1 - TOLERANCE}`,
  pass: ratio >= 1 - TOLERANCE,
};
exp.log(
  `${check.pass ? "PASS" : "MISS"}  ${check.name}: ${ratio.toFixed(3)} (healthy ${
    throughput.healthy.toFixed(0)
  }/s, errors ${throughput["errors-10"].toFixed(0)}/s), target ${check.goal}`,
);
const written = exp.write({
  description: "gateway capacity (answered/s at an offered 3,000/s) healthy vs 10 % branch errors",
  ratePerSecond: RATE,
  requestsPerRun: REQUESTS,
  rounds: ROUNDS,
  runs,
  medianAnsweredPerSecond: throughput,
  check,
});
exp.log(`wrote ${written}`);
