/**
 * Streaming fan-out benchmark: `deno task bench:stream` (add `-- --quick` for 1M/10M only, or
 * `-- --cases=straggler,backpressure` for some cases; the file then holds only those).
 *
 * 1. Scale: the `enrich` job (deno, trivial tasks, limit 64, seed 1) over 1M, 10M and 50M tasks,
 *    with RSS, heap and in-flight sampled every second by the job itself.
 * 2. Unbounded vs bounded: `enrich --unbounded` and the bounded job over 10M tasks under a
 *    64 MB V8 heap (`--max-old-space-size=64`): where the unbounded one dies, and the bounded peaks.
 * 3. Ordered vs unordered with a wide straggler gap: 20,000 tasks with their drawn latencies
 *    (median 5 ms, p99 200 ms), task 0 forced to 2 s; latency to first result, peak results held,
 *    total time.
 * 4. Backpressure over time: producer tasks of 1 ms, a consumer that needs 2 ms per result;
 *    tasks pulled minus results read, sampled every 50 ms, against `limit + highWaterMark`.
 *
 * Results go to `bench/results/stream-deno.json`.
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { fanOutStream } from "../src/executor/mod.ts";
import { generateTasks } from "../sim/task_generator.ts";
import { writeResult } from "./_experiment.ts";
import { currentRuntime, loadAverage, machine } from "./_runtime.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const deno = path.join(root, "node_modules", "deno", "deno");
const quick = process.argv.includes("--quick");
const casesArg = process.argv.find((a) => a.startsWith("--cases="))?.slice("--cases=".length);
const cases = new Set(casesArg?.split(",") ?? ["scale", "unbounded", "straggler", "backpressure"]);

function enrich(args: string[], v8Flags: string[] = []) {
  const flags = v8Flags.length > 0 ? [`--v8-flags=${v8Flags.join(",")}`] : [];
  const started = performance.now();
  const child = spawnSync(deno, ["run", "-A", ...flags, "cli/enrich.ts", ...args, "--json"], {
    cwd: root,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  const wallMs = Math.round(performance.now() - started);
  const summary = child.status === 0 ? JSON.parse(child.stdout) : undefined;
  const progress = child.stderr.split("\n").filter((l) => l.startsWith("progress"));
  return {
    exit: child.status ?? child.signal,
    wallMs,
    summary,
    lastProgress: progress.at(-1),
    error: child.status === 0 ? undefined : child.stderr.split("\n").slice(-12).join("\n"),
  };
}

function scale() {
  const sizes = quick ? [1_000_000, 10_000_000] : [1_000_000, 10_000_000, 50_000_000];
  return sizes.map((tasks) => {
    const run = enrich([`--tasks=${tasks}`, "--limit=64", "--seed=1"]);
    const s = run.summary;
    console.log(
      `scale ${tasks.toLocaleString("en")}: ${(s.wallMs / 1000).toFixed(1)} s, ` +
        `${s.tasksPerSecond.toLocaleString("en")} tasks/s, peak RSS ${s.peakRssMB} MB, ` +
        `peak in-flight ${s.peakInFlight}, RSS samples ${
          s.samples.map((x: { rssMB: number }) => x.rssMB).join(" ")
        }`,
    );
    return { tasks, ...s };
  });
}

function unboundedVsBounded() {
  const tasks = 10_000_000;
  const cap = ["--max-old-space-size=64"];
  const bounded = enrich([`--tasks=${tasks}`, "--limit=64", "--progress-ms=500"], cap);
  const unbounded = enrich([`--tasks=${tasks}`, "--unbounded", "--progress-ms=500"], cap);
  console.log(
    `bounded under a 64 MB heap: exit ${bounded.exit}, peak RSS ${bounded.summary?.peakRssMB} MB, ` +
      `peak in-flight ${bounded.summary?.peakInFlight}, ${bounded.wallMs} ms`,
  );
  console.log(
    `unbounded under a 64 MB heap: exit ${unbounded.exit} after ${unbounded.wallMs} ms; ` +
      `last progress: ${unbounded.lastProgress}`,
  );
  return {
    tasks,
    v8Flags: cap,
    bounded: { exit: bounded.exit, wallMs: bounded.wallMs, summary: bounded.summary },
    unbounded,
  };
}

async function stragglerGap() {
  const count = 20_000;
  const limit = 64;
  const run = async (ordered: boolean, window: number) => {
    const started = performance.now();
    let first = NaN;
    let received = 0;
    const stream = fanOutStream(
      generateTasks({ count, seed: 3, tailEvery: 0 }),
      (task, { signal }) =>
        new Promise<number>((resolve, reject) => {
          const ms = task.index === 0 ? 2000 : task.latencyMs;
          const timer = setTimeout(() => resolve(task.index), ms);
          signal.addEventListener("abort", () => {
            clearTimeout(timer);
            reject(signal.reason);
          }, { once: true });
        }),
      { limit, ordered, window },
    );
    for await (const _ of stream) {
      if (received++ === 0) first = performance.now() - started;
    }
    const result = {
      mode: ordered ? `ordered, window ${window}` : "unordered",
      firstResultMs: Math.round(first),
      peakHeld: stream.stats.peakHeld,
      peakInFlight: stream.stats.peakInFlight,
      totalMs: Math.round(performance.now() - started),
    };
    console.log(`straggler gap ${JSON.stringify(result)}`);
    return result;
  };
  return {
    tasks: count,
    limit,
    straggler: "task 0 takes 2000 ms; others median 5 ms, p99 200 ms (seed 3)",
    runs: [
      await run(false, 0),
      await run(true, limit),
      await run(true, 4 * limit),
      await run(true, 4096),
    ],
  };
}

async function backpressure() {
  const limit = 16;
  const highWaterMark = 16;
  let pulled = 0;
  let read = 0;
  function* tasks() {
    for (let i = 0; i < 1000; i++) {
      pulled++;
      yield i;
    }
  }
  const stream = fanOutStream(
    tasks(),
    (n) => new Promise<number>((resolve) => setTimeout(() => resolve(n), 1)),
    { limit, highWaterMark, ordered: false },
  );
  const samples: { ms: number; pulled: number; read: number; unread: number }[] = [];
  const started = performance.now();
  const sampler = setInterval(() => {
    samples.push({
      ms: Math.round(performance.now() - started),
      pulled,
      read,
      unread: pulled - read,
    });
  }, 50);
  try {
    for await (const _ of stream) {
      read++;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  } finally {
    clearInterval(sampler);
  }
  const maxUnread = Math.max(...samples.map((s) => s.unread));
  console.log(
    `backpressure: ${read} results in ${Math.round(performance.now() - started)} ms, ` +
      `pulled-but-unread at most ${maxUnread} (bound ${limit + highWaterMark})`,
  );
  return { limit, highWaterMark, producerMs: 1, consumerMs: 2, maxUnread, samples };
}

const loadStart = loadAverage();
const measured = {
  scale: cases.has("scale") ? scale() : undefined,
  unboundedVsBounded: cases.has("unbounded") ? unboundedVsBounded() : undefined,
  stragglerGap: cases.has("straggler") ? await stragglerGap() : undefined,
  backpressure: cases.has("backpressure") ? await backpressure() : undefined,
};
const runtime = currentRuntime();
const report = {
  bench: "stream",
  runtime: runtime.name,
  version: runtime.version,
  command: "deno task bench:stream",
  // Seed of the scale runs; the straggler case uses seed 3.
  seed: 1,
  date: new Date().toISOString(),
  machine: machine(),
  loadAverage: { start: loadStart, end: loadAverage() },
  ...measured,
};
const written = writeResult("stream-deno.json", report);
console.log(
  `1-min load ${report.loadAverage.start.toFixed(2)} → ${report.loadAverage.end.toFixed(2)}; ` +
    `wrote ${written}`,
);
