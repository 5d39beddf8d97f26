import { Hono } from "hono";
import { createApp } from "../routes/app.ts";
import { defineRegistry } from "../src/gateway/branch_registry.ts";
import { OPTIONAL_WAIT_MS } from "../src/gateway/scatter_gather.ts";
import { LocalLimiter } from "../src/limits/local_limiter.ts";
import { assert, assertEquals } from "./_assert.ts";
import { deferred, flush, InFlight } from "./_deferred.ts";

const BRANCHES = ["price", "reviews", "shipping", "recommendations", "inventory"];

/**
 * A downstream whose every call waits for `gate` and counts itself in flight, and a gateway in
 * front of it whose branches are all optional, or all required.
 */
function setup(
  limiter: LocalLimiter | undefined,
  gate: Promise<void> = Promise.resolve(),
  required = false,
) {
  const inFlight = new InFlight();
  const downstream = new Hono().get("/:branch/:id", async (c) => {
    inFlight.enter();
    try {
      await gate;
      return c.json({ branch: c.req.param("branch") });
    } finally {
      inFlight.leave();
    }
  });
  const registry = defineRegistry(BRANCHES.map((name) => ({
    name,
    fetcher: downstream,
    path: (id: string) => `/${name}/${id}`,
    required,
    idempotent: true,
    timeoutMs: 5000,
  })));
  return { app: createApp({ registry, limiter }), inFlight };
}

Deno.test("The gateway never has more downstream calls in flight than the limiter's capacity", async () => {
  const limiter = new LocalLimiter({ capacity: 3 });
  const gate = deferred();
  // Required branches wait for their permits as long as their deadline allows.
  const { app, inFlight } = setup(limiter, gate.promise, true);
  const responses = Array.from({ length: 8 }, (_, i) => app.request(`/product/p${i}`));
  await flush(50);
  assertEquals(inFlight.now, 3, "three calls are let through while the rest wait for permits");
  gate.resolve();
  const statuses = await Promise.all(responses.map(async (r) => (await r).status));
  assertEquals(statuses, Array(8).fill(200));
  assertEquals(inFlight.max, 3);
  assertEquals(inFlight.started, 8 * BRANCHES.length);
  assertEquals((await limiter.stats()).inUse, 0);
});

Deno.test("A branch whose permit would come after its deadline is skipped, not started late", async () => {
  const limiter = new LocalLimiter({ capacity: 1 });
  const held = await limiter.acquire(1);
  const { app, inFlight } = setup(limiter);
  const response = await app.request("/product/p1?budget=20");
  const body = await response.json();
  await held.release();
  assertEquals(response.status, 200, JSON.stringify(body));
  assertEquals(body.degraded.length, BRANCHES.length);
  for (const name of BRANCHES) assertEquals(body.timings[name].outcome, "skipped", name);
  assertEquals(inFlight.started, 0, "no downstream call was started");
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("An optional branch waits a short while for a permit, a required one until its deadline", async () => {
  const limiter = new LocalLimiter({ capacity: 1 });
  const held = await limiter.acquire(1);
  const downstream = new Hono().get(
    "/:branch/:id",
    (c) => c.json({ branch: c.req.param("branch") }),
  );
  const registry = defineRegistry(["price", "reviews"].map((name) => ({
    name,
    fetcher: downstream,
    path: (id: string) => `/${name}/${id}`,
    required: name === "price",
    idempotent: true,
    timeoutMs: 5000,
  })));
  const app = createApp({ registry, limiter });
  const response = app.request("/product/p1?budget=5000");
  // Both wait behind the held permit; the optional one gives up after OPTIONAL_WAIT_MS.
  for (let i = 0; i < 200 && (await limiter.stats()).waiting !== 2; i++) await flush(5);
  for (let i = 0; i < 200 && (await limiter.stats()).waiting !== 1; i++) await sleep(5);
  assertEquals((await limiter.stats()).waiting, 1, "only the required branch still waits");
  await held.release();
  const body = await (await response).json();
  assertEquals(body.timings.price.outcome, "ok");
  assertEquals(body.timings.reviews.outcome, "skipped");
  assertEquals(body.reasons.reviews, `skipped: optional, no permit within ${OPTIONAL_WAIT_MS} ms`);
  assertEquals(body.degraded, ["reviews"]);
});

Deno.test("A full admission queue answers a fast 503 with Retry-After and calls no downstream", async () => {
  const limiter = new LocalLimiter({ capacity: 1, maxWaiters: 0, retryAfterMs: 1500 });
  const held = await limiter.acquire(1);
  const { app, inFlight } = setup(limiter);
  const response = await app.request("/product/p1");
  await held.release();
  assertEquals(response.status, 503);
  assertEquals(response.headers.get("retry-after"), "2");
  const body = await response.json();
  assertEquals(body.error, "overloaded");
  assertEquals(inFlight.started, 0);
  assertEquals((await limiter.stats()).inUse, 0, "no permit is left behind");
});

Deno.test("The gateway without a limiter calls every branch at once", async () => {
  const gate = deferred();
  const { app, inFlight } = setup(undefined, gate.promise);
  const response = app.request("/product/p1");
  await flush(50);
  assert(inFlight.now === BRANCHES.length, `${inFlight.now} in flight`);
  gate.resolve();
  assertEquals((await response).status, 200);
});

Deno.test("The dashboard's stats and /metrics show the limiter's ceiling, permits in use and waiters", async () => {
  const limiter = new LocalLimiter({ capacity: 3 });
  const gate = deferred();
  const { app } = setup(limiter, gate.promise);
  const response = app.request("/product/p1");
  await flush(50);
  const { limiter: live } = await (await app.request("/api/stats")).json();
  assertEquals(live, { inFlight: 3, ceiling: 3, waiting: 2 });
  const text = await (await app.request("/metrics")).text();
  assert(text.includes("fanfare_limiter_capacity 3\n"), text);
  gate.resolve();
  assertEquals((await response).status, 200);
});

Deno.test("A gateway without a limiter reports no limiter gauges", async () => {
  const { app } = setup(undefined);
  const body = await (await app.request("/api/stats")).json();
  assertEquals(body.limiter, undefined);
  assert(!(await (await app.request("/metrics")).text()).includes("fanfare_limiter_"));
});
