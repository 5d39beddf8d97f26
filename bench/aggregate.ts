/**
 * Aggregation benchmark: does a three-level dependent endpoint (`/orders/:orderId` of
 * `fanfare.config.json`: order → customer and each item → offers) answer in about the time of
 * its critical path, rather than the sum of its levels?
 *
 * Three variants of the endpoint, requests alternating between them in one open-loop run
 * (request `i` goes to variant `i mod 3`, so load and machine noise fall on all alike), in
 * process on the simulated downstream with a fixed seed (median 5 ms, p99 200 ms lognormal,
 * random 2 s tail off):
 *
 * 1. `graph`: the committed endpoint with every timeout at 10 s and a 10 s budget, so nothing is
 *    cut. Per request, from the answer's `timings`: the critical path (the longest chain of
 *    branch durations along `needs`: order + max(customer + offers, items)) and the sum of the
 *    levels (each level's slowest branch, added up: what an executor that waits for a whole
 *    level before starting the next would take).
 * 2. `levels`: the same, but `offers` also needs `items`, which makes it wait for all of level 1:
 *    a level-by-level executor, measured rather than computed.
 * 3. `configured`: the endpoint as committed (200–300 ms timeouts) at `budget=300`: how the
 *    budget is split in practice — when each level ends, and how often a branch is cut or
 *    skipped.
 *
 * Then the cost of the declarative path itself: the product page's five branches as the product
 * route serves them (one `scatterGather`) against the same five declared as an aggregation
 * endpoint (a graph of five one-branch gathers), on a downstream that answers in the same turn,
 * requests one after another, in alternating rounds: the gateway's own time per request.
 *
 * Results go to `bench/results/aggregate-deno.json`; about 40 s.
 *
 * ```sh
 * deno task bench:aggregate
 * ```
 *
 * @module
 */
import { createAggregateRoutes } from "../routes/aggregate.ts";
import { createGateway } from "../routes/product.ts";
import { defaultRegistry } from "../src/gateway/mod.ts";
import { createDownstream } from "../sim/downstream.ts";
import { compileConfig, type EndpointConfig, parseConfig } from "../src/aggregate/mod.ts";
import { writeResult } from "./_experiment.ts";
import { openLoop, type Sample } from "./_open_loop.ts";
import { summarize } from "./_quantiles.ts";
import { currentRuntime, loadAverage, machine } from "./_runtime.ts";
import { SEED } from "./_gateway_scenarios.ts";
import committed from "../fanfare.config.json" with { type: "json" };

const REQUESTS_PER_VARIANT = 2000;
const RATE_PER_SECOND = 150;
const WARMUP_REQUESTS = 300;
const FAR_MS = 10_000;

interface BranchTiming {
  startMs?: number;
  endMs?: number;
  outcome: string;
  level: number;
  needs?: string[];
}

type Variant = "graph" | "levels" | "configured";

const config = parseConfig(committed, "fanfare.config.json");
const orders = config.endpoints.find((endpoint) => endpoint.name === "orders")!;

/** `orders` with every timeout far away, and (for `levels`) offers waiting for all of level 1. */
function variant(name: Variant): EndpointConfig {
  if (name === "configured") return { ...orders, name, route: `/${name}/:orderId` };
  const branches = Object.fromEntries(
    Object.entries(orders.branches).map(([branch, spec]) => [branch, {
      ...spec,
      timeoutMs: FAR_MS,
      needs: name === "levels" && branch === "offers" ? ["customer", "items"] : spec.needs,
    }]),
  );
  return { ...orders, name, route: `/${name}/:orderId`, budgetMs: FAR_MS, branches };
}

const VARIANTS: Variant[] = ["graph", "levels", "configured"];
const downstream = createDownstream({ seed: SEED, tailEvery: 0 });
const app = createAggregateRoutes(
  compileConfig({ endpoints: VARIANTS.map(variant) }, { default: downstream }),
);

function pathOf(index: number, run: string): string {
  const name = VARIANTS[index % VARIANTS.length];
  const id = `${run}${Math.floor(index / VARIANTS.length)}`;
  return name === "configured" ? `/${name}/${id}?budget=300` : `/${name}/${id}`;
}

