import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { deferred } from "./_deferred.ts";
import { createApp } from "../routes/app.ts";
import { createGateway } from "../routes/product.ts";
import {
  type BranchSpec,
  defaultRegistry,
  defineRegistry,
  hedgeOptionalReads,
} from "../src/gateway/branch_registry.ts";
import type { Fetcher } from "../src/gateway/fetcher.ts";
import {
  createGatewayMetrics,
  type GatewayMetrics,
  hedgeMetrics,
} from "../src/gateway/gateway_metrics.ts";
import type { Labels } from "../src/metrics/metrics.ts";
import { HedgeBudget } from "../src/hedging/hedge_budget.ts";
import { LocalLimiter } from "../src/limits/local_limiter.ts";
import { scatterGather } from "../src/gateway/scatter_gather.ts";

/** Hedge delays short enough to fire; tests wait for events, never for time. */
const SOON_MS = 1;

/**
 * A downstream whose primary calls (no `attempt` parameter) hang until aborted, or until
 * `releasePrimary` is resolved, and whose hedges answer at once. Records every URL and signal.
 */
function hangingPrimary() {
  const seen: { url: URL; signal: AbortSignal }[] = [];
  const releasePrimary = deferred();
  const fetcher: Fetcher = {
    async fetch(request) {
      const url = new URL(request.url);
      seen.push({ url, signal: request.signal });
      const attempt = url.searchParams.get("attempt") ?? "0";
      if (attempt === "0") {
        const aborted = new Promise((_, reject) =>
          request.signal.addEventListener("abort", () => reject(request.signal.reason), {
            once: true,
          })
        );
        await Promise.race([releasePrimary.promise, aborted]);
      }
      return Response.json({ attempt });
    },
  };
  return { fetcher, seen, releasePrimary };
}

/** Resolves with the labels of the first declined hedge counted in `metrics`. */
function firstDecline(metrics: GatewayMetrics): Promise<Labels> {
  const counter = hedgeMetrics(metrics.registry).declined;
  const seen = deferred<Labels>();
  const inc = counter.inc.bind(counter);
  counter.inc = (labels, amount) => {
    inc(labels, amount);
    seen.resolve(labels ?? {});
  };
  return seen.promise;
}

function reviews(fetcher: Fetcher, hedge: BranchSpec["hedge"]): BranchSpec {
  return {
    name: "reviews",
    fetcher,
    path: (id) => `/reviews/${id}`,
    required: false,
    idempotent: true,
    timeoutMs: 10_000,
    hedge,
  };
}

Deno.test("gateway answers a slow hedged branch from its hedge and reports it in timings and metrics", async () => {
  const downstream = hangingPrimary();
  const app = createApp({
    registry: defineRegistry([reviews(downstream.fetcher, { delay: SOON_MS })]),
  });
  const response = await app.request("/product/sku-42?budget=10000");
  assertEquals(response.status, 200);
  const body = await response.json();
  assertEquals(body.product.reviews, { attempt: "1" });
  const { outcome, hedged, attempts, winner } = body.timings.reviews;
  assertEquals({ outcome, hedged, attempts, winner }, {
    outcome: "ok",
    hedged: true,
    attempts: 2,
    winner: 2,
  });
  assertEquals(downstream.seen.map(({ url }) => url.searchParams.get("attempt")), [null, "1"]);
  assert(downstream.seen[0].signal.aborted, "the losing primary is aborted");
  const metrics = await (await app.request("/metrics")).text();
  assert(metrics.includes('fanfare_hedges_sent_total{branch="reviews"} 1\n'), metrics);
  assert(metrics.includes('fanfare_hedges_won_total{branch="reviews"} 1\n'), metrics);
});

