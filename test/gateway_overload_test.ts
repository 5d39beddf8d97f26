/**
 * Overload protection in process: the inbound adaptive limit sheds what it cannot serve with a
 * fast 503 before any downstream is called, and a slow downstream's bulkhead keeps it from
 * starving the other branches of the global ceiling.
 *
 * Time never decides an outcome here: downstream calls wait on gates the test opens, limits and
 * queues are set so that which request is admitted, queued or turned away follows from order
 * alone, and sojourn bounds are far beyond the test's length.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createApp } from "../routes/app.ts";
import { createDownstream } from "../sim/downstream.ts";
import { Bulkheads, defaultRegistry, type Fetcher } from "../src/gateway/mod.ts";
import { AdaptiveLimiter, LocalLimiter } from "../src/limits/mod.ts";
import { deferred } from "./_deferred.ts";

const LONG_MS = 60_000;
const WIDE = {
  price: 10_000,
  inventory: 10_000,
  reviews: 10_000,
  recommendations: 10_000,
  shipping: 10_000,
};

/** A downstream whose calls wait for `gate` when `held(branch)` says so; it logs every call. */
function gatedDownstream(held: (branch: string) => boolean) {
  const downstream = createDownstream({ tailEvery: 0 });
  const gate = deferred();
  const calls: { branch: string; id: string }[] = [];
  const watchers: { count: number; when: (c: { branch: string }) => boolean; done: () => void }[] =
    [];
  const fetcher: Fetcher = {
    async fetch(request) {
      const [, branch, id] = new URL(request.url).pathname.split("/");
      calls.push({ branch, id });
      for (const w of watchers) if (w.when({ branch }) && --w.count === 0) w.done();
      if (held(branch)) await gate.promise;
      return await downstream.fetch(request);
    },
  };
  /** Resolves once `count` more calls matching `when` have been made. */
  const callsMade = (count: number, when: (c: { branch: string }) => boolean = () => true) => {
    const reached = deferred();
    watchers.push({ count, when, done: reached.resolve });
    return reached.promise;
  };
  return { fetcher, open: () => gate.resolve(), calls, callsMade };
}

Deno.test("an overloaded gateway answers the surplus a fast 503 with Retry-After, before any downstream call", async () => {
  const { fetcher, open, calls, callsMade } = gatedDownstream(() => true);
  const admission = new AdaptiveLimiter({
    initialLimit: 2,
    maxLimit: 2,
    maxQueue: 3,
    intervalMs: LONG_MS,
    targetMs: LONG_MS,
  });
  const app = createApp({
    registry: defaultRegistry(fetcher, { query: () => ({ latencyMs: "0" }), timeoutMs: WIDE }),
    admission,
  });
  const admittedReachedDownstream = callsMade(2 * 5);
  let gateOpen = false;
  const answeredEarly: number[] = [];
  const surplusAnswered = deferred();
  const replies = Array.from(
    { length: 10 },
    (_, i) =>
      Promise.resolve(app.request(`/product/sku-${i}?budget=10000`)).then((response) => {
        if (!gateOpen && answeredEarly.push(i) === 5) surplusAnswered.resolve();
        return response;
      }),
  );
  // The surplus is answered while the admitted requests still wait for their downstream.
  await Promise.all([admittedReachedDownstream, surplusAnswered.promise]);
  gateOpen = true;
  open();
  const responses = await Promise.all(replies);
  const statuses = responses.map((r) => r.status);

  // Two run, three wait for them, five are turned away: goodput is everything admitted.
  assert.deepEqual(statuses, [200, 200, 200, 200, 200, 503, 503, 503, 503, 503]);
  for (const response of responses.slice(5)) {
    assert.equal(response.headers.get("retry-after"), "1");
    assert.deepEqual(await response.json(), {
      error: "overloaded",
      reason: "queue_full",
      retryAfterS: 1,
    });
  }
  for (const response of responses.slice(0, 5)) await response.body?.cancel();
  assert.deepEqual(answeredEarly.sort(), [5, 6, 7, 8, 9], "every 503 came before any 200");
  const reached = new Set(calls.map((c) => c.id));
  assert.deepEqual([...reached].sort(), ["sku-0", "sku-1", "sku-2", "sku-3", "sku-4"]);
  assert.equal(calls.length, 5 * 5);

  const metrics = await (await app.request("/metrics")).text();
  assert.match(metrics, /^fanfare_admission_requests_total\{outcome="admitted"\} 5$/m);
  assert.match(metrics, /^fanfare_admission_requests_total\{outcome="rejected"\} 5$/m);
  assert.match(metrics, /^fanfare_admission_shed_total\{reason="queue_full"\} 5$/m);
  assert.match(metrics, /^fanfare_http_requests_total\{route="\/product\/:id",status="503"\} 5$/m);
  assert.match(metrics, /^fanfare_admission_limit 2$/m);
  const live = await (await app.request("/api/stats")).json();
  assert.deepEqual(live.admission, { limit: 2, maxLimit: 2, inFlight: 0, waiting: 0, shed: 5 });
  assert.equal(live.requests.statuses["503"], 5);
});