async function send(path: string, signal: AbortSignal) {
  const response = await app.request(path, { signal });
  return { status: response.status, body: await response.json() };
}

/** A branch's own duration; 0 when it never ran. */
function duration(timing: BranchTiming): number {
  return timing.startMs === undefined || timing.endMs === undefined
    ? 0
    : timing.endMs - timing.startMs;
}

/** The longest chain of branch durations along needs. */
function criticalPath(timings: Record<string, BranchTiming>): number {
  const finish = new Map<string, number>();
  const of = (name: string): number => {
    if (!finish.has(name)) {
      const timing = timings[name];
      finish.set(name, duration(timing) + Math.max(0, ...(timing.needs ?? []).map(of)));
    }
    return finish.get(name)!;
  };
  return Math.max(...Object.keys(timings).map(of));
}

/** Each level's slowest branch, added up. */
function sumOfLevels(timings: Record<string, BranchTiming>): number {
  const levels: number[] = [];
  for (const timing of Object.values(timings)) {
    levels[timing.level] = Math.max(levels[timing.level] ?? 0, duration(timing));
  }
  return levels.reduce((sum, ms) => sum + ms, 0);
}

const round = (ms: number) => Math.round(ms * 10) / 10;
const quantiles = (values: number[]) => {
  const q = summarize(values);
  return { count: q.count, p50: round(q.p50), p99: round(q.p99), p999: round(q.p999) };
};

const loadBefore = loadAverage();
console.log(
  `bench:aggregate — in process, seed ${SEED}, ${REQUESTS_PER_VARIANT} requests per variant at ${RATE_PER_SECOND} req/s in all, load ${
    loadBefore.toFixed(2)
  }`,
);
await openLoop({
  count: WARMUP_REQUESTS,
  ratePerSecond: RATE_PER_SECOND,
  send: (index, signal) => send(pathOf(index, "warm"), signal),
});
const samples = await openLoop({
  count: REQUESTS_PER_VARIANT * VARIANTS.length,
  ratePerSecond: RATE_PER_SECOND,
  send: (index, signal) => send(pathOf(index, "o"), signal),
});
const loadAfter = loadAverage();

const byVariant = Object.fromEntries(
  VARIANTS.map((name, v) => [name, samples.filter((_, i) => i % VARIANTS.length === v)]),
) as Record<Variant, Sample[]>;
const timingsOf = (sample: Sample) =>
  (sample.body as { timings: Record<string, BranchTiming> }).timings;
const statuses = (list: Sample[]) => {
  const counts: Record<string, number> = {};
  for (const { status } of list) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
};

const graph = byVariant.graph.filter((s) => s.status === 200);
const levels = byVariant.levels.filter((s) => s.status === 200);
const result = {
  graph: {
    statuses: statuses(byVariant.graph),
    request: quantiles(graph.map((s) => s.latencyMs)),
    criticalPath: quantiles(graph.map((s) => criticalPath(timingsOf(s)))),
    sumOfLevels: quantiles(graph.map((s) => sumOfLevels(timingsOf(s)))),
  },
  levels: {
    statuses: statuses(byVariant.levels),
    request: quantiles(levels.map((s) => s.latencyMs)),
  },
  configured: {
    budgetMs: 300,
    statuses: statuses(byVariant.configured),
    request: quantiles(byVariant.configured.map((s) => s.latencyMs)),
    // When each level's last branch ended (ms since arrival), and each branch's outcomes.
    levelEnd: [0, 1, 2].map((level) =>
      quantiles(byVariant.configured.flatMap((s) => {
        const ends = Object.values(timingsOf(s) ?? {}).filter((t) => t.level === level)
          .map((t) => t.endMs ?? 0);
        return ends.length === 0 ? [] : [Math.max(...ends)];
      }))
    ),
    outcomes: Object.fromEntries(
      Object.keys(orders.branches).map((branch) => {
        const counts: Record<string, number> = {};
        for (const sample of byVariant.configured) {
          const outcome = timingsOf(sample)?.[branch]?.outcome ?? "none";
          counts[outcome] = (counts[outcome] ?? 0) + 1;
        }
        return [branch, counts];
      }),
    ),
  },
};

