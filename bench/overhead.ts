/**
 * Gateway overhead benchmark: what fanfare adds to a product request, against the handler a new
 * user would write by hand (a Hono route doing `Promise.allSettled` of five calls under one
 * `AbortSignal.timeout`, `bench/_overhead_apps.ts`), on the runtime that runs this file.
 *
 * Four gateways over the same trivial downstream (`GET /:branch/:id` answers a small JSON at
 * once): the hand-written handler; a hand-written one that does the same work as fanfare's
 * answer (a deadline per branch, budget and trace headers, bounded bodies, timings: what the
 * features cost written plainly, `equivalentGateway`); `createApp({ registry:
 * defaultRegistry(downstream) })`; and the same as `npm start` configures it (64-permit
 * `LocalLimiter`, hedged optional reads, admission limit, bulkheads). The targets compare
 * fanfare with the first; the second is printed beside them.
 *
 * 1. In process: gateway and downstream are apps in one process, called through their `fetch`
 *    (the downstream as `inProcessFetcher(app)`, so fanfare reads its bodies whole);
 *    32 callers in a closed loop send `GET /product/<id>` (ids from a seeded xorshift) until
 *    `--requests` have answered. `--rounds` rounds alternating the three gateways (each round
 *    rotates who goes first); each run is a fresh process of this runtime that builds one
 *    gateway, checks its answer, runs two untimed closed loops, then three timed ones (a full GC
 *    before each where the runtime exposes one) and reports their median. One process per
 *    gateway, as one is deployed: gateways that share a process share its compiled code, and the
 *    handlers, Hono and the runtime's fetch classes seen with every gateway's shapes ran slower
 *    than with one (the method before).
 *    Figure: wall µs per request, median over the rounds, and its ratio to the hand-written
 *    handler's. Target: ≤ 1.5×. The process's CPU time per request is recorded beside it: on a
 *    loaded machine it moves less than the wall time.
 * 2. Over loopback: the downstream and each gateway in a process of their own on 127.0.0.1
 *    (`bench/_overhead_serve.ts`, this runtime), loaded by `wrk -t1 -c32` for `--seconds` per
 *    run, after a 2 s warm-up each, `--loopback-rounds` alternating rounds. Figure: requests/s,
 *    median over the rounds, as a share of the hand-written handler's. Target: ≥ 85 %. Needs
 *    `wrk` (Debian: `apt-get install wrk`); without it this part is skipped and says so.
 *
 * Writes `bench/results/overhead-<runtime>.json`; `deno task report` turns both runtimes' files
 * into a section of `bench/REPORT.md`. On a shared 2-core machine the figures move with the
 * load average, which is printed and recorded: read the ratios, taken side by side.
 *
 * ```sh
 * deno task bench:overhead                    # Deno
 * deno task bench:overhead:bun                # the same file on Bun
 * deno task bench:overhead --mode=in-process --rounds=3
 * ```
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import {
  GATEWAY_LABELS,
  gatewayById,
  type GatewayId,
  GATEWAYS,
  productPaths,
  trivialDownstream,
} from "./_overhead_apps.ts";
import { writeResult } from "./_experiment.ts";
import { inProcessFetcher } from "../src/gateway/mod.ts";
import { median } from "./_quantiles.ts";
import { positiveFlag } from "./_flags.ts";
import { childJson } from "./_child_json.ts";
import { serve, type Served, stop, wrk, wrkMissing, type WrkRun } from "./_loopback.ts";
import { currentRuntime, garbageCollector, loadAverage, machine } from "./_runtime.ts";

const SEED = 14;
const CONCURRENCY = 32;
const IN_PROCESS_TARGET = 1.5;
const LOOPBACK_TARGET = 0.85;
const WARMUP_SECONDS = 2;
const DOWNSTREAM_ORIGIN = "http://downstream.internal";
/** Untimed closed loops of each in-process run before its timed ones. */
const CHILD_WARMUPS = 2;
/** Timed closed loops of each in-process run; the run reports their median. */
const CHILD_TIMED = 3;

const { values: flags } = parseArgs({
  args: process.argv.slice(2),
  options: {
    mode: { type: "string", default: "both" },
    requests: { type: "string", default: "4000" },
    rounds: { type: "string", default: "7" },
    seconds: { type: "string", default: "5" },
    "loopback-rounds": { type: "string", default: "3" },
    // Internal: this process is one in-process run of the gateway named (see `runInChild`).
    run: { type: "string" },
  },
});

const positiveInteger = (name: "requests" | "rounds" | "seconds" | "loopback-rounds") =>
  positiveFlag("the overhead benchmark", name, flags[name], { integer: true });

