/**
 * Experiment 13, bulkheads: under steady load, slow one downstream (`reviews`, a fixed 175 ms
 * per call — ten times its mean of 17.5 ms) and see whether the others keep their latency.
 *
 * Over HTTP on 127.0.0.1, gateway and simulated downstream (seed 20240601, tail off) each in
 * its own Deno process, fresh for each protection: `static` (the 64-permit global ceiling
 * alone) and `adaptive` (the same plus the inbound adaptive limit and per-downstream bulkheads).
 * For each: 2 s of warm-up, then `STEP_SECONDS` healthy and `STEP_SECONDS` with reviews slowed,
 * both open loop at `RATE` requests/s, bestEffort, budget 1000 ms. Per-branch p50/p99 and
 * outcome mix come from the gateway's own `/api/stats` (its 10 s window, histogram estimates)
 * read at the end of each step.
 *
 * ```sh
 * deno task exp:bulkhead
 * ```
 *
 * @module
 */
import { Experiment } from "./_experiment.ts";
import { SEED } from "./_gateway_scenarios.ts";
import { httpTarget } from "./_load_target.ts";
import { openLoop } from "./_open_loop.ts";
import { summarize } from "./_quantiles.ts";
import { loadAverage } from "./_runtime.ts";

const RATE = 30;
const STEP_SECONDS = 10;
const SLOW_MS = 175;
const PROTECTIONS = ["static", "adaptive"] as const;
const MODES = [
  { id: "healthy", query: "" },
  { id: "reviews-slow", query: `&fault.reviews=slow:${SLOW_MS}` },
];

const exp = new Experiment("bulkhead", SEED);
const rows: Record<string, unknown>[] = [];
for (const protection of PROTECTIONS) {
  const target = await httpTarget("healthy-default-timeouts", protection);
  try {
    const run = (query: string, seconds: number) =>
      openLoop({
        count: RATE * seconds,
        ratePerSecond: RATE,
        guardMs: 5000,
        send: (i, signal) =>
          target.send(`/product/sku-${i % 1000}?policy=bestEffort&budget=1000${query}`, signal),
      });
    await run("", 2);
    for (const mode of MODES) {
      const samples = await run(mode.query, STEP_SECONDS);
      const live = await (await fetch(`${target.url}api/stats`)).json();
      const statuses: Record<string, number> = {};
      for (const s of samples) statuses[s.status] = (statuses[s.status] ?? 0) + 1;
      const branches = Object.fromEntries(
        Object.entries(
          live.branches.byName as Record<string, {
            p50Ms: number | null;
            p99Ms: number | null;
            outcomes: Record<string, number>;
          }>,
        ).map(([name, b]) => {
          const total = Object.values(b.outcomes).reduce((sum, n) => sum + n, 0);
          return [name, {
            p50Ms: b.p50Ms,
            p99Ms: b.p99Ms,
            notOkShare: total === 0 ? 0 : 1 - (b.outcomes.ok ?? 0) / total,
            outcomes: b.outcomes,
          }];
        }),
      );
      const row = {
        protection,
        mode: mode.id,
        statuses,
        goodputPerSecond: (statuses["200"] ?? 0) / STEP_SECONDS,
        latencyMs: summarize(samples.map((s) => s.latencyMs)),
        degradedShare: live.requests.degradedShare,
        branches,
        bulkheads: live.bulkheads,
        admission: live.admission,
        loadAverage: loadAverage(),
      };
      rows.push(row);
      exp.log(
        `${protection} ${mode.id}: ${
          Object.entries(statuses).map(([k, v]) => `${k}×${v}`).join(" ")
        }; request p99 ${row.latencyMs.p99.toFixed(0)} ms; ` +
          Object.entries(branches).map(([name, b]) =>
            `${name} p50 ${b.p50Ms} p99 ${b.p99Ms} ms not-ok ${(b.notOkShare * 100).toFixed(0)} %`
          ).join("; ") + `; load ${row.loadAverage.toFixed(1)}`,
      );
    }
  } finally {
    await target.close();
  }
}
const written = exp.write({
  description:
    `reviews slowed to a fixed ${SLOW_MS} ms under ${RATE}/s: per-branch latency and outcomes`,
  ratePerSecond: RATE,
  stepSeconds: STEP_SECONDS,
  slowMs: SLOW_MS,
  rows,
});
exp.log(`wrote ${written}`);
