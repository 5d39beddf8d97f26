/**
 * What a refusal costs: every 503 an overloaded gateway answers takes time from the one event
 * loop that also runs its admitted requests, so a refusal must cost about what the runtime's own
 * HTTP server costs for one, not a product request's share.
 *
 * Two servers, each in a process of its own on 127.0.0.1 (`bench/_overhead_serve.ts`, the
 * runtime running this file), answer every `GET /product/:id` with a 503:
 * `refuse-naive`, a handler returning a fixed JSON with `Retry-After` (no router: the floor), and
 * `refuse-fanfare`, the `npm start` app whose admission limit is held full with no queue, so
 * that admission refuses each request at once (a request that first waits in the queue costs
 * more: a promise, a timer and an abort listener). `wrk -t1 -c32` loads each for `--seconds`,
 * after a 2 s warm-up, in `--rounds` alternating rounds. wrk runs on the other core, so the
 * server's thread is what limits: µs per refusal is 1,000,000 ÷ its requests/s, at most (near
 * 75,000 a second wrk's own thread may be the limit, which flatters the fastest server least).
 *
 * Writes `bench/results/refusal-<runtime>.json`.
 *
 * ```sh
 * deno task bench:refusal       # Deno
 * deno task bench:refusal:bun   # the same file on Bun
 * ```
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { REFUSER_LABELS, type RefuserId, REFUSERS } from "./_overhead_apps.ts";
import { serve, type Served, stop, wrk, wrkMissing } from "./_loopback.ts";
import { writeResult } from "./_experiment.ts";
import { median } from "./_quantiles.ts";
import { currentRuntime, loadAverage, machine } from "./_runtime.ts";

const CONNECTIONS = 32;
const WARMUP_SECONDS = 2;

const { values: flags } = parseArgs({
  args: process.argv.slice(2),
  options: {
    seconds: { type: "string", default: "4" },
    rounds: { type: "string", default: "3" },
  },
});
const seconds = Number(flags.seconds);
const rounds = Number(flags.rounds);
for (const [name, value] of [["seconds", seconds], ["rounds", rounds]] as const) {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot run the refusal benchmark as '--${name}' must be a positive integer: current value is ${
        flags[name]
      }`,
    );
  }
}
const missing = wrkMissing();
if (missing !== undefined) throw new Error(`Cannot run the refusal benchmark as ${missing}`);

const runtime = currentRuntime();
const loadAtStart = loadAverage();
console.log(
  `${runtime.name} ${runtime.version}, ${machine().cores} cores, 1-min load ${
    loadAtStart.toFixed(2)
  }`,
);
const servers = {} as Record<RefuserId, Served>;
const runs: Record<RefuserId, number[]> = { "refuse-naive": [], "refuse-fanfare": [] };
try {
  for (const id of REFUSERS) servers[id] = await serve([id]);
  const url = (id: RefuserId) => `${servers[id].url}/product/sku-42?budget=1000`;
  for (const id of REFUSERS) {
    const response = await fetch(url(id));
    await response.body?.cancel();
    if (response.status !== 503 || response.headers.get("retry-after") === null) {
      throw new Error(
        `Cannot benchmark '${id}' as it must answer 503 with Retry-After: current status is ${response.status}`,
      );
    }
    wrk(url(id), WARMUP_SECONDS, CONNECTIONS);
  }
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? REFUSERS : [...REFUSERS].reverse();
    const line: string[] = [];
    for (const id of order) {
      const run = wrk(url(id), seconds, CONNECTIONS);
      if (run.non2xx !== run.requests) {
        throw new Error(`Cannot count '${id}' as its answers were not all 503s`);
      }
      runs[id].push(run.requestsPerSecond);
      line.push(`${id} ${run.requestsPerSecond.toFixed(0)}/s`);
    }
    console.log(`round ${round + 1}/${rounds}: ${line.join(", ")}`);
  }
} finally {
  await Promise.all(Object.values(servers).map(stop));
}

const cases = REFUSERS.map((id) => ({
  id,
  label: REFUSER_LABELS[id],
  requestsPerSecond: median(runs[id]),
  usPerRefusal: 1e6 / median(runs[id]),
  rounds: runs[id],
}));
for (const c of cases) {
  console.log(
    `  ${c.id.padEnd(15)} ${c.requestsPerSecond.toFixed(0).padStart(7)} refusals/s  ${
      c.usPerRefusal.toFixed(1)
    } µs each  (${c.label})`,
  );
}
const loadAtEnd = loadAverage();
console.log(`1-min load ${loadAtStart.toFixed(2)} → ${loadAtEnd.toFixed(2)}`);
console.log(
  `wrote ${
    writeResult(`refusal-${runtime.name}.json`, {
      experiment: "refusal",
      command: runtime.name === "bun" ? "deno task bench:refusal:bun" : "deno task bench:refusal",
      runtime: runtime.name,
      version: runtime.version,
      date: new Date().toISOString(),
      machine: machine(),
      loadAverage: { start: loadAtStart, end: loadAtEnd },
      tool: `wrk -t1 -c${CONNECTIONS} -d${seconds}s, median of ${rounds} alternating rounds`,
      cases,
    })
  }`,
);