Deno.test("admission turns away at once a request whose budget is too short to wait in the queue", async () => {
  const { fetcher, open, callsMade } = gatedDownstream(() => true);
  const app = createApp({
    registry: defaultRegistry(fetcher, { query: () => ({ latencyMs: "0" }), timeoutMs: WIDE }),
    admission: new AdaptiveLimiter({ initialLimit: 1, maxLimit: 1, intervalMs: LONG_MS }),
  });
  const running = callsMade(5);
  const first = app.request("/product/sku-1?budget=10000");
  await running;
  // Its budget ends long before anything could start; 0 ms left by the caller's header.
  const late = await app.request("/product/sku-2", { headers: { "x-fanfare-budget-ms": "0" } });
  open();
  assert.equal(late.status, 503);
  assert.equal((await late.json()).reason, "budget");
  const done = await first;
  assert.equal(done.status, 200);
  await done.body?.cancel();
});

Deno.test("a hung downstream behind its bulkhead holds two global permits at most; every other branch still answers", async () => {
  const { fetcher, open, calls, callsMade } = gatedDownstream((branch) => branch === "reviews");
  const bulkheads = new Bulkheads({ maxLimit: 2, maxQueue: 0 });
  const app = createApp({
    registry: defaultRegistry(fetcher, { query: () => ({ latencyMs: "0" }), timeoutMs: WIDE }),
    // Without the bulkhead, eight hung reviews calls would hold all eight permits and the
    // price and inventory calls of later requests would wait for them forever.
    limiter: new LocalLimiter({ capacity: 8 }),
    // Optional branches wait for their permits as required ones do, so that every one is called
    // and the bulkhead alone decides which fail: skipped at once, they would leave the
    // required calls of ten requests to race past the bulkheads' two places at once.
    optionalWaitMs: Infinity,
    bulkheads,
  });
  const requiredAnswered = callsMade(
    10 * 2,
    (c) => c.branch === "price" || c.branch === "inventory",
  );
  const replies = Array.from(
    { length: 10 },
    (_, i) => Promise.resolve(app.request(`/product/sku-${i}?budget=10000`)),
  );
  await requiredAnswered;
  assert.equal(calls.filter((c) => c.branch === "reviews").length, 2, "reviews calls let through");
  assert.equal(bulkheads.stats().reviews.inFlight, 2);
  open();
  const bodies = await Promise.all(
    replies.map(async (reply) => {
      const r = await reply;
      return { status: r.status, ...await r.json() };
    }),
  );
  assert.ok(bodies.every((b) => b.status === 200), JSON.stringify(bodies.map((b) => b.status)));
  const degraded = bodies.filter((b) => b.degraded.length > 0);
  assert.equal(degraded.length, 8);
  for (const body of degraded) {
    assert.deepEqual(body.degraded, ["reviews"]);
    assert.match(body.reasons.reviews, /^error: Bulkhead of 'reviews' is full \(queue_full\)/);
  }
  const metrics = await (await app.request("/metrics")).text();
  assert.match(metrics, /^fanfare_bulkhead_shed_total\{branch="reviews",reason="queue_full"\} 8$/m);
  assert.match(metrics, /^fanfare_bulkhead_shed_total\{branch="price",reason="queue_full"\} 0$/m);
});

