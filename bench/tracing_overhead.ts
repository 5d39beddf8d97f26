/**
 * Tracing overhead benchmark: what distributed tracing costs a product request in process, with
 * tracing off (no OpenTelemetry provider registered: the default) against the same gateway
 * before tracing existed, and with spans recorded.
 *
 * Five gateways, each `createApp({ registry: defaultRegistry(downstream) })` over the trivial
 * in-process downstream of `bench:overhead` (`bench/_overhead_apps.ts`), each run in a Deno
 * process of its own (in one process the gateways shared a JIT and a heap: the spans one of them
 * queued, and its code's type feedback, moved the others' figures by 5–15 %):
 *
 * - `before`: that code at `--baseline` (a git revision, `main` by default), extracted with
 *   `git archive` into a temporary directory beside this checkout's `node_modules`;
 * - `untraced`: this checkout with `tracer: null`, no tracing code on the request path at all:
 *   the reference for what tracing off costs, free of every other change since `--baseline`;
 * - `off`: this checkout, no provider registered (trace headers still flow downstream);
 * - `off-traceparent`: the same, every request carrying a sampled `traceparent`, which the
 *   gateway parses and passes on;
 * - `on`: this checkout with the SDK recording every span (`BasicTracerProvider`, a
 *   `BatchSpanProcessor` into an exporter that drops the batches: the cost of the spans, not of
 *   a network).
 *
 * 32 callers in a closed loop send `GET /product/<id>` (seeded xorshift ids) until `--requests`
 * have answered, once untimed (warm-up) and once timed, a full GC before each; `--rounds` rounds
 * each run the five in a rotated order. Figures: wall and CPU µs per
 * request (this process's user + system time, which moves less with the machine's load), median
 * over rounds, and each gateway's ratio to `before` taken within each round (both ran under the
 * same load). The load average is printed and recorded.
 *
 * ```sh
 * deno task bench:tracing
 * deno task bench:tracing --rounds=9 --baseline=HEAD~3
 * ```
 *
 * Writes `bench/results/tracing-overhead.json`.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { writeResult } from "./_experiment.ts";
import { median } from "./_quantiles.ts";
import { positiveFlag } from "./_flags.ts";
import { currentRuntime, garbageCollector, loadAverage, machine } from "./_runtime.ts";
import { productPaths, trivialDownstream } from "./_overhead_apps.ts";

const SEED = 19;
const CONCURRENCY = 32;
const TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const CASES = ["before", "untraced", "off", "off-traceparent", "on"] as const;
type CaseId = typeof CASES[number];

const { values: flags } = parseArgs({
  args: process.argv.slice(2),
  options: {
    requests: { type: "string", default: "4000" },
    rounds: { type: "string", default: "7" },
    baseline: { type: "string", default: "main" },
    // Internal: one timed run of one case in a child process.
    run: { type: "string" },
    dir: { type: "string" },
  },
});

const positiveInteger = (name: "requests" | "rounds") =>
  positiveFlag("the tracing benchmark", name, flags[name], { integer: true });

const requests = positiveInteger("requests");
const rounds = positiveInteger("rounds");
const repo = new URL("..", import.meta.url).pathname;
const gc = garbageCollector();
const startedAt = performance.now();

function log(message: string): void {
  const s = ((performance.now() - startedAt) / 1000).toFixed(1);
  console.log(`[tracing ${s}s] ${message} (load ${loadAverage().toFixed(2)})`);
}

/** `createApp` and `defaultRegistry` of the gateway in `dir`. */
async function gatewayIn(dir: string) {
  const { createApp } = await import(`${dir}/routes/app.ts`);
  const { defaultRegistry } = await import(`${dir}/src/gateway/mod.ts`);
  return { createApp, defaultRegistry };
}

/** The code at `revision`, extracted next to a link to this checkout's `node_modules`. */
async function extract(revision: string): Promise<{ dir: string; commit: string }> {
  const git = (args: string[]) => new Deno.Command("git", { args, cwd: repo }).output();
  const parsed = await git(["rev-parse", "--verify", `${revision}^{commit}`]);
  if (!parsed.success) {
    throw new Error(
      `Cannot run the tracing benchmark as '--baseline' must name a commit: current value is ${revision}`,
    );
  }
  const commit = new TextDecoder().decode(parsed.stdout).trim();
  const dir = await Deno.makeTempDir({ prefix: "fanfare-baseline-" });
  const archive = new Deno.Command("git", {
    args: ["archive", "--format=tar", commit],
    cwd: repo,
    stdout: "piped",
  }).spawn();
  const untar = new Deno.Command("tar", { args: ["-x", "-C", dir], stdin: "piped" }).spawn();
  await archive.stdout.pipeTo(untar.stdin);
  if (!(await archive.status).success || !(await untar.status).success) {
    throw new Error(`Cannot extract ${commit} for the tracing benchmark`);
  }
  await Deno.symlink(`${repo}node_modules`, `${dir}/node_modules`);
  return { dir, commit };
}

type Fetch = (request: Request) => Response | Promise<Response>;

/** One timed run: wall time, and this process's CPU time (user + system), which a loaded
 * machine moves less. */
interface Run {
  wallMs: number;
  cpuMs: number;
}

/** `CONCURRENCY` callers send every path in turn, each reading the body. */
async function closedLoop(fetch: Fetch, paths: string[], headers: HeadersInit): Promise<Run> {
  let next = 0;
  let failed = 0;
  const caller = async () => {
    while (next < paths.length) {
      const response = await fetch(
        new Request(`http://gateway.internal${paths[next++]}`, { headers }),
      );
      await response.arrayBuffer();
      if (response.status !== 200) failed++;
    }
  };
  gc?.();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await Promise.all(Array.from({ length: CONCURRENCY }, caller));
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  if (failed > 0) throw new Error(`Cannot trust the run as ${failed} answers were not 200`);
  return { wallMs, cpuMs: (cpu.user + cpu.system) / 1000 };
}

