/**
 * Experiment 2, cancellation leak: in-flight branches (the gateway's gauge), downstream calls in
 * flight and pending timers before, during and 1 s after (a) a client cancel and (b) a deadline
 * expiry, which must all return to their baseline; then (c) waves of cancelled requests against
 * a correct gateway and against a deliberately broken one whose `reviews` branch ignores its
 * signal (its fetcher drops the signal and the budget header), where the downstream calls and
 * timers must be seen climbing wave after wave — proof that the measurement can fail.
 *
 * Everything runs in-process (gateway app + simulated downstream, seed 20240601, per-branch
 * timeouts 10 s so that only the cancel or the budget ends the slow `reviews` branch, which
 * sleeps 10 s through `fault.reviews=slow`). Timers are counted by wrapping `setTimeout`
 * (`bench/_timer_census.ts`); a gauge series is sampled every 50 ms for the plot.
 *
 * ```sh
 * deno task exp:cancel
 * ```
 *
 * @module
 */
import { type BranchRegistry, defineRegistry, type Fetcher } from "../src/gateway/mod.ts";
import { Experiment } from "./_experiment.ts";
import { scenarioById, SEED } from "./_gateway_scenarios.ts";
import { inProcessTarget, type LoadTarget } from "./_load_target.ts";
import { TimerCensus, uncountedDelay } from "./_timer_census.ts";

/** Requests per phase and per wave. */
const REQUESTS = 200;
const WAVES = 4;
const WAVE_REQUESTS = 100;
/** How long requests run before the client cancels them. */
const RUN_BEFORE_CANCEL_MS = 300;
const AFTER_MS = 1000;
const SAMPLE_EVERY_MS = 50;
const DEADLINE_BUDGET_MS = 300;

interface Snapshot {
  phase: string;
  point: string;
  tMs: number;
  inFlightBranches: number;
  downstreamInFlight: number;
  pendingTimers: number;
}

const exp = new Experiment("cancel", SEED);
const census = TimerCensus.install();
const started = performance.now();
const series: Snapshot[] = [];
const points: Snapshot[] = [];
let phase = "idle";

async function snapshot(target: LoadTarget, point: string): Promise<Snapshot> {
  return {
    phase,
    point,
    tMs: performance.now() - started,
    inFlightBranches: await target.inFlightBranches(),
    downstreamInFlight: await target.downstreamInFlight(),
    pendingTimers: census.pending,
  };
}

async function mark(target: LoadTarget, point: string): Promise<Snapshot> {
  const s = await snapshot(target, point);
  points.push(s);
  exp.log(
    `  ${s.phase} · ${point}: in-flight branches ${s.inFlightBranches}, downstream in flight ${s.downstreamInFlight}, pending timers ${s.pendingTimers}`,
  );
  return s;
}

/** Sends `count` requests to `path(i)`, each with its own controller; resolves once all are sent. */
async function burst(target: LoadTarget, count: number, path: (i: number) => string) {
  const controllers: AbortController[] = [];
  const answers: Promise<unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const controller = new AbortController();
    controllers.push(controller);
    answers.push(target.send(path(i), controller.signal).catch((error) => error));
    if (i % 20 === 19) await uncountedDelay(1);
  }
  return { controllers, answers };
}

/** `reviews` with a fetcher that ignores the caller: no signal, no budget header. */
function ignoringReviews(downstream: Fetcher): BranchRegistry {
  const deaf: Fetcher = {
    fetch: (request: Request) => downstream.fetch(new Request(request.url)),
  };
  return defineRegistry(
    scenarioById("healthy").registry(downstream).map((spec) =>
      spec.name === "reviews" ? { ...spec, fetcher: deaf } : spec
    ),
  );
}

function backToBaseline(before: Snapshot, after: Snapshot): boolean {
  return after.inFlightBranches === before.inFlightBranches &&
    after.downstreamInFlight === before.downstreamInFlight &&
    after.pendingTimers === before.pendingTimers;
}

async function waves(target: LoadTarget, variant: string): Promise<Snapshot[]> {
  phase = `waves (${variant})`;
  const after: Snapshot[] = [await mark(target, "baseline")];
  for (let wave = 1; wave <= WAVES; wave++) {
    const { controllers, answers } = await burst(
      target,
      WAVE_REQUESTS,
      (i) => `/product/${variant}-w${wave}-${i}?fault.reviews=slow&budget=5000`,
    );
    await uncountedDelay(RUN_BEFORE_CANCEL_MS);
    for (const c of controllers) c.abort(new Error("client went away"));
    await Promise.all(answers);
    await uncountedDelay(AFTER_MS);
    after.push(await mark(target, `1 s after wave ${wave}`));
  }
  return after;
}