Deno.test("gateway sends no hedge when the limiter has no spare permit, and counts it", async () => {
  const downstream = hangingPrimary();
  const metrics = createGatewayMetrics();
  const asked = deferred();
  const report = scatterGather(
    defineRegistry([reviews(downstream.fetcher, { delay: SOON_MS })]),
    "sku-42",
    {
      budgetMs: 10_000,
      metrics,
      spare: {
        tryAcquire() {
          asked.resolve();
          return undefined;
        },
      },
    },
  );
  await asked.promise;
  downstream.releasePrimary.resolve();
  const { branches } = await report;
  assertEquals(branches.reviews.outcome, "ok");
  assertEquals([branches.reviews.hedged, branches.reviews.attempts, branches.reviews.winner], [
    false,
    1,
    1,
  ]);
  assertEquals(downstream.seen.length, 1);
  assert(
    metrics.registry.render().includes(
      'fanfare_hedges_declined_total{branch="reviews",reason="capacity"} 1\n',
    ),
  );
});

Deno.test("gateway sends no hedge beyond the request's limit of calls in flight", async () => {
  const downstream = hangingPrimary();
  const metrics = createGatewayMetrics();
  const declined = firstDecline(metrics);
  const report = scatterGather(
    defineRegistry([reviews(downstream.fetcher, { delay: SOON_MS })]),
    "sku-42",
    { budgetMs: 10_000, metrics, limit: 1 },
  );
  assertEquals(await declined, { branch: "reviews", reason: "capacity" });
  downstream.releasePrimary.resolve();
  assertEquals((await report).branches.reviews.attempts, 1);
  assertEquals(downstream.seen.length, 1);
});

Deno.test("gateway sends no hedge when the branch's hedge budget is exhausted", async () => {
  const downstream = hangingPrimary();
  const metrics = createGatewayMetrics();
  const declined = firstDecline(metrics);
  const budget = new HedgeBudget({ ratio: 0, burst: 1 });
  budget.tryTake();
  const report = scatterGather(
    defineRegistry([reviews(downstream.fetcher, { delay: SOON_MS, budget })]),
    "sku-42",
    { budgetMs: 10_000, metrics },
  );
  assertEquals(await declined, { branch: "reviews", reason: "budget" });
  downstream.releasePrimary.resolve();
  assertEquals((await report).branches.reviews.attempts, 1);
  assertEquals(downstream.seen.length, 1);
});

Deno.test("a branch registry refuses hedging on a branch that is not idempotent", () => {
  const { fetcher } = hangingPrimary();
  assertThrows(
    () => defineRegistry([{ ...reviews(fetcher, { delay: 10 }), idempotent: false }]),
    /branch 'reviews' has 'hedge' .* needs 'idempotent: true': current value is false/,
  );
});

Deno.test("gateway timings of a branch without hedging carry no hedge fields", async () => {
  const downstream = hangingPrimary();
  downstream.releasePrimary.resolve();
  const { branches } = await scatterGather(
    defineRegistry([reviews(downstream.fetcher, undefined)]),
    "sku-42",
    { budgetMs: 10_000 },
  );
  const { hedged, attempts, winner } = branches.reviews;
  assertEquals([hedged, attempts, winner], [undefined, undefined, undefined]);
});

Deno.test("hedgeOptionalReads hedges only the default registry's optional branches", () => {
  const registry = defaultRegistry(hangingPrimary().fetcher, { hedge: hedgeOptionalReads() });
  assertEquals(registry.filter((spec) => spec.hedge !== undefined).map(({ name }) => name), [
    "reviews",
    "recommendations",
    "shipping",
  ]);
  assert(registry.every((spec) => spec.hedge === undefined || !spec.required));
});

Deno.test("gateway hedges only on the global limiter's spare permits, taken from its limiter by default", async () => {
  const downstream = hangingPrimary();
  const metrics = createGatewayMetrics();
  const declined = firstDecline(metrics);
  // One permit: the primary holds it, so the hedge finds none spare.
  const limiter = new LocalLimiter({ capacity: 1 });
  const gateway = createGateway({
    registry: defineRegistry([reviews(downstream.fetcher, { delay: SOON_MS })]),
    metrics,
    limiter,
  });
  const response = gateway.request("/product/sku-42?budget=5000");
  assertEquals(await declined, { branch: "reviews", reason: "capacity" });
  downstream.releasePrimary.resolve();
  const { timings } = await (await response).json();
  assertEquals([timings.reviews.hedged, timings.reviews.attempts], [false, 1]);
  assertEquals(downstream.seen.length, 1);
  assertEquals((await limiter.stats()).inUse, 0);
});
