/**
 * Executor A/B benchmark: the `fanOut` of this checkout against the one of another checkout
 * (`--baseline=DIR`, for example a `git worktree` of the commit before a change), in one process,
 * alternating which goes first, so that a busy machine slows both alike. It answers "did this
 * change cost anything" where `bench:executor`'s absolute figures drift with the machine's load.
 *
 * `deno task bench:executor:ab -- --baseline=DIR` runs every case on deno and bun, each case in a
 * child process of its own (so no call site sees a second task function), and prints, per case,
 * the median ns/task of both versions, the median of their per-round ratios (each round runs
 * both back to back, so the machine's drift cancels), and each one's ratio to the bare worker
 * loop measured in the same rounds. `--tasks=N` (default 1,000,000) and `--rounds=N` (default 7)
 * change the size; `--cases=a,b` picks cases. Results go to `bench/results/executor-ab-<runtime>.json`.
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { median } from "./_quantiles.ts";
import { currentRuntime, garbageCollector, loadAverage } from "./_runtime.ts";

const LIMIT = 64;

type FanOut = (
  tasks: Iterable<number>,
  fn: (x: number, context: { signal: AbortSignal }) => Promise<number>,
  options: Record<string, unknown>,
) => Promise<unknown>;

// deno-lint-ignore require-await -- the trivial async task is the point of the benchmark
const addOne = async (x: number) => x + 1;
const readsSignal = (x: number, { signal }: { signal: AbortSignal }) =>
  signal.aborted ? Promise.resolve(-1) : addOne(x);

/** Each case runs one fan-out of `inputs`; `bare` ignores `fanOut` and is the yardstick. */
const cases: Record<string, (fanOut: FanOut, inputs: number[]) => Promise<unknown>> = {
  bare: async (_fanOut, inputs) => {
    const it = inputs[Symbol.iterator]();
    const worker = async () => {
      for (;;) {
        const s = it.next();
        if (s.done) return;
        await addOne(s.value);
      }
    };
    await Promise.all(Array.from({ length: LIMIT }, worker));
  },
  failFast: (fanOut, inputs) => fanOut(inputs, addOne, { limit: LIMIT, policy: "failFast" }),
  collectAll: (fanOut, inputs) => fanOut(inputs, addOne, { limit: LIMIT, policy: "collectAll" }),
  default: (fanOut, inputs) => fanOut(inputs, addOne, { limit: LIMIT }),
  timeout: (fanOut, inputs) => fanOut(inputs, addOne, { limit: LIMIT, timeoutMs: 1000 }),
  onResult: (fanOut, inputs) => {
    let sum = 0;
    return fanOut(inputs, addOne, { limit: LIMIT, onResult: (v: number) => sum += v });
  },
  readsSignal: (fanOut, inputs) => fanOut(inputs, readsSignal, { limit: LIMIT }),
  timeoutReadsSignal: (fanOut, inputs) =>
    fanOut(inputs, readsSignal, { limit: LIMIT, timeoutMs: 1000 }),
};

