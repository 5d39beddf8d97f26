/**
 * What a permit costs the gateway's limiters in process: µs per request of `BRANCHES` branches,
 * each taking one permit (`tryAcquire`, else a queued `acquire` with a signal and a deadline, as
 * `scatterGather` does), holding it for three microtask turns and giving it back, from
 * `CALLERS` requests at once. Against a capacity that never queues (`--roomy`, 256) and the
 * gateway's default ceiling, which 32 requests of 5 branches overrun (`--tight`, 64): the second
 * is the queued path. Cases: `LocalLimiter` (the global ceiling) at both, `AdaptiveLimiter`
 * (admission and bulkheads, its limit pinned to the capacity) at the roomy one only (its queue
 * sheds by design), and a bare loop with no permit at all.
 *
 * `--root` loads the limiters from another checkout, so that two versions can alternate on the
 * same machine. Writes `bench/results/permits-deno.json`.
 *
 * ```sh
 * deno task bench:permits --rounds=7
 * deno task bench:permits --root=../fanfare-before
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { writeResult } from "./_experiment.ts";
import { loadAverage } from "./_runtime.ts";
import { checkoutRoot, positiveFlag } from "./_flags.ts";
import { median } from "./_quantiles.ts";
import type { Limiter, Permit } from "../src/limits/mod.ts";

const CALLERS = 32;
const BRANCHES = 5;
const REQUESTS = 4000;

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "5" },
    tight: { type: "string", default: "64" },
    roomy: { type: "string", default: "256" },
    root: { type: "string" },
  },
});

const positiveInteger = (name: string, text: string) =>
  positiveFlag("bench:permits", name, text, { integer: true });
const rounds = positiveInteger("rounds", flags.rounds);
const capacities = {
  tight: positiveInteger("tight", flags.tight),
  roomy: positiveInteger("roomy", flags.roomy),
};
const root = checkoutRoot(flags.root);
const limits = await import(new URL("src/limits/mod.ts", root).href);

type Taker = { tryAcquire(): { release(): unknown } | undefined; acquire: Limiter["acquire"] };

const CASES: Record<string, (capacity: number) => Taker | undefined> = {
  "no permit": () => undefined,
  LocalLimiter: (capacity) => new limits.LocalLimiter({ capacity }),
  AdaptiveLimiter: (capacity) =>
    new limits.AdaptiveLimiter({ initialLimit: capacity, minLimit: capacity, maxLimit: capacity }),
};

/** µs per request of {@linkcode BRANCHES} branches through `taker` (none: no permit). */
async function run(taker: Taker | undefined): Promise<number> {
  let next = 0;
  const branch = async () => {
    let permit: { release(): unknown } | Permit | undefined;
    if (taker !== undefined) {
      permit = taker.tryAcquire();
      if (permit === undefined) {
        const signal = new AbortController().signal;
        permit = await taker.acquire(1, { signal, deadline: performance.now() + 1000 });
      }
    }
    try {
      await null;
      await null;
      await null;
    } finally {
      await permit?.release();
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CALLERS }, async () => {
    while (next++ < REQUESTS) {
      await Promise.all(Array.from({ length: BRANCHES }, branch));
    }
  }));
  return (performance.now() - started) * 1000 / REQUESTS;
}

const load = [loadAverage()];
console.log(
  `limiters from ${root.pathname}; ${CALLERS} requests at once, ${BRANCHES} permits each, median of ${rounds} rounds`,
);
const results = [];
for (const [name, make] of Object.entries(CASES)) {
  for (const [kind, capacity] of Object.entries(capacities)) {
    if (name !== "LocalLimiter" && kind === "tight") continue;
    const taker = make(capacity);
    await run(taker);
    const us: number[] = [];
    for (let round = 0; round < rounds; round++) us.push(await run(taker));
    const figure = {
      name,
      capacity,
      queues: kind === "tight",
      usPerRequest: median(us),
      rounds: us,
    };
    results.push(figure);
    console.log(
      `  ${name.padEnd(16)} capacity ${String(capacity).padStart(4)}  ${
        figure.usPerRequest.toFixed(2).padStart(7)
      } µs/request  (${us.map((v) => v.toFixed(1)).join(" ")})`,
    );
  }
}
load.push(loadAverage());
console.log(`1-min load ${load.map((l) => l.toFixed(2)).join(" → ")}`);
console.log(
  `wrote ${
    writeResult("permits-deno.json", {
      root: root.pathname,
      callers: CALLERS,
      branches: BRANCHES,
      requests: REQUESTS,
      load,
      results,
    })
  }`,
);
