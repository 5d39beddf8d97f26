/**
 * The global ceiling, in process: the gateway app (`routes/app.ts`) in front of an in-process
 * downstream (seeded lognormal latency, median 5 ms, p99 200 ms, no injected tail) at 2,000
 * and 10,000 requests/s with F = 5 branches, open-model arrival (`bench/_open_loop.ts`).
 *
 * Per rate, four modes:
 * - `per-request`: only the per-request limit (6): nothing bounds the total;
 * - `local`: a `LocalLimiter` of `CAPACITY` permits (queue bound `MAX_WAITERS`);
 * - `plain`: four "isolates" (apps) sharing one ledger (`LedgerHost`) through `ServiceLimiter`,
 *   one ledger call per acquire and per release, as a Durable Object without block leasing;
 * - `blocks`: the same four isolates through `BlockLeasingLimiter` (blocks of `BLOCK_SIZE`).
 *
 * Reports per mode: most downstream calls in flight at once, ledger calls per request, p50/p99
 * latency from the intended send time, and the share of 503s. Writes
 * `bench/results/limiter-deno.json`.
 *
 * ```sh
 * deno task bench:limiter            # or: deno run -A bench/limiter.ts
 * ```
 *
 * @module
 */
import { createApp } from "../routes/app.ts";
import {
  BlockLeasingLimiter,
  LedgerHost,
  type Limiter,
  LocalLimiter,
  PermitLedger,
  type PermitService,
  ServiceLimiter,
} from "../src/limits/mod.ts";
import { defaultRegistry, type Fetcher } from "../src/gateway/mod.ts";
import { createLatencyModel } from "../sim/latency_model.ts";
import { openLoop } from "./_open_loop.ts";
import { summarize } from "./_quantiles.ts";
import { writeResult } from "./_experiment.ts";
import { currentRuntime, loadAverage, machine } from "./_runtime.ts";

const SEED = 42;
const RATES = [2000, 10_000];
const DURATION_S = 2;
const CAPACITY = 256;
const MAX_WAITERS = 1024;
const ISOLATES = 4;
const BLOCK_SIZE = 16;
const BRANCHES = 5;

type Mode = "per-request" | "local" | "plain" | "blocks";

/** An in-process downstream that sleeps its drawn latency and counts calls in flight. */
function downstream(seed: number) {
  const draw = createLatencyModel({ seed, tailEvery: 0 });
  const counts = { now: 0, max: 0, calls: 0 };
  let serial = 0;
  const fetcher: Fetcher = {
    fetch: async (request: Request) => {
      const branch = new URL(request.url).pathname.split("/")[1];
      const { latencyMs } = draw({ branch, key: String(serial++) });
      counts.now++;
      counts.calls++;
      counts.max = Math.max(counts.max, counts.now);
      try {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, latencyMs);
          request.signal.addEventListener("abort", () => {
            clearTimeout(timer);
            reject(request.signal.reason);
          }, { once: true });
        });
        return Response.json({ branch });
      } finally {
        counts.now--;
      }
    },
  };
  return { fetcher, counts };
}

/** A permit service that counts the calls made to it. */
function counted(service: PermitService): PermitService & { calls: number } {
  const wrapped = {
    calls: 0,
    acquire: (
      request: Parameters<PermitService["acquire"]>[0],
    ) => (wrapped.calls++, service.acquire(request)),
    release: (id: string) => (wrapped.calls++, service.release(id)),
    renew: (id: string, ttlMs: number) => (wrapped.calls++, service.renew(id, ttlMs)),
    stats: () => service.stats(),
  };
  return wrapped;
}

async function run(mode: Mode, rate: number) {
  const { fetcher, counts } = downstream(SEED);
  const registry = defaultRegistry(fetcher);
  const ledger = counted(
    new LedgerHost(new PermitLedger({ capacity: CAPACITY, maxWaiters: MAX_WAITERS })),
  );
  const limiters: (Limiter | undefined)[] = mode === "per-request"
    ? [undefined]
    : mode === "local"
    ? [new LocalLimiter({ capacity: CAPACITY, maxWaiters: MAX_WAITERS })]
    : Array.from({ length: ISOLATES }, (_, i) =>
      mode === "plain"
        ? new ServiceLimiter(ledger, { holder: `isolate-${i}` })
        : new BlockLeasingLimiter(ledger, {
          blockSize: BLOCK_SIZE,
          ttlMs: 30_000,
          holder: `isolate-${i}`,
          maxWaiters: MAX_WAITERS / ISOLATES,
        }));
  const apps = limiters.map((limiter) => createApp({ registry, limiter }));
  const count = rate * DURATION_S;
  const samples = await openLoop({
    count,
    ratePerSecond: rate,
    send: async (index, signal) => {
      const response = await apps[index % apps.length].request(`/product/p${index}`, { signal });
      await response.body?.cancel();
      return { status: response.status, body: undefined };
    },
  });
  for (const limiter of limiters) {
    if (limiter instanceof BlockLeasingLimiter) await limiter.close();
  }
  const latency = summarize(samples.map((s) => s.latencyMs).sort((a, b) => a - b));
  const statuses: Record<string, number> = {};
  for (const { status } of samples) statuses[status] = (statuses[status] ?? 0) + 1;
  return {
    mode,
    ratePerSecond: rate,
    requests: count,
    maxInFlightBranches: counts.max,
    downstreamCalls: counts.calls,
    ledgerCallsPerRequest: mode === "plain" || mode === "blocks" ? ledger.calls / count : null,
    p50Ms: round(latency.p50),
    p99Ms: round(latency.p99),
    rate503: (statuses[503] ?? 0) / count,
    statuses,
  };
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

const loadAtStart = loadAverage();
const results = [];
for (const rate of RATES) {
  for (const mode of ["per-request", "local", "plain", "blocks"] as Mode[]) {
    const result = await run(mode, rate);
    results.push(result);
    console.log(
      `${String(rate).padStart(6)}/s ${mode.padEnd(12)} max in flight ${
        String(result.maxInFlightBranches).padStart(5)
      }  ledger calls/request ${
        result.ledgerCallsPerRequest === null ? "    -" : result.ledgerCallsPerRequest.toFixed(3)
      }  p50 ${result.p50Ms} ms  p99 ${result.p99Ms} ms  503 ${
        (result.rate503 * 100).toFixed(1)
      }%  ${JSON.stringify(result.statuses)}`,
    );
  }
}

const runtime = currentRuntime();
writeResult("limiter-deno.json", {
  bench: "limiter",
  runtime: runtime.name,
  version: runtime.version,
  date: new Date().toISOString(),
  loadAverage: { start: loadAtStart, end: loadAverage() },
  machine: machine(),
  seed: SEED,
  config: {
    durationS: DURATION_S,
    branches: BRANCHES,
    capacity: CAPACITY,
    maxWaiters: MAX_WAITERS,
    isolates: ISOLATES,
    blockSize: BLOCK_SIZE,
  },
  results,
});
