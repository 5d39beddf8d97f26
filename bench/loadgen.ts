/**
 * The open-model load generator: sweeps `GET /product/:id` over arrival rates (100 → 2,000 →
 * 10,000 requests/s by default) against the gateway in-process (its `fetch`, with the simulated
 * downstream in-process too) and over HTTP on 127.0.0.1 (a gateway process in front of a
 * downstream process, both Deno). Each request is due at `i / rate` whether or not earlier ones
 * have answered, and its latency counts from that intended time (`bench/_open_loop.ts`).
 *
 * Per step, bounded by `--seconds` of arrivals and at most `--max-requests` requests: achieved
 * and answered rate, p50/p99/p99.9, status mix, degraded share, peak in-flight branches (the
 * gateway's `fanfare_branches_in_flight` gauge, polled every 25 ms) and peak RSS of the gateway's
 * process. Over HTTP the sweep stops after a step that answers under a quarter of its offered
 * rate (saturated); the rates it skipped are listed. The downstream is the gateway benchmark's: seeded lognormal, median 5 ms, p99 200 ms,
 * no injected tail; the gateway uses the default registry (bestEffort, budget 1000 ms).
 *
 * ```sh
 * deno task exp:loadgen                     # both targets, the default rates
 * deno task exp:loadgen --target=in-process --rates=1000,5000 --seconds=2
 * ```
 *
 * Writes `bench/results/exp-loadgen.json`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { SEED } from "./_gateway_scenarios.ts";
import { Experiment } from "./_experiment.ts";
import { httpTarget, inProcessTarget, type LoadTarget } from "./_load_target.ts";
import { formatStep, runStep, type StepResult, warmUp } from "./_load_step.ts";
import { positiveFlag } from "./_flags.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    target: { type: "string", default: "both" },
    rates: { type: "string", default: "100,500,1000,2000,5000,10000" },
    seconds: { type: "string", default: "1.5" },
    "max-requests": { type: "string", default: "12000" },
  },
});

const positive = (name: string, text: string) => positiveFlag("the load generator", name, text);

const rates = flags.rates.split(",").map((r) => positive("rates", r));
const seconds = positive("seconds", flags.seconds);
const maxRequests = positive("max-requests", flags["max-requests"]);
const targets = flags.target === "both" ? ["in-process", "http"] : [flags.target];
if (!targets.every((t) => t === "in-process" || t === "http")) {
  throw new RangeError(
    `Cannot run the load generator as '--target' must be in-process, http or both: current value is ${flags.target}`,
  );
}
/**
 * Over HTTP, a step answering under this share of its offered rate is saturated: higher rates
 * only pile up sockets in the three processes sharing the cores, so the sweep stops there.
 * In-process, every rate runs (bounded by `--max-requests`), to show how far 10,000/s is.
 */
const SATURATED_SHARE = 0.25;

function saturated(step: StepResult): boolean {
  return step.answeredPerSecond < SATURATED_SHARE * step.offeredPerSecond;
}

/** Untimed requests before a target's sweep, at the sweep's first rate doubled. */
const WARMUP_REQUESTS = 400;

const exp = new Experiment("loadgen", SEED);
const sweeps: { target: string; steps: StepResult[]; skipped: number[] }[] = [];
for (const kind of targets) {
  const target: LoadTarget = kind === "http" ? await httpTarget() : inProcessTarget();
  try {
    exp.log(`${kind}: warm-up, ${WARMUP_REQUESTS} untimed requests`);
    await warmUp(target, rates[0] * 2, WARMUP_REQUESTS);
    const steps: StepResult[] = [];
    const skipped: number[] = [];
    for (const rate of rates) {
      const last = steps[steps.length - 1];
      if (kind === "http" && last !== undefined && saturated(last)) {
        skipped.push(rate);
        continue;
      }
      const count = Math.min(maxRequests, Math.max(1, Math.round(rate * seconds)));
      exp.log(`${kind}: ${rate}/s for ${count} requests`);
      const step = await runStep(target, {
        label: `${kind} ${rate}/s`,
        ratePerSecond: rate,
        count,
        path: (i) => `/product/sku-${i}`,
        log: (line) => exp.log(line),
      });
      exp.log(formatStep(step));
      steps.push(step);
    }
    if (skipped.length > 0) {
      exp.log(`${kind}: saturated, skipped ${skipped.join(", ")}/s`);
    }
    sweeps.push({ target: kind, steps, skipped });
  } finally {
    await target.close();
  }
}
const written = exp.write({
  description: "open-model sweep of GET /product/:id, default registry, bestEffort, budget 1000 ms",
  downstream: { medianMs: 5, p99Ms: 200, tail: "off" },
  secondsPerStep: seconds,
  maxRequestsPerStep: maxRequests,
  sweeps,
});
exp.log(`wrote ${written}`);
