/**
 * Experiment 4, straggler vs deadline budget: 1 request in 1,000 has a `reviews` branch that
 * takes 2 s (`fault.reviews=slow:2000`, at a seeded position in each block of 1,000), under
 * bestEffort, with per-branch timeouts of 10 s so that only the budget can cut:
 *
 * - `no-deadline`: budget 10000 ms, so no branch has a deadline short of 10 s;
 * - `budget-deadline`: budget 300 ms, so each branch's deadline is what is left of it.
 *
 * Open-model load in-process, 400 requests/s, 8,000 requests per run (8 stragglers), simulated
 * downstream seed 20240601 (median 5 ms, p99 200 ms, random tail off).
 *
 * ```sh
 * deno task exp:straggler
 * ```
 *
 * @module
 */
import { uniformInt } from "pure-rand/distribution/uniformInt";
import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus";
import { Experiment } from "./_experiment.ts";
import { scenarioById, SEED } from "./_gateway_scenarios.ts";
import { inProcessTarget } from "./_load_target.ts";
import { formatStep, runStep, type StepResult, warmUp } from "./_load_step.ts";

const RATE = 400;
const REQUESTS = 8000;
const EVERY = 1000;
const STRAGGLER_MS = 2000;
const CONFIGS = [
  { id: "no-deadline", label: "no per-branch deadline (budget 10000 ms)", budgetMs: 10_000 },
  { id: "budget-deadline", label: "deadline = remaining budget (300 ms)", budgetMs: 300 },
];

/** One seeded position per block of {@linkcode EVERY} requests. */
function stragglerIndexes(): Set<number> {
  const rng = xoroshiro128plus(SEED);
  const indexes = new Set<number>();
  for (let block = 0; block < REQUESTS; block += EVERY) {
    indexes.add(block + uniformInt(rng, 0, EVERY - 1));
  }
  return indexes;
}

const exp = new Experiment("straggler", SEED);
const stragglers = stragglerIndexes();
const target = inProcessTarget({ registry: scenarioById("healthy").registry });
exp.log(`stragglers at ${[...stragglers].join(", ")}; warm-up: 400 untimed requests`);
await warmUp(target, RATE, 400);
const rows: (StepResult & { config: string; budgetMs: number })[] = [];
for (const config of CONFIGS) {
  exp.log(`${config.label}: ${REQUESTS} requests at ${RATE}/s`);
  const step = await runStep(target, {
    label: config.id,
    ratePerSecond: RATE,
    count: REQUESTS,
    path: (i) =>
      `/product/sku-${i}?policy=bestEffort&budget=${config.budgetMs}` +
      (stragglers.has(i) ? `&fault.reviews=slow:${STRAGGLER_MS}` : ""),
    log: (line) => exp.log(line),
  });
  exp.log(formatStep(step));
  rows.push({ ...step, config: config.id, budgetMs: config.budgetMs });
}
const written = exp.write({
  description:
    "1 request in 1,000 with a 2 s reviews branch, bestEffort: no per-branch deadline vs one cut from the remaining budget",
  ratePerSecond: RATE,
  requestsPerRun: REQUESTS,
  stragglerEvery: EVERY,
  stragglerMs: STRAGGLER_MS,
  stragglerIndexes: [...stragglers],
  configs: CONFIGS,
  rows,
});
exp.log(`wrote ${written}`);
