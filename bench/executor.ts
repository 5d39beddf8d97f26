/**
 * Executor overhead benchmark: 1,000,000 trivial async tasks at limit 64 through `Promise.all`,
 * a bare worker loop, p-limit, p-map and `fanOut` in each policy and mode, on deno, bun and node.
 *
 * `deno task bench:executor` runs this file as an orchestrator: it starts itself on each runtime as
 * a child process (with a full GC exposed) and prints the three tables side by side.
 * `--runtime-only` measures on the current runtime only. `--tasks=N` and `--repeats=N` change
 * the size of a run (the figures are for the defaults).
 *
 * Per case: one untimed warm-up run over a tenth of the tasks, then `repeats` timed runs with a
 * full GC before each (median reported), then one untimed, checked run in which the task samples
 * `heapUsed` every 1,024 calls; trivial tasks never yield to the timer queue, so a `setInterval`
 * sampler would not fire during a case. The peak includes garbage not yet collected; the
 * retained figure is `heapUsed` after a full GC with the case's output still referenced.
 * Results go to `bench/results/executor-<runtime>.json`.
 *
 * @module
 */

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import pLimit from "p-limit";
import pMap from "p-map";
import { fanOut, type FanOutResult } from "../src/executor/mod.ts";
import { runOnAllRuntimes } from "./_all_runtimes.ts";
import { median } from "./_quantiles.ts";
import {
  type CaseResult,
  checkTargets,
  formatReport,
  formatSideBySide,
  type RuntimeReport,
} from "./_report.ts";
import { currentRuntime, garbageCollector, heapUsed, loadAverage, machine } from "./_runtime.ts";

const LIMIT = 64;
/** The warm-up run of each case covers this fraction of the tasks. */
const WARMUP_FRACTION = 0.1;
const SAMPLE_EVERY = 1024;

type Task = (x: number) => Promise<number>;
/** What a case hands back for checking: results, a streamed sum, or nothing (bare loop). */
type Outcome = number[] | FanOutResult<number> | { streamedSum: number } | undefined;

interface Case {
  id: string;
  label: string;
  run(): Promise<Outcome>;
}