const line = (label: string, q: { p50: number; p99: number; p999: number }) =>
  console.log(`  ${label.padEnd(44)} p50 ${q.p50} ms  p99 ${q.p99} ms  p99.9 ${q.p999} ms`);
console.log("graph (needs as declared, nothing cut):");
line("request, client-side", result.graph.request);
line("critical path (order + max(customer+offers, items))", result.graph.criticalPath);
line("sum of levels (slowest per level, added)", result.graph.sumOfLevels);
console.log("levels (offers waits for all of level 1):");
line("request, client-side", result.levels.request);
console.log(
  `configured (committed timeouts, budget 300 ms): statuses ${
    JSON.stringify(result.configured.statuses)
  }`,
);
line("request, client-side", result.configured.request);
result.configured.levelEnd.forEach((q, level) => line(`level ${level} ends (ms since arrival)`, q));
console.log(`  outcomes: ${JSON.stringify(result.configured.outcomes)}`);
console.log(`load ${loadBefore.toFixed(2)} → ${loadAfter.toFixed(2)}`);

// The declarative path's own cost: five independent branches, product route vs aggregate().
// A downstream that answers at once, in the same turn: what is left is the gateway's own work.
const instant = { fetch: () => Response.json({ amountCents: 999, currency: "EUR" }) };
const product = createGateway({ registry: defaultRegistry(instant) });
const BRANCHES = ["price", "inventory", "reviews", "recommendations", "shipping"];
const declared = createAggregateRoutes(
  compileConfig({
    endpoints: [{
      name: "product_declared",
      route: "/declared/:id",
      branches: Object.fromEntries(BRANCHES.map((branch, i) => [branch, {
        path: `/${branch}/{params.id}`,
        required: i < 2,
        timeoutMs: 300,
      }])),
    }],
  }, { default: instant }),
);
const ROUNDS = 16;
const PER_ROUND = 500;
const perRequestUs: Record<"product" | "declared", number[]> = { product: [], declared: [] };
for (let round = 0; round < ROUNDS; round++) {
  for (
    const [name, target, path] of [
      ["product", product, "/product/sku-"],
      ["declared", declared, "/declared/sku-"],
    ] as const
  ) {
    const started = performance.now();
    for (let i = 0; i < PER_ROUND; i++) {
      const response = await target.request(`${path}${i}`);
      if (response.status !== 200) throw new Error(`${name} answered ${response.status}`);
      await response.arrayBuffer();
    }
    // The first round warms both up.
    if (round > 0) perRequestUs[name].push((performance.now() - started) * 1000 / PER_ROUND);
  }
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1];
// Rounds alternate, so each round's ratio compares the two under the same load.
const ratios = perRequestUs.declared.map((us, i) => us / perRequestUs.product[i]);
const overhead = {
  productUs: round(median(perRequestUs.product)),
  declaredUs: round(median(perRequestUs.declared)),
  ratio: Math.round(median(ratios) * 100) / 100,
  ratioRange: [Math.min(...ratios), Math.max(...ratios)].map((r) => Math.round(r * 100) / 100),
  rounds: perRequestUs,
};
console.log(
  `five instant branches, one request at a time (medians of ${
    ROUNDS - 1
  } alternating rounds of ${PER_ROUND}): product route ${overhead.productUs} µs/request, declared ${overhead.declaredUs}; declared/product per round: median ${overhead.ratio}×, range ${
    overhead.ratioRange.join("–")
  }×`,
);
const loadEnd = loadAverage();
console.log(`load at the end ${loadEnd.toFixed(2)}`);

const written = writeResult(`aggregate-${currentRuntime().name}.json`, {
  date: new Date().toISOString(),
  seed: SEED,
  runtime: currentRuntime(),
  machine: machine(),
  load: { before: loadBefore, after: loadAfter },
  requestsPerVariant: REQUESTS_PER_VARIANT,
  ratePerSecond: RATE_PER_SECOND,
  ...result,
  overhead,
  loadEnd,
});
console.log(`wrote ${written}`);
