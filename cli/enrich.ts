/**
 * `enrich`: a batch job that streams generated tasks through `fanOutStream` with a fixed limit,
 * into a counted and checksummed sink (and an NDJSON file with `--out`), with progress, a closing
 * summary, checkpoint and resume, and drain-then-abort on Ctrl-C.
 *
 * Runs on deno (`deno task enrich -- --tasks=1000000`), bun (`bun cli/enrich.ts …`) and node
 * (`deno task enrich:bundle`, then `node dist/enrich.mjs …`). This file is the runtime shell:
 * arguments, signals, files, memory figures and the terminal live here; the executor and the
 * generator in `src/` know none of them.
 *
 * The checksum sums two 32-bit hashes of `2 * index + failed` over every counted task (mod 2^32
 * each), so it is independent of completion order, changes when a task is missing, counted twice,
 * or has another outcome, and is equal for equal work on every runtime.
 *
 * Every task runs under a `Supervisor`: a task that crashes its worker (`--crash-every` injects
 * such crashes; a simulated failure is the task's own outcome, not a crash) is retried after a
 * backoff, recorded failed after `--max-retries` retries, and a crash loop stops the job with a
 * message naming the task. A retried task is counted once, so a run whose crashes all recover
 * ends with the checksum of a run without crashes.
 *
 * @module
 */

import { closeSync, existsSync, fsyncSync, openSync, readFileSync, truncateSync } from "node:fs";
import { renameSync, writeFileSync, writeSync } from "node:fs";
import process from "node:process";
import { setImmediate } from "node:timers";
import { parseArgs } from "node:util";
import {
  type BranchError,
  BranchTimeoutError,
  fanOutStream,
  type StreamResult,
} from "../src/executor/mod.ts";
import {
  fullJitter,
  isCrashLoopError,
  type SupervisedContext,
  Supervisor,
} from "../src/resilience/mod.ts";
import { type GeneratedTask, generateTasks } from "../sim/task_generator.ts";

const USAGE = `Usage: enrich [options]

  --tasks=N            tasks to process (default 50000000)
  --limit=N            tasks in flight at once (default 64)
  --seed=N             generator seed (default 1)
  --error-rate=P       probability in [0, 1] that a task fails (default 0)
  --fail-every=N       task i fails when (i + 1) % N == 0; 0 = never (default 0)
  --latency            sleep each task's drawn latency (median 5 ms, p99 200 ms, 1 in 1000 at 2 s)
  --timeout=MS         per-task time limit; a late task is recorded as failed
  --crash-every=N      task i crashes its worker when (i + 1) % N == 0; 0 = never (default 0)
  --crash-attempts=N   how many attempts of such a task crash (default 1)
  --max-retries=N      retries of a task that crashed its worker, then it fails (default 2)
  --restart-backoff-ms=MS  first restart waits up to MS, doubling per crash of the task,
                       full jitter, capped at 1000 (default 10)
  --max-restarts=N     crash loop: this many worker restarts ... (default 100)
  --restart-window-ms=MS  ... within this window stop the job (default 1000)
  --window=N           ordered mode: most results held behind a straggler (default 4 x limit)
  --unordered          emit in completion order (no checkpoint possible)
  --out=FILE           also write every result as NDJSON to FILE
  --checkpoint=FILE    record progress in FILE and resume from it when it exists
  --progress-ms=MS     progress interval (default 1000)
  --unbounded          naive contrast: start every task at once (no limit, no checkpoint)
  --json               print the summary (with progress samples) as JSON on stdout
  --help               show this text

Ctrl-C drains (in-flight tasks finish, checkpoint written); a second Ctrl-C aborts.`;

interface Config {
  tasks: number;
  limit: number;
  seed: number;
  errorRate: number;
  failEvery: number;
  latency: boolean;
  timeoutMs: number | undefined;
  crashEvery: number;
  crashAttempts: number;
  maxRetries: number;
  restartBackoffMs: number;
  maxRestarts: number;
  restartWindowMs: number;
  window: number;
  ordered: boolean;
  out: string | undefined;
  checkpoint: string | undefined;
  progressMs: number;
  unbounded: boolean;
  json: boolean;
}