Deno.test("a required branch its bulkhead turns away answers 503 no capacity with Retry-After, not 502", async () => {
  const { fetcher, open, callsMade } = gatedDownstream((branch) => branch === "price");
  const app = createApp({
    registry: defaultRegistry(fetcher, { query: () => ({ latencyMs: "0" }), timeoutMs: WIDE }),
    bulkheads: new Bulkheads({ maxLimit: 1, maxQueue: 0 }),
  });
  const priceCalled = callsMade(1, (c) => c.branch === "price");
  const first = app.request("/product/sku-1?budget=10000");
  await priceCalled;
  // The one place of price's bulkhead is held: the next request's price call is turned away.
  const second = await app.request("/product/sku-2?budget=10000");
  const body = await second.json();
  assert.equal(second.status, 503, JSON.stringify(body));
  assert.equal(body.error, "no capacity");
  assert.equal(second.headers.get("retry-after"), "1");
  assert.match(body.reasons.price, /^error: Bulkhead of 'price' is full/);
  open();
  await (await first).body?.cancel();
});

Deno.test("an endpoint's branch has a bulkhead of its own: turned away, its required call answers 503 no capacity", async () => {
  const { fetcher, open, callsMade } = gatedDownstream((branch) => branch === "orders");
  const { compileConfig, parseConfig } = await import("../src/aggregate/mod.ts");
  const app = createApp({
    registry: defaultRegistry(fetcher, { query: () => ({ latencyMs: "0" }), timeoutMs: WIDE }),
    bulkheads: new Bulkheads({ maxLimit: 1, maxQueue: 0 }),
    endpoints: compileConfig(
      parseConfig({
        endpoints: [{
          name: "held",
          route: "/held/:id",
          branches: { order: { path: "/orders/{params.id}", required: true, timeoutMs: 10_000 } },
        }],
      }),
      { default: fetcher },
    ),
  });
  const orderCalled = callsMade(1, (c) => c.branch === "orders");
  const first = app.request("/held/o1?budget=10000");
  await orderCalled;
  // The one place of the branch's bulkhead is held: the next request's call is turned away.
  const second = await app.request("/held/o2?budget=10000");
  const body = await second.json();
  assert.equal(second.status, 503, JSON.stringify(body));
  assert.equal(body.error, "no capacity");
  assert.equal(second.headers.get("retry-after"), "1");
  assert.match(body.reasons.order, /^error: Bulkhead of 'held.order' is full/);
  // The product's branches keep their own bulkheads.
  assert.equal((await app.request("/product/sku-1?budget=10000")).status, 200);
  const metrics = await (await app.request("/metrics")).text();
  assert.match(
    metrics,
    /^fanfare_bulkhead_shed_total\{branch="held.order",reason="queue_full"\} 1$/m,
  );
  open();
  assert.equal((await first).status, 200);
});

Deno.test("a client that leaves while queued is answered 499 and counted cancelled", async () => {
  const { fetcher, open, callsMade } = gatedDownstream(() => true);
  const admission = new AdaptiveLimiter({
    initialLimit: 1,
    maxLimit: 1,
    intervalMs: LONG_MS,
    targetMs: LONG_MS,
  });
  const app = createApp({
    registry: defaultRegistry(fetcher, { query: () => ({ latencyMs: "0" }), timeoutMs: WIDE }),
    admission,
  });
  const running = callsMade(5);
  const first = app.request("/product/sku-1?budget=10000");
  await running;
  const client = new AbortController();
  const queued = app.request("/product/sku-2?budget=10000", { signal: client.signal });
  assert.equal(admission.stats().waiting, 1);
  client.abort();
  assert.equal((await queued).status, 499);
  open();
  await (await first).body?.cancel();
  const stats = admission.stats();
  assert.equal(stats.cancelled, 1);
  assert.equal(stats.offered, stats.admitted + stats.rejected + stats.shed + stats.cancelled);
});