const requests = positiveInteger("requests");
const rounds = positiveInteger("rounds");
const seconds = positiveInteger("seconds");
const loopbackRounds = positiveInteger("loopback-rounds");
if (!["both", "in-process", "loopback"].includes(flags.mode)) {
  throw new RangeError(
    `Cannot run the overhead benchmark as '--mode' must be both, in-process or loopback: current value is ${flags.mode}`,
  );
}

const runtime = currentRuntime();
const command = runtime.name === "bun"
  ? "deno task bench:overhead:bun"
  : "deno task bench:overhead";
const gc = garbageCollector();
const startedAt = performance.now();
const loadAtStart = loadAverage();

function log(message: string): void {
  const s = ((performance.now() - startedAt) / 1000).toFixed(1);
  console.log(`[overhead ${s}s] ${message}`);
}

/** Gateway order of round `round`: all of them rotated, so no gateway always runs first. */
function order(round: number): GatewayId[] {
  return GATEWAYS.map((_, i) => GATEWAYS[(i + round) % GATEWAYS.length]);
}

// ---- in process

interface InProcessRun {
  wallMs: number;
  /** CPU time of this process (user + system) during the run: less sensitive to load. */
  cpuMs: number;
  statuses: Record<string, number>;
}

/** `CONCURRENCY` callers send every path in turn through `fetch`, each reading the body. */
async function closedLoop(
  fetch: (request: Request) => Response | Promise<Response>,
  paths: string[],
): Promise<InProcessRun> {
  const statuses: Record<string, number> = {};
  let next = 0;
  const caller = async () => {
    while (next < paths.length) {
      const response = await fetch(new Request(`http://gateway.internal${paths[next++]}`));
      await response.arrayBuffer();
      statuses[response.status] = (statuses[response.status] ?? 0) + 1;
    }
  };
  gc?.();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await Promise.all(Array.from({ length: CONCURRENCY }, caller));
  const cpu = process.cpuUsage(cpu0);
  return { wallMs: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000, statuses };
}

/** Throws unless `gateway` answers one product with 200 and all five branches. */
async function checkAnswers(id: GatewayId, fetch: (r: Request) => Response | Promise<Response>) {
  const response = await fetch(new Request("http://gateway.internal/product/sku-1"));
  const body = await response.json() as { product?: Record<string, unknown> };
  const branches = Object.keys(body.product ?? {}).length;
  if (response.status !== 200 || branches !== 5) {
    throw new Error(
      `Cannot benchmark gateway '${id}' as it must answer 200 with 5 branches: current answer is ${response.status} with ${branches}`,
    );
  }
}

async function inProcess() {
  log(
    `in process: ${requests} requests per loop, ${CONCURRENCY} concurrent, each run in a process of its own (${CHILD_WARMUPS} warm-up loops, median of ${CHILD_TIMED} timed)`,
  );
  const runs = Object.fromEntries(GATEWAYS.map((id) => [id, []])) as unknown as Record<
    GatewayId,
    InProcessRun[]
  >;
  for (let round = 0; round < rounds; round++) {
    const line: string[] = [];
    for (const id of order(round)) {
      const run = await runInChild(id);
      runs[id].push(run);
      line.push(
        `${id} ${(run.wallMs * 1000 / requests).toFixed(1)} µs ` +
          `(cpu ${(run.cpuMs * 1000 / requests).toFixed(1)})`,
      );
    }
    log(`in process round ${round + 1}/${rounds}: ${line.join(", ")}`);
  }
  const usPer = (run: InProcessRun) => run.wallMs * 1000 / requests;
  const cpuUsPer = (run: InProcessRun) => run.cpuMs * 1000 / requests;
  const naive = median(runs.naive.map(usPer));
  const equivalent = median(runs.equivalent.map(usPer));
  const naiveCpu = median(runs.naive.map(cpuUsPer));
  const cases = GATEWAYS.map((id) => {
    const us = runs[id].map(usPer);
    const statuses: Record<string, number> = {};
    for (const run of runs[id]) {
      for (const [status, n] of Object.entries(run.statuses)) {
        statuses[status] = (statuses[status] ?? 0) + n;
      }
    }
    return {
      id,
      label: GATEWAY_LABELS[id],
      usPerRequest: median(us),
      requestsPerSecond: 1e6 / median(us),
      rounds: us,
      ratio: median(us) / naive,
      // Against the hand-written handler that does the same work (see `equivalentGateway`).
      ratioToEquivalent: median(us) / equivalent,
      // The same ratio taken within each round, where both ran under the same load.
      pairedRatio: median(us.map((v, i) => v / usPer(runs.naive[i]))),
      cpuUsPerRequest: median(runs[id].map(cpuUsPer)),
      cpuRatio: median(runs[id].map(cpuUsPer)) / naiveCpu,
      statuses,
    };
  });
  return { requestsPerRound: requests, rounds, concurrency: CONCURRENCY, cases };
}

