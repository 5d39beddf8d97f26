/**
 * `deno task exp:overload-steps`: the adaptive gateway's 1× and 4× steps of `exp:overload`,
 * repeated, to compare two versions of the limiter. The full sweep runs each step once, with
 * three gateways on two shared cores; one run of it moves by tens of points between runs of the
 * same code. Here only the adaptive gateway (with its downstream, over HTTP) runs, at a fixed
 * capacity, and each step is repeated: `--idle` seconds with no load (0 by default), `--lead`
 * seconds at 0.5× (1 by default; 0 for none), then 5 s at the multiplier, then a drain until the
 * gateway and its downstream are idle (as `exp:overload` drains). `exp:overload` meets each step
 * after a minute or more idle and with no lead: `--idle=60 --lead=0` steps in as it does.
 *
 * Goodput is 200 answers within the budget per second of the step, as a share of `--capacity`;
 * each step also reports the p99 from the intended send time of its 503s and of its other
 * answers, the p99 of the generator's own send lag, each second's goodput and 503 p99 (how the
 * step starts), and how many connections the kernel dropped for a full listen queue (on Linux).
 * Each step's generator is a fresh process, on Bun when it is installed (`bench/_generate.ts`), as
 * in `exp:overload`.
 *
 * `--root` loads the gateway from another checkout (its `bench/` and `src/`; the generator stays
 * this checkout's), so that two versions alternate in one session on the same machine:
 *
 * ```sh
 * deno task exp:overload-steps --capacity=950 --repeats=3
 * deno task exp:overload-steps --capacity=950 --repeats=3 --root=../fanfare-before
 * ```
 *
 * Writes `bench/results/exp-overload-steps.json` (this checkout's results folder).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { drained } from "./_drain.ts";
import { Experiment } from "./_experiment.ts";
import type { LoadTarget } from "./_load_target.ts";
import type { ProductSummary } from "./_product_reply.ts";
import type { Sample } from "./_open_loop.ts";
import { generate, GENERATOR } from "./_generate.ts";
import { listenOverflows, loadAverage } from "./_runtime.ts";
import { summarize } from "./_quantiles.ts";
import { SEED } from "./_gateway_scenarios.ts";
import { checkoutRoot, nonNegativeFlag, positiveFlag } from "./_flags.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    capacity: { type: "string", default: "950" },
    repeats: { type: "string", default: "3" },
    multipliers: { type: "string", default: "1,4" },
    root: { type: "string" },
    lead: { type: "string", default: "1" },
    idle: { type: "string", default: "0" },
    protection: { type: "string", default: "adaptive" },
  },
});

const positive = (name: string, text: string) => positiveFlag("exp:overload-steps", name, text);

const capacity = positive("capacity", flags.capacity);
const repeats = Math.round(positive("repeats", flags.repeats));
const multipliers = flags.multipliers.split(",").map((m) => positive("multipliers", m));
const root = checkoutRoot(flags.root);
const leadSeconds = nonNegativeFlag("exp:overload-steps", "lead", flags.lead);
const idleSeconds = nonNegativeFlag("exp:overload-steps", "idle", flags.idle);
const PROTECTIONS = ["adaptive", "hand-written"] as const;
const protection = PROTECTIONS.find((p) => p === flags.protection);
if (protection === undefined) {
  throw new RangeError(
    `Cannot run exp:overload-steps as '--protection' must be one of ${
      PROTECTIONS.join(", ")
    }: current value is ${flags.protection}`,
  );
}

const STEP_SECONDS = 5;
const BUDGET_MS = 1000;
const GUARD_MS = 5000;

const exp = new Experiment("overload-steps", SEED);
const { httpTarget } = await import(new URL("bench/_load_target.ts", root).href) as {
  httpTarget(scenario: string, protection: string): Promise<LoadTarget>;
};
/** One open-loop step from a fresh generator process of this checkout (`bench/_generate.ts`). */
async function step(target: LoadTarget, rate: number, seconds: number): Promise<Sample[]> {
  const { samples } = await generate(target.url!, {
    ratePerSecond: rate,
    count: Math.round(rate * seconds),
    guardMs: GUARD_MS,
    budgetMs: BUDGET_MS,
  });
  return samples;
}

interface Run {
  multiplier: number;
  repeat: number;
  goodputPerSecond: number;
  goodputShare: number;
  statuses: Record<string, number>;
  /** p99 from the intended send time of the 503s, in ms (NaN when none). */
  shedP99Ms: number;
  /** 503s answered by the route: the ceiling's queue was full, or it kept a required branch out. */
  lateSheds: number;
  /** p99 from the intended send time of the 503s answered by admission, in ms. */
  admissionShedP99Ms: number;
  /** p99 from the intended send time of every answer but the 503s, in ms. */
  admittedP99Ms: number;
  /** p99 of how late the generator itself sent its requests, in ms: part of both p99s. */
  sendLagP99Ms: number;
  /** Each second of the step in turn: its goodput and its 503s' p99 (NaN when none). */
  perSecond: { goodput: number; shedP99Ms: number }[];
  /**
   * Connections the kernel dropped during the step because a listen queue was full (Linux only;
   * null elsewhere): each of those requests waited 1 s for its SYN to be sent again.
   */
  listenOverflows: number | null;
  loadAverage: number;
}

