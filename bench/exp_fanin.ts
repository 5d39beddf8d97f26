/**
 * Experiment 5, ordered vs unordered fan-in: 5,000 tasks at limit 32, each sleeping a seeded
 * lognormal latency (median 5 ms, p99 200 ms, seed 20240601) and returning a 1 KiB result, through
 *
 * - `fanOut` ordered: values aligned to input, available when the call resolves;
 * - `fanOut` + `onResult`: each value handed over in completion order, none kept;
 * - `fanOutStream` ordered (window 4 × limit) and unordered, read by a consumer that drops each.
 *
 * Per case: latency to first result, time to complete, memory held (peak `heapUsed + external`
 * above the post-GC baseline, sampled every 10 ms, and after the run and a GC with the output
 * still referenced), and
 * for streams the most results held behind an unfinished head.
 *
 * ```sh
 * deno task exp:fanin
 * ```
 *
 * @module
 */
import { fanOut, fanOutStream } from "../src/executor/mod.ts";
import { createLatencyModel } from "../sim/latency_model.ts";
import { Experiment } from "./_experiment.ts";
import { SEED } from "./_gateway_scenarios.ts";
import process from "node:process";
import { garbageCollector } from "./_runtime.ts";

const TASKS = 5000;
const LIMIT = 32;
const RESULT_BYTES = 1024;
const SAMPLE_EVERY_MS = 10;

/** JS heap plus memory outside it held by JS objects (the results' ArrayBuffers), in bytes. */
function heldBytes(): number {
  const { heapUsed, external } = process.memoryUsage();
  return heapUsed + external;
}

const draw = createLatencyModel({ seed: SEED, tailEvery: 0 });
const latencies = Array.from(
  { length: TASKS },
  (_, i) => draw({ branch: "fanin", key: String(i) }).latencyMs,
);
const tasks = latencies.map((_, i) => i);

function work(i: number): Promise<Uint8Array> {
  return new Promise((resolve) =>
    setTimeout(() => resolve(new Uint8Array(RESULT_BYTES).fill(i & 255)), latencies[i])
  );
}

interface CaseResult {
  id: string;
  label: string;
  firstResultMs: number;
  completeMs: number;
  results: number;
  peakHeapBytes: number;
  retainedHeapBytes: number;
  peakHeld?: number;
}

type Run = (first: () => void) => Promise<{ results: number; output: unknown; peakHeld?: number }>;

const CASES: { id: string; label: string; run: Run }[] = [
  {
    id: "fanOut-ordered",
    label: "fanOut, ordered values",
    run: async (first) => {
      const result = await fanOut(tasks, work, { limit: LIMIT });
      first();
      return { results: result.succeeded, output: result };
    },
  },
  {
    id: "fanOut-onResult",
    label: "fanOut + onResult (unordered)",
    run: async (first) => {
      let results = 0;
      await fanOut(tasks, work, {
        limit: LIMIT,
        onResult: () => {
          if (results++ === 0) first();
        },
      });
      return { results, output: undefined };
    },
  },
  ...[true, false].map((ordered) => ({
    id: `fanOutStream-${ordered ? "ordered" : "unordered"}`,
    label: `fanOutStream, ${ordered ? "ordered" : "unordered"}`,
    run: async (first: () => void) => {
      const stream = fanOutStream(tasks, work, { limit: LIMIT, ordered });
      let results = 0;
      for await (const r of stream) {
        if (r.ok && results++ === 0) first();
      }
      return { results, output: undefined, peakHeld: stream.stats.peakHeld };
    },
  })),
];

const exp = new Experiment("fanin", SEED);
const gc = garbageCollector();
if (gc === undefined) exp.log("no GC exposed: heap figures include garbage (run via the task)");
const rows: CaseResult[] = [];
for (const c of CASES) {
  gc?.();
  const baseline = heldBytes();
  let peak = baseline;
  const sampler = setInterval(() => peak = Math.max(peak, heldBytes()), SAMPLE_EVERY_MS);
  const started = performance.now();
  let firstResultMs = NaN;
  let outcome;
  try {
    outcome = await c.run(() => firstResultMs = performance.now() - started);
  } finally {
    clearInterval(sampler);
  }
  const completeMs = performance.now() - started;
  peak = Math.max(peak, heldBytes());
  gc?.();
  const retained = heldBytes();
  const row: CaseResult = {
    id: c.id,
    label: c.label,
    firstResultMs,
    completeMs,
    results: outcome.results,
    peakHeapBytes: peak - baseline,
    retainedHeapBytes: retained - baseline,
    peakHeld: outcome.peakHeld,
  };
  // Referenced until measured, so that the retained figure counts the output.
  outcome.output = undefined;
  rows.push(row);
  exp.log(
    `${c.label}: first result ${firstResultMs.toFixed(1)} ms, complete ${
      completeMs.toFixed(0)
    } ms, ${row.results} results, heap peak +${
      (row.peakHeapBytes / 2 ** 20).toFixed(1)
    } MB, held after +${(row.retainedHeapBytes / 2 ** 20).toFixed(1)} MB` +
      (row.peakHeld === undefined ? "" : `, peak held behind the head ${row.peakHeld}`),
  );
}
const written = exp.write({
  description: "ordered vs unordered fan-in: time to first result, heap held, time to complete",
  tasks: TASKS,
  limit: LIMIT,
  resultBytes: RESULT_BYTES,
  latencyModel: { medianMs: 5, p99Ms: 200, tail: "off" },
  gcExposed: gc !== undefined,
  rows,
});
exp.log(`wrote ${written}`);