Deno.test("fast 502s from a failing downstream do not shrink the admission limit; they are the bulkhead's business", async () => {
  const downstream = createDownstream({ tailEvery: 0, failBranches: ["price"] });
  // Latency alone never moves this limit (tolerance far beyond any jitter): only drops could.
  const admission = new AdaptiveLimiter({
    initialLimit: 4,
    maxLimit: 4,
    windowSamples: 5,
    minWindowMs: 0,
    tolerance: 1000,
  });
  const app = createApp({
    registry: defaultRegistry(downstream, { query: () => ({ latencyMs: "0" }) }),
    admission,
  });
  for (let i = 0; i < 40; i++) {
    const response = await app.request(`/product/sku-${i}`);
    assert.equal(response.status, 502);
    await response.body?.cancel();
  }
  assert.equal(admission.stats().limit, 4);
});

Deno.test("a call over its bulkhead's limit waits past the inbound queue's 25 ms bound while its deadline allows, and starts when a permit frees", async () => {
  let now = 0;
  const bulkheads = new Bulkheads({ maxLimit: 1, clock: () => now });
  const price = bulkheads.limiterFor("price");
  const holder = await price.acquire(1, { deadline: 1000 });
  const waiter = price.acquire(1, { deadline: 1000 });
  now = 100;
  // A third call makes the limiter expire its waiters at 100 ms: the second must still wait.
  const leaving = new AbortController();
  const third = price.acquire(1, { signal: leaving.signal, deadline: 1000 });
  assert.equal(price.stats().waiting, 2);
  assert.equal(price.stats().shed, 0);
  await holder.release();
  const permit = await waiter;
  assert.equal(price.stats().inFlight, 1);
  leaving.abort(new Error("test over"));
  await assert.rejects(third, /test over/);
  await permit.release();
});

Deno.test("a bulkhead still turns a waiting call away once its own deadline leaves no time to start", async () => {
  let now = 0;
  const bulkheads = new Bulkheads({ maxLimit: 1, clock: () => now });
  const price = bulkheads.limiterFor("price");
  const holder = await price.acquire(1, { deadline: 1000 });
  const waiter = price.acquire(1, { deadline: 50 });
  const rejected = assert.rejects(waiter, { name: "AdmissionRejectedError" });
  now = 60;
  const leaving = new AbortController();
  const third = price.acquire(1, { signal: leaving.signal, deadline: 1000 });
  await rejected;
  assert.equal(price.stats().turnedAway.budget, 1);
  leaving.abort(new Error("test over"));
  await assert.rejects(third, /test over/);
  await holder.release();
});

Deno.test("a full limit refuses product requests before routing, and still serves /metrics and a 404", async () => {
  const admission = new AdaptiveLimiter({ initialLimit: 1, maxLimit: 1, maxQueue: 0 });
  const app = createApp({
    registry: defaultRegistry(createDownstream({ tailEvery: 0 })),
    admission,
  });
  const held = admission.tryAcquire()!;
  const refused = await app.request("/product/sku-1?budget=not-a-number");
  assert.equal(refused.status, 503, "refused before the route validates the budget");
  assert.equal(refused.headers.get("retry-after"), "1");
  assert.deepEqual(await refused.json(), {
    error: "overloaded",
    reason: "queue_full",
    retryAfterS: 1,
  });
  const missing = await app.request("/nowhere");
  assert.equal(missing.status, 404);
  await missing.body?.cancel();
  const metrics = await app.request("/metrics");
  assert.equal(metrics.status, 200);
  const text = await metrics.text();
  assert.match(text, /^fanfare_admission_requests_total\{outcome="rejected"\} 1$/m);
  assert.match(text, /^fanfare_http_requests_total\{route="\/product\/:id",status="503"\} 1$/m);
  await held.release();
  const served = await app.request("/product/sku-1");
  assert.equal(served.status, 200);
  await served.body?.cancel();
});