/**
 * Each second of a step: its goodput and the p99 of its 503s. The generator sends on a fixed
 * schedule and lists its samples in send order, so the `rate` samples from the `n`th are those it
 * meant to send in second `n`.
 */
function perSecond(samples: Sample[], rate: number): Run["perSecond"] {
  const seconds: Run["perSecond"] = [];
  const size = Math.round(rate);
  for (let start = 0; start < samples.length; start += size) {
    const second = samples.slice(start, start + size);
    seconds.push({
      goodput: second.filter((s) => s.status === 200 && s.latencyMs <= BUDGET_MS).length,
      shedP99Ms: summarize(second.filter((s) => s.status === 503).map((s) => s.latencyMs)).p99,
    });
  }
  return seconds;
}

const runs: Run[] = [];
exp.log(
  `${protection} gateway from ${root.pathname}, generator on ${GENERATOR}, capacity ${capacity}/s, ${repeats} repeats of ${
    multipliers.join("×, ")
  }×`,
);
const target = await httpTarget("healthy-default-timeouts", protection);
try {
  await step(target, capacity * 0.5, 2);
  await drained(target);
  for (let repeat = 1; repeat <= repeats; repeat++) {
    for (const multiplier of multipliers) {
      if (idleSeconds > 0) await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1000));
      if (leadSeconds > 0) await step(target, capacity * 0.5, leadSeconds);
      const overflowsBefore = listenOverflows();
      const samples = await step(target, capacity * multiplier, STEP_SECONDS);
      const overflowsAfter = listenOverflows();
      await drained(target);
      const statuses: Record<string, number> = {};
      for (const s of samples) statuses[s.status] = (statuses[s.status] ?? 0) + 1;
      const good = samples.filter((s) => s.status === 200 && s.latencyMs <= BUDGET_MS).length;
      const goodputPerSecond = good / STEP_SECONDS;
      const sheds = samples.filter((s) => s.status === 503);
      const atAdmission = sheds.filter((s) => (s.body as ProductSummary).shedAtAdmission);
      const run = {
        multiplier,
        repeat,
        goodputPerSecond,
        goodputShare: goodputPerSecond / capacity,
        statuses,
        shedP99Ms: summarize(sheds.map((s) => s.latencyMs)).p99,
        lateSheds: sheds.length - atAdmission.length,
        admissionShedP99Ms: summarize(atAdmission.map((s) => s.latencyMs)).p99,
        admittedP99Ms: summarize(
          samples.filter((s) => s.status !== 503).map((s) => s.latencyMs),
        ).p99,
        sendLagP99Ms: summarize(samples.map((s) => s.sendLagMs)).p99,
        perSecond: perSecond(samples, capacity * multiplier),
        listenOverflows: overflowsBefore === undefined || overflowsAfter === undefined
          ? null
          : overflowsAfter - overflowsBefore,
        loadAverage: loadAverage(),
      };
      runs.push(run);
      exp.log(
        `repeat ${repeat}/${repeats} ${multiplier}×: goodput ${goodputPerSecond.toFixed(0)}/s (${
          (run.goodputShare * 100).toFixed(0)
        } %); ${Object.entries(statuses).map(([s, n]) => `${s}×${n}`).join(" ")}; p99 503 ${
          run.shedP99Ms.toFixed(0)
        } ms (admission's ${
          run.admissionShedP99Ms.toFixed(0)
        } ms; ${run.lateSheds} from the route), others ${
          run.admittedP99Ms.toFixed(0)
        } ms, send lag ${run.sendLagP99Ms.toFixed(0)} ms; listen overflows ${
          run.listenOverflows ?? "–"
        }; load ${run.loadAverage.toFixed(1)}`,
      );
      exp.log(
        `  per second: ${
          run.perSecond.map(({ goodput, shedP99Ms }) =>
            `${goodput}/s (503 p99 ${Number.isNaN(shedP99Ms) ? "–" : shedP99Ms.toFixed(0)})`
          ).join(", ")
        }`,
      );
    }
  }
} finally {
  await target.close();
}

const summary = multipliers.map((multiplier) => {
  const shares = runs.filter((r) => r.multiplier === multiplier).map((r) => r.goodputShare)
    .sort((a, b) => a - b);
  return { multiplier, medianShare: shares[Math.floor(shares.length / 2)], shares };
});
for (const { multiplier, medianShare, shares } of summary) {
  exp.log(
    `${multiplier}×: median ${(medianShare * 100).toFixed(0)} % of capacity (${
      shares.map((s) => (s * 100).toFixed(0)).join(", ")
    })`,
  );
}
const written = exp.write({
  description: "one gateway's steps of exp:overload, repeated at a fixed capacity",
  protection,
  root: root.pathname,
  capacityPerSecond: capacity,
  stepSeconds: STEP_SECONDS,
  runs,
  summary,
});
exp.log(`wrote ${written}`);