function option(name: string): string | undefined {
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

function count(name: string, fallback: number): number {
  const text = option(name);
  const value = text === undefined ? fallback : Number(text);
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot run the benchmark as '--${name}' must be a positive integer: current value is ${text}`,
    );
  }
  return value;
}

/** One case in this process: `rounds` × (baseline, current) in alternating order; ns/task each. */
async function child(name: string, baselineDir: string, tasks: number, rounds: number) {
  const load = async (dir: string) =>
    (await import(pathToFileURL(path.join(dir, "src/executor/mod.ts")).href)).fanOut as FanOut;
  const versions = { baseline: await load(baselineDir), current: await load(process.cwd()) };
  const inputs = Array.from({ length: tasks }, (_, i) => i % 1000);
  const run = cases[name];
  const gc = garbageCollector();
  const ns: Record<"baseline" | "current" | "bare", number[]> = {
    baseline: [],
    current: [],
    bare: [],
  };
  const time = async (which: "baseline" | "current" | "bare") => {
    gc?.();
    const start = performance.now();
    await (which === "bare" ? cases.bare : run)(
      versions[which === "bare" ? "current" : which],
      inputs,
    );
    ns[which].push((performance.now() - start) * 1e6 / tasks);
  };
  const warmUp = inputs.slice(0, tasks / 10);
  await run(versions.baseline, warmUp);
  await run(versions.current, warmUp);
  await cases.bare(versions.current, warmUp);
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0
      ? (["baseline", "current", "bare"] as const)
      : (["current", "baseline", "bare"] as const);
    for (const which of order) await time(which);
  }
  console.log(JSON.stringify(ns));
}

interface Row {
  name: string;
  baseline: number;
  current: number;
  bare: number;
  /** Median over the rounds of current ÷ baseline within a round (paired, so drift cancels). */
  pairedRatio: number;
}

function orchestrate(args: string[]): void {
  const runtime = currentRuntime();
  const names = option("cases")?.split(",") ?? Object.keys(cases).filter((n) => n !== "bare");
  const loadAtStart = loadAverage();
  const rows: Row[] = [];
  for (const name of names) {
    if (!(name in cases)) throw new RangeError(`Cannot run the benchmark: no case named ${name}`);
    const [command, ...flags] = runtime.name === "deno"
      ? [process.execPath, "run", "-A", "--v8-flags=--expose-gc"]
      : [process.execPath];
    const script = fileURLToPath(import.meta.url);
    const out = spawnSync(command, [...flags, script, `--child=${name}`, ...args], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    });
    if (out.status !== 0) throw new Error(`Case ${name} failed: exit ${out.status}`);
    const ns = JSON.parse(out.stdout.trim().split("\n").at(-1)!);
    rows.push({
      name,
      baseline: median(ns.baseline),
      current: median(ns.current),
      bare: median(ns.bare),
      pairedRatio: median(ns.current.map((c: number, i: number) => c / ns.baseline[i])),
    });
    const row = rows.at(-1)!;
    console.log(
      `${runtime.name} ${name.padEnd(20)} baseline ${row.baseline.toFixed(0).padStart(5)} ns` +
        `  current ${row.current.toFixed(0).padStart(5)} ns  current/baseline (paired) ` +
        `${row.pairedRatio.toFixed(3)}  (÷ bare loop ${row.bare.toFixed(0)} ns: ` +
        `${(row.baseline / row.bare).toFixed(2)} → ${(row.current / row.bare).toFixed(2)})`,
    );
  }
  const report = {
    runtime: runtime.name,
    version: runtime.version,
    date: new Date().toISOString(),
    command: `deno task bench:executor:ab ${args.join(" ")}`,
    loadAverage: { start: loadAtStart, end: loadAverage() },
    rows,
  };
  const file = path.join("bench", "results", `executor-ab-${runtime.name}.json`);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(report, null, 2) + "\n");
  console.log(
    `${runtime.name}: 1-min load ${loadAtStart.toFixed(2)} → ${
      loadAverage().toFixed(2)
    }; wrote ${file}`,
  );
}

const baselineDir = option("baseline");
if (baselineDir === undefined) {
  throw new TypeError("Cannot run the A/B benchmark without '--baseline=DIR' (an older checkout)");
}
const tasks = count("tasks", 1_000_000);
const rounds = count("rounds", 7);
const childCase = option("child");
if (childCase !== undefined) await child(childCase, path.resolve(baselineDir), tasks, rounds);
else if (process.argv.includes("--runtime-only")) {
  orchestrate(process.argv.slice(2).filter((a) => a !== "--runtime-only"));
} else {
  // Each runtime runs the whole set in turn.
  process.chdir(fileURLToPath(new URL("..", import.meta.url)));
  const args = process.argv.slice(2);
  for (
    const [command, flags] of [
      [path.join("node_modules", ".bin", "deno"), ["run", "-A"]],
      [path.join("node_modules", ".bin", "bun"), []],
    ] as const
  ) {
    const out = spawnSync(command, [...flags, "bench/executor_ab.ts", ...args, "--runtime-only"], {
      stdio: "inherit",
    });
    if (out.status !== 0) process.exitCode = 1;
  }
}