/** One in-process run of gateway `id` in a fresh process of this runtime (see `childRun`). */
function runInChild(id: GatewayId): Promise<InProcessRun> {
  const script = new URL(import.meta.url).pathname;
  const args = [script, `--run=${id}`, `--requests=${requests}`];
  const runtimeArgs = runtime.name === "deno"
    ? ["run", "-A", "--unstable-no-legacy-abort", "--v8-flags=--expose-gc", ...args]
    : args;
  return childJson<InProcessRun>(process.execPath, runtimeArgs, {
    what: `gateway '${id}' in process`,
  });
}

/**
 * The child's side: build gateway `id`, check it, warm it up with {@linkcode CHILD_WARMUPS}
 * untimed closed loops (the optimizing compiler needs a while for a gateway's code), then time
 * {@linkcode CHILD_TIMED} and report the one of median wall time.
 */
async function childRun(id: GatewayId): Promise<void> {
  // Both gateways call the app's own fetch; fanfare also learns that its bodies are in memory.
  const gateway = gatewayById(id, inProcessFetcher(trivialDownstream()), DOWNSTREAM_ORIGIN);
  await checkAnswers(id, gateway.fetch);
  const paths = productPaths(SEED, requests);
  for (let i = 0; i < CHILD_WARMUPS; i++) await closedLoop(gateway.fetch, paths);
  const timed: InProcessRun[] = [];
  for (let i = 0; i < CHILD_TIMED; i++) timed.push(await closedLoop(gateway.fetch, paths));
  timed.sort((a, b) => a.wallMs - b.wallMs);
  console.log(JSON.stringify(timed[CHILD_TIMED >> 1]));
}

// ---- loopback

async function loopback() {
  const missing = wrkMissing();
  if (missing !== undefined) {
    log(`loopback skipped: ${missing}`);
    return { skipped: missing };
  }
  const downstream = await serve(["downstream"]);
  const gateways = {} as Record<GatewayId, Served>;
  try {
    for (const id of GATEWAYS) gateways[id] = await serve([id, downstream.url]);
    const url = (id: GatewayId) => `${gateways[id].url}/product/sku-42`;
    for (const id of GATEWAYS) {
      const response = await fetch(url(id));
      const body = await response.json() as { product?: Record<string, unknown> };
      if (response.status !== 200 || Object.keys(body.product ?? {}).length !== 5) {
        throw new Error(
          `Cannot benchmark gateway '${id}' over loopback as it must answer 200 with 5 branches: current answer is ${response.status}`,
        );
      }
    }
    log(`loopback: warm-up ${WARMUP_SECONDS} s per gateway, then wrk -t1 -c${CONCURRENCY}`);
    for (const id of GATEWAYS) wrk(url(id), WARMUP_SECONDS, CONCURRENCY);
    const runs = Object.fromEntries(GATEWAYS.map((id) => [id, []])) as unknown as Record<
      GatewayId,
      WrkRun[]
    >;
    for (let round = 0; round < loopbackRounds; round++) {
      const line: string[] = [];
      for (const id of order(round)) {
        const run = wrk(url(id), seconds, CONCURRENCY);
        runs[id].push(run);
        line.push(`${id} ${run.requestsPerSecond.toFixed(0)} req/s`);
      }
      log(`loopback round ${round + 1}/${loopbackRounds}: ${line.join(", ")}`);
    }
    const naive = median(runs.naive.map((r) => r.requestsPerSecond));
    const equivalent = median(runs.equivalent.map((r) => r.requestsPerSecond));
    const cases = GATEWAYS.map((id) => {
      const rps = runs[id].map((r) => r.requestsPerSecond);
      return {
        id,
        label: GATEWAY_LABELS[id],
        requestsPerSecond: median(rps),
        rounds: rps,
        share: median(rps) / naive,
        shareOfEquivalent: median(rps) / equivalent,
        pairedShare: median(rps.map((v, i) => v / runs.naive[i].requestsPerSecond)),
        latencyMs: {
          p50: median(runs[id].map((r) => r.latencyMs.p50)),
          p99: median(runs[id].map((r) => r.latencyMs.p99)),
        },
        non2xx: runs[id].reduce((n, r) => n + r.non2xx, 0),
        socketErrors: runs[id].map((r) => r.socketErrors).filter((e) => e !== undefined),
      };
    });
    return {
      tool: `wrk -t1 -c${CONCURRENCY} -d${seconds}s`,
      secondsPerRun: seconds,
      rounds: loopbackRounds,
      connections: CONCURRENCY,
      downstream: `trivial downstream, its own ${runtime.name} process`,
      cases,
    };
  } finally {
    await Promise.all([downstream, ...Object.values(gateways)].map(stop));
  }
}