class UsageError extends Error {}

function integer(name: string, text: string | undefined, fallback: number, min = 0): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min) {
    throw new UsageError(`--${name} must be an integer ≥ ${min}: current value is ${text}`);
  }
  return value;
}

function parseConfig(argv: string[]): Config | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        tasks: { type: "string" },
        limit: { type: "string" },
        seed: { type: "string" },
        "error-rate": { type: "string" },
        "fail-every": { type: "string" },
        latency: { type: "boolean" },
        timeout: { type: "string" },
        "crash-every": { type: "string" },
        "crash-attempts": { type: "string" },
        "max-retries": { type: "string" },
        "restart-backoff-ms": { type: "string" },
        "max-restarts": { type: "string" },
        "restart-window-ms": { type: "string" },
        window: { type: "string" },
        unordered: { type: "boolean" },
        out: { type: "string" },
        checkpoint: { type: "string" },
        "progress-ms": { type: "string" },
        unbounded: { type: "boolean" },
        json: { type: "boolean" },
        help: { type: "boolean" },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const v = parsed.values;
  if (v.help) return "help";
  const errorRate = v["error-rate"] === undefined ? 0 : Number(v["error-rate"]);
  if (!(errorRate >= 0 && errorRate <= 1)) {
    throw new UsageError(`--error-rate must be in [0, 1]: current value is ${v["error-rate"]}`);
  }
  const limit = integer("limit", v.limit, 64, 1);
  const config: Config = {
    tasks: integer("tasks", v.tasks, 50_000_000),
    limit,
    seed: integer("seed", v.seed, 1),
    errorRate,
    failEvery: integer("fail-every", v["fail-every"], 0),
    latency: v.latency ?? false,
    timeoutMs: v.timeout === undefined ? undefined : integer("timeout", v.timeout, 0, 1),
    crashEvery: integer("crash-every", v["crash-every"], 0),
    crashAttempts: integer("crash-attempts", v["crash-attempts"], 1, 1),
    maxRetries: integer("max-retries", v["max-retries"], 2),
    restartBackoffMs: integer("restart-backoff-ms", v["restart-backoff-ms"], 10),
    maxRestarts: integer("max-restarts", v["max-restarts"], 100, 1),
    restartWindowMs: integer("restart-window-ms", v["restart-window-ms"], 1000, 1),
    window: integer("window", v.window, 4 * limit),
    ordered: !v.unordered,
    out: v.out,
    checkpoint: v.checkpoint,
    progressMs: integer("progress-ms", v["progress-ms"], 1000, 1),
    unbounded: v.unbounded ?? false,
    json: v.json ?? false,
  };
  if (config.checkpoint !== undefined && (!config.ordered || config.unbounded)) {
    throw new UsageError(
      "--checkpoint needs ordered, bounded output (drop --unordered / --unbounded): " +
        "the checkpoint is the highest index below which every task is done",
    );
  }
  return config;
}

/** murmur3's 32-bit finaliser: a cheap, well-mixed hash of an integer. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** What a checkpoint records: everything the sink has counted for tasks `0 … next - 1`. */
interface Progress {
  next: number;
  processed: number;
  failed: number;
  sumA: number;
  sumB: number;
  outBytes: number;
}

interface CheckpointFile extends Progress {
  job: { seed: number; tasks: number; errorRate: number; failEvery: number };
}

function checksum(p: Progress): string {
  return p.sumA.toString(16).padStart(8, "0") + p.sumB.toString(16).padStart(8, "0");
}

function jobOf(c: Config): CheckpointFile["job"] {
  return { seed: c.seed, tasks: c.tasks, errorRate: c.errorRate, failEvery: c.failEvery };
}