/** Drops every batch: spans are made and batched, nothing is sent. */
const dropExporter = {
  export: (_spans: unknown[], done: (result: { code: 0 }) => void) => done({ code: 0 }),
  shutdown: () => Promise.resolve(),
};

/**
 * One timed run of gateway `id` from the code in `dir`, in this process: a warm-up of as many
 * requests, then the timed run; the figures go to stdout as JSON.
 */
async function runOne(id: CaseId, dir: string): Promise<void> {
  const { createApp, defaultRegistry } = await gatewayIn(dir);
  const provider = id === "on"
    ? new BasicTracerProvider({
      spanProcessors: [new BatchSpanProcessor(dropExporter, { maxQueueSize: 1 << 16 })],
    })
    : undefined;
  const app = createApp({
    registry: defaultRegistry(trivialDownstream()),
    // `null` (this checkout only): no tracing code on the request path at all.
    tracer: id === "untraced" ? null : provider?.getTracer("fanfare"),
  });
  const headers: HeadersInit = id === "off" ? {} : { traceparent: TRACEPARENT };
  const paths = productPaths(SEED, requests);
  await closedLoop(app.fetch, paths, headers);
  const run = await closedLoop(app.fetch, paths, headers);
  await provider?.shutdown();
  console.log(JSON.stringify(run));
}

/** Runs {@linkcode runOne} in a fresh Deno process: no gateway shares a JIT or heap with another. */
async function spawnRun(id: CaseId, dir: string): Promise<Run> {
  const { success, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-no-legacy-abort",
      "--v8-flags=--expose-gc",
      new URL(import.meta.url).pathname,
      `--run=${id}`,
      `--dir=${dir}`,
      `--requests=${requests}`,
    ],
    cwd: repo,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(stdout).trim().split("\n").at(-1) ?? "";
  if (!success) {
    throw new Error(`Cannot run case ${id}: ${text}${new TextDecoder().decode(stderr)}`);
  }
  return JSON.parse(text);
}

if (flags.run !== undefined) {
  await runOne(flags.run as CaseId, flags.dir!);
  Deno.exit(0);
}

const baseline = await extract(flags.baseline);
log(`baseline ${flags.baseline} = ${baseline.commit.slice(0, 12)}`);
const dirs: Record<CaseId, string> = {
  before: baseline.dir,
  untraced: repo,
  off: repo,
  "off-traceparent": repo,
  on: repo,
};
const loadAtStart = loadAverage();
const runs = Object.fromEntries(CASES.map((id) => [id, [] as number[]])) as Record<
  CaseId,
  number[]
>;
const cpuRuns = Object.fromEntries(CASES.map((id) => [id, [] as number[]])) as Record<
  CaseId,
  number[]
>;
for (let round = 0; round < rounds; round++) {
  const line: string[] = [];
  for (let i = 0; i < CASES.length; i++) {
    const id = CASES[(i + round) % CASES.length];
    const run = await spawnRun(id, dirs[id]);
    const us = run.wallMs * 1000 / requests;
    runs[id].push(us);
    cpuRuns[id].push(run.cpuMs * 1000 / requests);
    line.push(`${id} ${us.toFixed(1)} µs (cpu ${(run.cpuMs * 1000 / requests).toFixed(1)})`);
  }
  log(`round ${round + 1}/${rounds}: ${line.join(", ")}`);
}
await Deno.remove(baseline.dir, { recursive: true });

const cases = CASES.map((id) => ({
  id,
  usPerRequest: median(runs[id]),
  rounds: runs[id],
  pairedRatioToBefore: median(runs[id].map((us, i) => us / runs.before[i])),
  cpuUsPerRequest: median(cpuRuns[id]),
  cpuRounds: cpuRuns[id],
  cpuPairedRatioToBefore: median(cpuRuns[id].map((us, i) => us / cpuRuns.before[i])),
  pairedRatioToUntraced: median(runs[id].map((us, i) => us / runs.untraced[i])),
  cpuPairedRatioToUntraced: median(cpuRuns[id].map((us, i) => us / cpuRuns.untraced[i])),
}));
console.log(
  "\ncase               wall µs/req  ×before  ×untraced   cpu µs/req  ×before  ×untraced   (paired medians)",
);
for (const c of cases) {
  console.log(
    `${c.id.padEnd(18)} ${c.usPerRequest.toFixed(1).padStart(10)}  ${
      c.pairedRatioToBefore.toFixed(3).padStart(7)
    }  ${c.pairedRatioToUntraced.toFixed(3).padStart(9)}   ${
      c.cpuUsPerRequest.toFixed(1).padStart(10)
    }  ${c.cpuPairedRatioToBefore.toFixed(3).padStart(7)}  ${
      c.cpuPairedRatioToUntraced.toFixed(3).padStart(9)
    }`,
  );
}
const loadAtEnd = loadAverage();
console.log(`load average ${loadAtStart.toFixed(2)} → ${loadAtEnd.toFixed(2)}`);
const written = writeResult("tracing-overhead.json", {
  command: "deno task bench:tracing",
  date: new Date().toISOString(),
  runtime: currentRuntime(),
  machine: machine(),
  seed: SEED,
  baseline: { revision: flags.baseline, commit: baseline.commit },
  requests,
  rounds,
  concurrency: CONCURRENCY,
  load: { start: loadAtStart, end: loadAtEnd },
  cases,
});
console.log(`wrote ${written}`);