// ---- run

if (flags.run !== undefined) {
  if (!(GATEWAYS as readonly string[]).includes(flags.run)) {
    throw new RangeError(
      `Cannot run the overhead benchmark as '--run' must name a gateway (${GATEWAYS}): current value is ${flags.run}`,
    );
  }
  await childRun(flags.run as GatewayId);
  process.exit(0);
}

log(
  `${runtime.name} ${runtime.version}, seed ${SEED}, ${machine().cores} cores, ` +
    `1-min load ${loadAtStart.toFixed(2)}${gc === undefined ? ", no GC exposed" : ""}`,
);
const inProcessResult = flags.mode === "loopback" ? undefined : await inProcess();
const loopbackResult = flags.mode === "in-process" ? undefined : await loopback();
const loopbackCases = loopbackResult?.cases ?? [];

/** The targets hold for fanfare's gateways; the hand-written ones are what they are held to. */
function isFanfare(id: GatewayId): boolean {
  return id === "fanfare" || id === "fanfare-defaults";
}

const targets = [
  ...(inProcessResult?.cases.filter((c) => isFanfare(c.id)).map((c) => ({
    name: `in process, ${c.id}: µs per request ≤ ${IN_PROCESS_TARGET}× the hand-written handler's`,
    value: c.ratio,
    unit: "×",
    pass: c.ratio <= IN_PROCESS_TARGET,
  })) ?? []),
  ...loopbackCases.filter((c) => isFanfare(c.id)).map((c) => ({
    name: `loopback, ${c.id}: requests/s ≥ ${LOOPBACK_TARGET * 100} % of the hand-written's`,
    value: c.share,
    unit: "",
    pass: c.share >= LOOPBACK_TARGET,
  })),
];

console.log();
if (inProcessResult !== undefined) {
  console.log(`In process (${CONCURRENCY} concurrent, median of ${rounds} rounds):`);
  for (const c of inProcessResult.cases) {
    console.log(
      `  ${c.id.padEnd(17)} ${c.usPerRequest.toFixed(1).padStart(7)} µs/request  ` +
        `${c.ratio.toFixed(2)}× (paired ${c.pairedRatio.toFixed(2)}×, ` +
        `${c.ratioToEquivalent.toFixed(2)}× the equivalent)  cpu ` +
        `${c.cpuUsPerRequest.toFixed(1)} µs ${c.cpuRatio.toFixed(2)}×  ${
          JSON.stringify(c.statuses)
        }`,
    );
  }
}
if (loopbackCases.length > 0) {
  console.log(`Loopback (${loopbackResult?.tool}, median of ${loopbackRounds} rounds):`);
  for (const c of loopbackCases) {
    console.log(
      `  ${c.id.padEnd(17)} ${c.requestsPerSecond.toFixed(0).padStart(7)} req/s  ` +
        `${(c.share * 100).toFixed(1)} % (paired ${(c.pairedShare * 100).toFixed(1)} %, ` +
        `${(c.shareOfEquivalent * 100).toFixed(1)} % of the equivalent)  ` +
        `p50 ${c.latencyMs.p50} ms, p99 ${c.latencyMs.p99} ms, non-2xx ${c.non2xx}`,
    );
  }
}
for (const t of targets) {
  console.log(`  ${t.pass ? "pass" : "MISS"}  ${t.name}: ${t.value.toFixed(2)}${t.unit}`);
}
const loadAtEnd = loadAverage();
console.log(`1-min load ${loadAtStart.toFixed(2)} → ${loadAtEnd.toFixed(2)}`);

const file = writeResult(`overhead-${runtime.name}.json`, {
  experiment: "overhead",
  command,
  seed: SEED,
  runtime: runtime.name,
  version: runtime.version,
  date: new Date().toISOString(),
  machine: machine(),
  loadAverage: { start: loadAtStart, end: loadAtEnd },
  wallSeconds: (performance.now() - startedAt) / 1000,
  inProcess: inProcessResult,
  loopback: loopbackResult,
  targets,
});
console.log(`wrote ${file}`);