function readCheckpoint(config: Config): Progress {
  const empty = { next: 0, processed: 0, failed: 0, sumA: 0, sumB: 0, outBytes: 0 };
  if (config.checkpoint === undefined || !existsSync(config.checkpoint)) return empty;
  const saved = JSON.parse(readFileSync(config.checkpoint, "utf8")) as CheckpointFile;
  if (JSON.stringify(saved.job) !== JSON.stringify(jobOf(config))) {
    throw new UsageError(
      `--checkpoint ${config.checkpoint} belongs to another job (${
        JSON.stringify(saved.job)
      }): current job is ${JSON.stringify(jobOf(config))}`,
    );
  }
  return saved;
}

/** Temp file then rename: a crash leaves either the old checkpoint or the new one, whole. */
function writeCheckpoint(config: Config, progress: Progress): void {
  const file: CheckpointFile = { job: jobOf(config), ...progress };
  const temp = `${config.checkpoint}.tmp`;
  writeFileSync(temp, JSON.stringify(file));
  renameSync(temp, config.checkpoint!);
}

/** The NDJSON sink: buffered writes at a byte offset, so a resume truncates and appends. */
class NdjsonSink {
  #fd: number;
  #buffer: string[] = [];
  #bufferedChars = 0;
  bytes: number;

  constructor(path: string, offset: number) {
    // Cut what was written after the checkpoint, then append from there.
    if (offset > 0) truncateSync(path, offset);
    this.#fd = openSync(path, offset > 0 ? "a" : "w");
    this.bytes = offset;
  }