const healthy = scenarioById("healthy").registry;
const target = inProcessTarget({ registry: healthy });
const broken = inProcessTarget({ registry: ignoringReviews });
let current = target;
let sampling: Promise<void> | undefined;
const sampler = setInterval(() => {
  sampling ??= snapshot(current, "sample").then((s) => {
    series.push(s);
  }).finally(() => sampling = undefined);
}, SAMPLE_EVERY_MS);

try {
  exp.log(`(a) client cancel: ${REQUESTS} requests, reviews sleeps 10 s, cancelled after 300 ms`);
  phase = "client cancel";
  const cancelBefore = await mark(target, "before");
  const cancel = await burst(
    target,
    REQUESTS,
    (i) => `/product/cancel-${i}?fault.reviews=slow&budget=5000`,
  );
  await uncountedDelay(RUN_BEFORE_CANCEL_MS);
  const cancelDuring = await mark(target, "during");
  for (const c of cancel.controllers) c.abort(new Error("client went away"));
  await Promise.all(cancel.answers);
  const cancelAt = await mark(target, "all answered");
  await uncountedDelay(AFTER_MS);
  const cancelAfter = await mark(target, "1 s after");

  exp.log(`(b) deadline expiry: ${REQUESTS} requests, budget ${DEADLINE_BUDGET_MS} ms`);
  phase = "deadline expiry";
  const deadlineBefore = await mark(target, "before");
  const deadline = await burst(
    target,
    REQUESTS,
    (i) => `/product/deadline-${i}?fault.reviews=slow&budget=${DEADLINE_BUDGET_MS}`,
  );
  await uncountedDelay(DEADLINE_BUDGET_MS / 2);
  const deadlineDuring = await mark(target, "during");
  await Promise.all(deadline.answers);
  const deadlineAt = await mark(target, "all answered");
  await uncountedDelay(AFTER_MS);
  const deadlineAfter = await mark(target, "1 s after");

  exp.log(`(c) ${WAVES} waves of ${WAVE_REQUESTS} cancelled requests, correct then broken`);
  const correctWaves = await waves(target, "correct");
  current = broken;
  const brokenWaves = await waves(broken, "broken");
  const climbing = brokenWaves.every((s, i) =>
    i === 0 || s.downstreamInFlight > brokenWaves[i - 1].downstreamInFlight
  );
  const flat = correctWaves.every((s) => backToBaseline(correctWaves[0], s));
  const checks = [
    {
      name: "client cancel: back to baseline 1 s after",
      pass: backToBaseline(cancelBefore, cancelAfter),
    },
    {
      name: "deadline expiry: back to baseline 1 s after",
      pass: backToBaseline(deadlineBefore, deadlineAfter),
    },
    { name: "correct gateway: flat over the waves", pass: flat },
    {
      name: "broken branch: seen climbing over the waves (the measurement can fail)",
      pass: climbing,
    },
  ];
  for (const c of checks) exp.log(`${c.pass ? "PASS" : "FAIL"}  ${c.name}`);
  clearInterval(sampler);
  await sampling;
  const written = exp.write({
    description:
      "in-flight branches, downstream calls in flight and pending setTimeout timers around a client cancel, a deadline expiry, and waves of cancels against a correct and a signal-ignoring branch",
    requests: REQUESTS,
    wave: { count: WAVES, requests: WAVE_REQUESTS },
    cancelAfterMs: RUN_BEFORE_CANCEL_MS,
    deadlineBudgetMs: DEADLINE_BUDGET_MS,
    phases: {
      clientCancel: [cancelBefore, cancelDuring, cancelAt, cancelAfter],
      deadlineExpiry: [deadlineBefore, deadlineDuring, deadlineAt, deadlineAfter],
    },
    waves: { correct: correctWaves, broken: brokenWaves },
    points,
    series,
    checks,
  });
  exp.log(`wrote ${written}; the broken branch's 10 s sleeps are left running, so exit now`);
} finally {
  clearInterval(sampler);
  census.uninstall();
}
// The broken variant's downstream calls sleep on for up to 10 s; that leak is what was measured.
Deno.exit(0);