function option(name: string, fallback: number): number {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  if (arg === undefined) return fallback;
  const value = Number(arg.slice(name.length + 3));
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot run the benchmark as '--${name}' must be a positive integer: current value is ${
        arg.slice(name.length + 3)
      }`,
    );
  }
  return value;
}

/** Fixed input: xorshift32 from seed 42, values 0..999. */
function makeInputs(count: number): number[] {
  const inputs = new Array<number>(count);
  let s = 42;
  for (let i = 0; i < count; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    inputs[i] = (s >>> 0) % 1000;
  }
  return inputs;
}

/** Set only during a case's memory run. */
let heapSampler: { calls: number; peakBytes: number } | undefined;

/**
 * The one task every case runs, timed or not, so that no call site in a library sees a second
 * function during the memory run; the sampler check costs every case the same.
 */
// deno-lint-ignore require-await -- the trivial async task is the point of the benchmark
const addOne: Task = async (x) => {
  if (heapSampler !== undefined && ++heapSampler.calls % SAMPLE_EVERY === 0) {
    heapSampler.peakBytes = Math.max(heapSampler.peakBytes, heapUsed());
  }
  return x + 1;
};

/**
 * The cases, in print order, all over `inputs` with `addOne`. The fan-out cases share one
 * executor, so the case that hands it a second task function comes last.
 */
function makeCases(inputs: number[]): Case[] {
  const bareLoop = async () => {
    const it = inputs[Symbol.iterator]();
    const worker = async () => {
      for (;;) {
        const s = it.next();
        if (s.done) return;
        await addOne(s.value);
      }
    };
    await Promise.all(Array.from({ length: LIMIT }, worker));
    return undefined;
  };
  const bareLoopCollect = async () => {
    const it = inputs[Symbol.iterator]();
    const out: number[] = [];
    let next = 0;
    const worker = async () => {
      for (;;) {
        const s = it.next();
        if (s.done) return;
        const i = next++;
        out[i] = await addOne(s.value);
      }
    };
    await Promise.all(Array.from({ length: LIMIT }, worker));
    return out;
  };
  return [
    {
      id: "promise-all",
      label: "Promise.all (unbounded)",
      run: () => Promise.all(inputs.map(addOne)),
    },
    { id: "bare-loop", label: "bare worker loop", run: bareLoop },
    { id: "bare-loop-collect", label: "bare worker loop + collect", run: bareLoopCollect },
    {
      id: "p-limit",
      label: "p-limit",
      run: () => {
        const limit = pLimit(LIMIT);
        return Promise.all(inputs.map((x) => limit(addOne, x)));
      },
    },
    { id: "p-map", label: "p-map", run: () => pMap(inputs, addOne, { concurrency: LIMIT }) },
    {
      id: "fanout-failfast",
      label: "fanOut failFast",
      run: () => fanOut(inputs, addOne, { limit: LIMIT, policy: "failFast" }),
    },
    {
      id: "fanout-collectall",
      label: "fanOut collectAll",
      run: () => fanOut(inputs, addOne, { limit: LIMIT, policy: "collectAll" }),
    },
    {
      id: "fanout-default",
      label: "fanOut default (bestEffort, ordered)",
      run: () => fanOut(inputs, addOne, { limit: LIMIT }),
    },
    {
      id: "fanout-timeout",
      label: "fanOut timeoutMs: 1000",
      run: () => fanOut(inputs, addOne, { limit: LIMIT, timeoutMs: 1000 }),
    },
    {
      id: "fanout-onresult",
      label: "fanOut onResult (streaming)",
      run: async () => {
        let streamedSum = 0;
        await fanOut(inputs, addOne, {
          limit: LIMIT,
          onResult: (value) => {
            streamedSum += value;
          },
        });
        return { streamedSum };
      },
    },
    {
      // A real branch passes its signal on; without timeoutMs that signal once was the call's
      // shared one, which a later abort of the call reached after the branch had settled.
      id: "fanout-signal",
      label: "fanOut default, task reads signal",
      run: () =>
        fanOut(inputs, (x, { signal }) => signal.aborted ? Promise.resolve(-1) : addOne(x), {
          limit: LIMIT,
        }),
    },
    {
      // Not one of the cases: a real branch passes its signal on, which makes fanOut
      // create the per-branch AbortController that the timeout case above never asks for.
      id: "fanout-timeout-signal",
      label: "fanOut timeoutMs: 1000, task reads signal",
      run: () =>
        fanOut(inputs, (x, { signal }) => signal.aborted ? Promise.resolve(-1) : addOne(x), {
          limit: LIMIT,
          timeoutMs: 1000,
        }),
    },
  ];
}

function sum(values: number[]): number {
  let total = 0;
  for (const v of values) total += v;
  return total;
}

/** Throws unless the outcome holds every task's result. */
function check(id: string, outcome: Outcome, tasks: number, expected: number): void {
  let got: number;
  if (outcome === undefined) return;
  if (Array.isArray(outcome)) got = outcome.length === tasks ? sum(outcome) : NaN;
  else if ("streamedSum" in outcome) got = outcome.streamedSum;
  else {
    got = outcome.succeeded === tasks && outcome.failed.length === 0 ? sum(outcome.values) : NaN;
  }
  if (got !== expected) {
    throw new Error(`Case ${id} returned a wrong result: checksum ${got}, expected ${expected}`);
  }
}

/** Warm-up then timed runs, in ns/task. Its own frame, so no run's output outlives it. */
async function timeRuns(c: Case, warmup: Case, repeats: number, tasks: number, gc?: () => void) {
  gc?.();
  await warmup.run();
  const nsPerTask: number[] = [];
  for (let i = 0; i < repeats; i++) {
    gc?.();
    const start = performance.now();
    await c.run();
    nsPerTask.push((performance.now() - start) * 1e6 / tasks);
  }
  return nsPerTask;
}

function macrotask(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** One untimed, checked run with the heap sampler on; then a GC with its output referenced. */
async function heapRun(c: Case, tasks: number, expected: number, gc?: () => void) {
  // Let whatever the last timed run left queued (p-map's workers finish after it resolves) end.
  await macrotask();
  gc?.();
  const baselineHeapBytes = heapUsed();
  const sampler = { calls: 0, peakBytes: baselineHeapBytes };
  heapSampler = sampler;
  let outcome: Outcome;
  try {
    outcome = await c.run();
  } finally {
    heapSampler = undefined;
  }
  let peakHeapBytes = Math.max(sampler.peakBytes, heapUsed());
  await macrotask();
  gc?.();
  const retainedHeapBytes = heapUsed();
  // Also a sample of the run's heap: bun's heapUsed moves mostly at collections, so the samples
  // taken while running can read lower than this one.
  peakHeapBytes = Math.max(peakHeapBytes, retainedHeapBytes);
  check(c.id, outcome, tasks, expected);
  return { baselineHeapBytes, peakHeapBytes, retainedHeapBytes };
}

async function measure(
  [c, warmup]: [Case, Case],
  tasks: number,
  repeats: number,
  expected: number,
  gc: (() => void) | undefined,
): Promise<CaseResult> {
  const repeatsNsPerTask = await timeRuns(c, warmup, repeats, tasks, gc);
  const heap = await heapRun(c, tasks, expected, gc);
  return {
    id: c.id,
    label: c.label,
    nsPerTask: median(repeatsNsPerTask),
    repeatsNsPerTask,
    ...heap,
  };
}

function resultsPath(runtime: string): string {
  return path.join(process.cwd(), "bench", "results", `executor-${runtime}.json`);
}

async function measureThisRuntime(tasks: number, repeats: number): Promise<void> {
  const runtime = currentRuntime();
  const gc = garbageCollector();
  const loadAtStart = loadAverage();
  const inputs = makeInputs(tasks);
  const expected = sum(inputs) + tasks;
  const cases = makeCases(inputs);
  const warmupTasks = Math.max(1, Math.round(tasks * WARMUP_FRACTION));
  const warmups = makeCases(inputs.slice(0, warmupTasks));
  console.log(
    `${runtime.name} ${runtime.version}: ${cases.length} cases × (warm-up of ` +
      `${warmupTasks.toLocaleString("en")} + ${repeats} timed + 1 memory run of ` +
      `${tasks.toLocaleString("en")} tasks)` +
      (gc ? "" : " — no GC exposed, heap figures are noisy"),
  );
  const results: CaseResult[] = [];
  for (const [i, c] of cases.entries()) {
    const started = performance.now();
    const result = await measure([c, warmups[i]], tasks, repeats, expected, gc);
    results.push(result);
    console.log(
      `  [${i + 1}/${cases.length}] ${c.label}: ${result.nsPerTask.toFixed(0)} ns/task ` +
        `(${((performance.now() - started) / 1000).toFixed(1)} s)`,
    );
  }
  const report: RuntimeReport = {
    runtime: runtime.name,
    version: runtime.version,
    date: new Date().toISOString(),
    machine: machine(),
    tasks,
    limit: LIMIT,
    warmupTasks,
    repeats,
    gcBetweenCases: gc !== undefined,
    loadAverage: { start: loadAtStart, end: loadAverage() },
    cases: results,
    targets: checkTargets(results),
  };
  const file = resultsPath(runtime.name);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(report, null, 2) + "\n");
  console.log(formatReport(report).join("\n"));
  console.log(`  wrote bench/results/executor-${runtime.name}.json`);
}

function orchestrate(args: string[]): number {
  const runs = runOnAllRuntimes(process.cwd(), "bench/executor.ts", [...args, "--runtime-only"]);
  const reports: RuntimeReport[] = [];
  for (const r of runs) {
    if (r.ok) reports.push(JSON.parse(readFileSync(resultsPath(r.runtime), "utf8")));
  }
  console.log("\n=== side by side (ns/task, median; pkMB = peak heap above the post-GC baseline)");
  console.log(formatSideBySide(reports).join("\n"));
  const failed = runs.filter((r) => !r.ok);
  for (const r of failed) console.log(`  ${r.runtime} did not finish: ${r.detail}`);
  return failed.length === 0 ? 0 : 1;
}

const tasks = option("tasks", 1_000_000);
const repeats = option("repeats", 3);
if (process.argv.includes("--runtime-only")) await measureThisRuntime(tasks, repeats);
else {
  // The children write their results under the project root, where the orchestrator reads them.
  process.chdir(fileURLToPath(new URL("..", import.meta.url)));
  process.exitCode = orchestrate(process.argv.slice(2));
}