  /** `index` is the task's index in the job; `result.index` counts from where this run started. */
  write(index: number, result: StreamResult<number>): void {
    const line = result.ok
      ? `{"index":${index},"ok":true,"value":${result.value}}\n`
      : `{"index":${index},"ok":false,"error":${JSON.stringify(reasonOf(result.error))}}\n`;
    this.#buffer.push(line);
    this.#bufferedChars += line.length;
    if (this.#bufferedChars > 1 << 20) this.flush();
  }

  /** Writes the buffer and makes it durable; returns the file's length. */
  flush(sync = false): number {
    if (this.#buffer.length > 0) {
      const chunk = this.#buffer.join("");
      this.#buffer = [];
      this.#bufferedChars = 0;
      this.bytes += writeSync(this.#fd, chunk);
    }
    if (sync) fsyncSync(this.#fd);
    return this.bytes;
  }

  close(): void {
    this.flush(true);
    closeSync(this.#fd);
  }
}

/** What failed, without the branch number (which counts from where this run started). */
function reasonOf(error: BranchError): string {
  if (error instanceof BranchTimeoutError) return `timed out after ${error.timeoutMs} ms`;
  return error.cause instanceof Error ? error.cause.message : String(error.cause);
}

const MB = 1024 * 1024;

interface Sample {
  ms: number;
  processed: number;
  inFlight: number;
  rssMB: number;
  heapMB: number;
}

/** Progress on stderr: a bar redrawn in place on a terminal, plain lines otherwise. */
class ProgressMeter {
  readonly samples: Sample[] = [];
  peakRss = 0;
  peakInFlight = 0;
  #start = performance.now();
  #last = 0;
  #lastProcessed = 0;
  #tty = process.stderr.isTTY === true;
  #total: number;
  #every: number;

  constructor(total: number, every: number) {
    this.#total = total;
    this.#every = every;
  }

  get elapsedMs(): number {
    return performance.now() - this.#start;
  }

  tick(processed: number, inFlight: number, force = false): boolean {
    if (inFlight > this.peakInFlight) this.peakInFlight = inFlight;
    const ms = this.elapsedMs;
    if (!force && ms - this.#last < this.#every) return false;
    const memory = process.memoryUsage();
    this.peakRss = Math.max(this.peakRss, memory.rss);
    const rate = (processed - this.#lastProcessed) / Math.max(1e-3, (ms - this.#last) / 1000);
    this.#last = ms;
    this.#lastProcessed = processed;
    const sample = {
      ms: Math.round(ms),
      processed,
      inFlight,
      rssMB: +(memory.rss / MB).toFixed(1),
      heapMB: +(memory.heapUsed / MB).toFixed(1),
    };
    this.samples.push(sample);
    const figures = `${processed.toLocaleString("en")}/${this.#total.toLocaleString("en")}  ` +
      `${Math.round(rate).toLocaleString("en")} tasks/s  in-flight ${inFlight}  ` +
      `rss ${sample.rssMB} MB  heap ${sample.heapMB} MB`;
    if (this.#tty) {
      const done = this.#total === 0 ? 1 : processed / this.#total;
      const bar = "#".repeat(Math.round(done * 30)).padEnd(30, ".");
      process.stderr.write(`\r[${bar}] ${(done * 100).toFixed(1)}%  ${figures}\x1b[K`);
    } else process.stderr.write(`progress ${(ms / 1000).toFixed(1)}s  ${figures}\n`);
    return true;
  }

  end(): void {
    if (this.#tty) process.stderr.write("\n");
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** A task's own failure: an outcome recorded as failed, not a crash of its worker. */
class SimulatedFailure extends Error {}

function makeWork(config: Config) {
  const { crashEvery, crashAttempts } = config;
  const outcome = (task: GeneratedTask, attempt: number) => {
    if (crashEvery > 0 && (task.index + 1) % crashEvery === 0 && attempt <= crashAttempts) {
      throw new Error(`worker crashed on task ${task.index}, attempt ${attempt} (simulated)`);
    }
    return task.fails
      ? Promise.reject(new SimulatedFailure(`task ${task.index} failed (simulated)`))
      : Promise.resolve(mix32(task.index));
  };
  // Trivial tasks still return a promise, so the figures include a real async task's overhead.
  if (!config.latency) {
    return (task: GeneratedTask, context: SupervisedContext) => outcome(task, context.attempt ?? 1);
  }
  return async (task: GeneratedTask, context: SupervisedContext) => {
    await sleep(task.latencyMs, context.signal!);
    return outcome(task, context.attempt ?? 1);
  };
}

/** Every task runs supervised; only an error other than the task's own failure is a crash. */
function supervisorOf(config: Config): Supervisor {
  return new Supervisor({
    maxRetries: config.maxRetries,
    backoff: fullJitter({
      baseMs: config.restartBackoffMs,
      capMs: Math.max(1000, config.restartBackoffMs),
    }),
    restarts: config.maxRestarts,
    periodMs: config.restartWindowMs,
    isCrash: (error) => !(error instanceof SimulatedFailure),
  });
}

/** Lets timers and signal handlers run: trivial tasks otherwise never leave the microtask queue. */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));
const YIELD_EVERY = 8192;

interface Summary {
  runtime: string;
  mode: string;
  tasks: number;
  limit: number;
  seed: number;
  resumedFrom: number;
  processed: number;
  failed: number;
  aborted: number;
  peakInFlight: number;
  peakRssMB: number;
  wallMs: number;
  tasksPerSecond: number;
  checksum: string;
  complete: boolean;
  interrupted: "drain" | "abort" | undefined;
  /** Worker restarts after crashes, and tasks recorded failed because they kept crashing. */
  restarts: number;
  crashedOut: number;
  /** Why the job stopped early (a crash loop), if it did. */
  stopped: string | undefined;
  samples: Sample[];
}

/** The generated work-set of `config`: the same tasks, failures included, in both modes. */
function taskPattern(config: Config) {
  const { tasks: count, seed, errorRate, failEvery } = config;
  return { count, seed, errorRate, failEvery };
}

/**
 * Counts task `index` as handled into the order-independent checksum (one term per task and
 * outcome, so a task counted twice or missing changes it).
 */
function count(progress: Progress, index: number, failed: boolean): void {
  const key = 2 * index + (failed ? 1 : 0);
  progress.sumA = (progress.sumA + mix32(key)) >>> 0;
  progress.sumB = (progress.sumB + mix32(key ^ 0x9e3779b9)) >>> 0;
  progress.processed++;
  if (failed) progress.failed++;
}

async function runBounded(config: Config): Promise<Summary> {
  const progress = readCheckpoint(config);
  const resumedFrom = progress.next;
  const sink = config.out === undefined ? undefined : new NdjsonSink(config.out, progress.outBytes);
  const tasks = generateTasks({ ...taskPattern(config), offset: progress.next });
  const supervisor = supervisorOf(config);
  // A crash loop aborts the stream: in-flight tasks come back aborted and are redone on resume.
  const stream = fanOutStream(tasks, supervisor.supervise(makeWork(config)), {
    limit: config.limit,
    ordered: config.ordered,
    window: config.window,
    timeoutMs: config.timeoutMs,
    signal: supervisor.signal,
  });
  let interrupted: "drain" | "abort" | undefined;
  const onSigint = () => {
    if (interrupted === undefined) {
      interrupted = "drain";
      process.stderr.write("\ndraining in-flight tasks (Ctrl-C again to abort)\n");
      stream.drain();
    } else {
      interrupted = "abort";
      stream.abort(new Error("aborted by a second Ctrl-C"));
    }
  };
  process.on("SIGINT", onSigint);
  const meter = new ProgressMeter(config.tasks, config.progressMs);
  const save = () => {
    if (config.checkpoint === undefined) return;
    progress.outBytes = sink?.flush(true) ?? 0;
    writeCheckpoint(config, progress);
  };
  let aborted = 0;
  let counter = 0;
  try {
    for await (const result of stream) {
      if (!result.ok && (result.aborted || isCrashLoopError(result.error.cause))) {
        // Not done: it and everything after it is redone on resume.
        aborted++;
        continue;
      }
      if (aborted > 0) continue;
      // The stream numbers tasks from where this run started reading the generator.
      const index = resumedFrom + result.index;
      count(progress, index, !result.ok);
      if (config.ordered) progress.next = index + 1;
      sink?.write(index, result);
      if (++counter === YIELD_EVERY) {
        counter = 0;
        if (meter.tick(progress.processed, stream.stats.inFlight)) save();
        await yieldToEventLoop();
      }
    }
    save();
  } finally {
    process.off("SIGINT", onSigint);
    sink?.close();
  }
  meter.tick(progress.processed, 0, true);
  meter.end();
  const stats = stream.stats;
  const wallMs = meter.elapsedMs;
  return {
    runtime: runtimeName(),
    mode: config.ordered ? `ordered, window ${config.window}` : "unordered",
    tasks: config.tasks,
    limit: config.limit,
    seed: config.seed,
    resumedFrom,
    processed: progress.processed,
    failed: progress.failed,
    aborted,
    peakInFlight: Math.max(stats.peakInFlight, meter.peakInFlight),
    peakRssMB: +(meter.peakRss / MB).toFixed(1),
    wallMs: Math.round(wallMs),
    tasksPerSecond: Math.round((progress.processed - resumedFrom) / (wallMs / 1000)),
    checksum: checksum(progress),
    complete: progress.processed === config.tasks && aborted === 0 && interrupted === undefined &&
      !supervisor.signal.aborted,
    interrupted,
    restarts: supervisor.restarts,
    crashedOut: supervisor.gaveUp,
    stopped: supervisor.signal.aborted ? String(supervisor.signal.reason.message) : undefined,
    samples: meter.samples,
  };
}

/** The contrast: every task started at once, as `Promise.all(tasks.map(work))` would. */
async function runUnbounded(config: Config): Promise<Summary> {
  const meter = new ProgressMeter(config.tasks, config.progressMs);
  const supervisor = supervisorOf(config);
  const work = supervisor.supervise(makeWork(config));
  const signal = supervisor.signal;
  const progress = { next: 0, processed: 0, failed: 0, sumA: 0, sumB: 0, outBytes: 0 };
  let settled = 0;
  let started = 0;
  // Each task's outcome as "did it fail", handled at once: a rejection must not wait unhandled
  // for the loop to finish.
  const all: Promise<boolean>[] = [];
  for (const task of generateTasks(taskPattern(config))) {
    all.push(
      work(task, { signal, index: task.index }).then(() => false, () => true).finally(() =>
        settled++
      ),
    );
    if (++started % YIELD_EVERY === 0) {
      meter.tick(settled, started - settled);
      await yieldToEventLoop();
    }
  }
  for (const [index, failed] of (await Promise.all(all)).entries()) count(progress, index, failed);
  meter.tick(progress.processed, 0, true);
  meter.end();
  return {
    runtime: runtimeName(),
    mode: "unbounded",
    tasks: config.tasks,
    limit: Infinity,
    seed: config.seed,
    resumedFrom: 0,
    processed: progress.processed,
    failed: progress.failed,
    aborted: 0,
    peakInFlight: meter.peakInFlight,
    peakRssMB: +(meter.peakRss / MB).toFixed(1),
    wallMs: Math.round(meter.elapsedMs),
    tasksPerSecond: Math.round(progress.processed / (meter.elapsedMs / 1000)),
    checksum: checksum(progress),
    complete: !supervisor.signal.aborted,
    interrupted: undefined,
    restarts: supervisor.restarts,
    crashedOut: supervisor.gaveUp,
    stopped: supervisor.signal.aborted ? String(supervisor.signal.reason.message) : undefined,
    samples: meter.samples,
  };
}

function runtimeName(): string {
  const versions = process.versions as Record<string, string | undefined>;
  if (versions.deno) return `deno ${versions.deno}`;
  if (versions.bun) return `bun ${versions.bun}`;
  return `node ${versions.node}`;
}

function printSummary(s: Summary, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify(s) + "\n");
    return;
  }
  const lines = [
    `enrich on ${s.runtime}: ${s.mode}, limit ${s.limit}, seed ${s.seed}`,
    `  processed      ${s.processed.toLocaleString("en")} of ${s.tasks.toLocaleString("en")}` +
    (s.resumedFrom > 0 ? ` (resumed at ${s.resumedFrom.toLocaleString("en")})` : ""),
    `  failed         ${s.failed.toLocaleString("en")}`,
    `  peak in-flight ${s.peakInFlight}`,
    `  peak RSS       ${s.peakRssMB} MB`,
    `  wall time      ${(s.wallMs / 1000).toFixed(1)} s (${
      s.tasksPerSecond.toLocaleString("en")
    } tasks/s)`,
    `  checksum       ${s.checksum}`,
  ];
  if (s.restarts > 0) {
    lines.push(`  restarts       ${s.restarts} (${s.crashedOut} tasks failed after crashing)`);
  }
  if (s.interrupted) lines.push(`  interrupted    ${s.interrupted}; ${s.aborted} aborted`);
  process.stdout.write(lines.join("\n") + "\n");
}

async function main(): Promise<number> {
  let config: Config | "help";
  try {
    config = parseConfig(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`enrich: ${error.message}\n\n${USAGE}\n`);
    return 2;
  }
  if (config === "help") {
    process.stdout.write(USAGE + "\n");
    return 0;
  }
  let summary: Summary;
  try {
    summary = config.unbounded ? await runUnbounded(config) : await runBounded(config);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`enrich: ${error.message}\n`);
    return 2;
  }
  printSummary(summary, config.json);
  if (summary.stopped !== undefined) {
    process.stderr.write(`enrich: stopped: ${summary.stopped}\n`);
    return 1;
  }
  return summary.interrupted ? 130 : 0;
}

process.exitCode = await main();
