import { Hono } from "hono";
import { branchPayload } from "../sim/_branch_payload.ts";
import { createAggregateRoutes } from "../routes/aggregate.ts";
import { parseConfig } from "../src/aggregate/mod.ts";
import { createGatewayMetrics, type Fetcher } from "../src/gateway/mod.ts";
import { assert, assertEquals } from "./_assert.ts";
import { deferred, flush } from "./_deferred.ts";
import committed from "../fanfare.config.json" with { type: "json" };

/** What the scripted downstream does for a path: answer its payload, fail, or never answer. */
type Script = (
  path: string,
) => "answer" | "fail" | "unavailable" | "hang" | Record<string, unknown>;

/** An in-process downstream: `/<branch>/<id>` answers the simulated payload unless scripted. */
function downstream(script: Script = () => "answer") {
  const calls: { path: string; signal: AbortSignal }[] = [];
  const fetcher: Fetcher = {
    fetch(request) {
      const path = new URL(request.url).pathname;
      calls.push({ path, signal: request.signal });
      const what = script(path);
      if (what === "fail") return Response.json({ error: "down" }, { status: 500 });
      if (what === "unavailable") return Response.json({ error: "busy" }, { status: 503 });
      if (what === "hang") {
        const { promise, reject } = deferred<Response>();
        request.signal.addEventListener("abort", () => reject(request.signal.reason), {
          once: true,
        });
        return promise;
      }
      const [, branch, id] = path.split("/");
      return Response.json(
        what === "answer" ? branchPayload(branch, decodeURIComponent(id)) : what,
      );
    },
  };
  return { fetcher, calls };
}

/** The committed config's endpoints over `script`, and the metrics they record. */
function setup(script?: Script) {
  const { fetcher, calls } = downstream(script);
  const metrics = createGatewayMetrics();
  const app = createAggregateRoutes(parseConfig(committed).endpoints, {
    downstreams: { default: fetcher },
    metrics,
  });
  return { app, calls, metrics };
}

Deno.test("GET /orders/:orderId joins order, customer, each item and offers into one shaped 200", async () => {
  const { app, calls } = setup();
  const response = await app.request("/orders/o1");
  assertEquals(response.status, 200);
  assertEquals(response.headers.get("x-fanfare-complete"), "true");
  const body = await response.json();
  const order = branchPayload("orders", "o1") as { itemIds: string[] };
  assertEquals(body.endpoint, "orders");
  assertEquals(body.complete, true);
  assertEquals(body.degraded, []);
  assertEquals(Object.keys(body.data.order).sort(), ["itemIds", "status", "totalCents"]);
  // pick dropped the customer's internal notes.
  assertEquals(Object.keys(body.data.customer).sort(), ["id", "name", "tier"]);
  assertEquals(body.data.customer.id, "c-o1");
  assertEquals(body.data.items.length, order.itemIds.length);
  assertEquals(body.data.items[0], branchPayload("items", order.itemIds[0]));
  // target took the recommendations' product ids.
  assertEquals(body.data.offers, branchPayload("recommendations", "c-o1").productIds);
  assertEquals(
    calls.map((c) => c.path).sort(),
    [
      "/orders/o1",
      "/customers/c-o1",
      "/recommendations/c-o1",
      ...order.itemIds.map((id) => `/items/${id}`),
    ].sort(),
  );
  const { timings } = body;
  assertEquals(
    [timings.order.level, timings.customer.level, timings.items.level, timings.offers.level],
    [0, 1, 1, 2],
  );
  assertEquals(timings.customer.needs, ["order"]);
  assertEquals(timings.offers.waitedOn, "customer");
  assertEquals(timings.items.calls, order.itemIds.length);
  assert(timings.customer.startMs >= timings.order.endMs, JSON.stringify(timings));
  assert(timings.offers.startMs >= timings.customer.endMs, JSON.stringify(timings));
});

Deno.test("a failed optional branch gives a 200 marked incomplete, naming it and why", async () => {
  const { app } = setup((path) => path.startsWith("/items/i2-") ? "fail" : "answer");
  const response = await app.request("/orders/o3");
  const body = await response.json();
  const itemCount = (branchPayload("orders", "o3") as { itemIds: string[] }).itemIds.length;
  assert(itemCount >= 2, "order o3 has a second item");
  assertEquals(response.status, 200);
  assertEquals(response.headers.get("x-fanfare-complete"), "false");
  assertEquals(body.complete, false);
  assertEquals(body.degraded, ["items"]);
  assertEquals(body.reasons.items, "[1] error: Downstream 'orders.items' answered 500");
  assertEquals(body.data.items, undefined);
  assertEquals(body.timings.items.outcome, "error");
});

Deno.test("?policy=failFast fails the answer at an optional branch's failure and aborts what still runs", async () => {
  // The customer's offers hang; each item call fails once the test opens the gate, by when the
  // offers are running: only failFast's stop can end them.
  const itemsFail = deferred<void>();
  const { fetcher: base, calls } = downstream((path) =>
    path.startsWith("/recommendations/") ? "hang" : "answer"
  );
  const fetcher: Fetcher = {
    async fetch(request) {
      if (!new URL(request.url).pathname.startsWith("/items/")) return await base.fetch(request);
      await itemsFail.promise;
      return Response.json({ error: "down" }, { status: 500 });
    },
  };
  const app = createAggregateRoutes(parseConfig(committed).endpoints, {
    downstreams: { default: fetcher },
  });
  const answered = app.request("/orders/o1?policy=failFast&budget=10000");
  for (let i = 0; i < 100 && !calls.some((c) => c.path.startsWith("/recommendations/")); i++) {
    await flush();
  }
  itemsFail.resolve();
  const response = await answered;
  assertEquals(response.status, 502);
  assertEquals(response.headers.get("x-fanfare-complete"), "false");
  const body = await response.json();
  assertEquals([body.error, body.branch, body.policy], ["branch failed", "items", "failFast"]);
  assertEquals(body.reasons.offers, 'aborted: branch "items" failed');
  const offers = calls.find((c) => c.path.startsWith("/recommendations/"));
  assert(offers?.signal.aborted, "the hanging offers call was aborted");
});

Deno.test("an endpoint's policy in the config is its default, and ?policy overrides it", async () => {
  const { fetcher } = downstream((path) => path.startsWith("/customers/") ? "fail" : "answer");
  const routes = createAggregateRoutes(
    parseConfig({
      endpoints: [{
        name: "strict",
        route: "/strict/:id",
        policy: "failFast",
        branches: {
          order: { path: "/orders/{params.id}", required: true, timeoutMs: 1_000 },
          customer: { path: "/customers/{params.id}", timeoutMs: 1_000 },
        },
      }],
    }).endpoints,
    { downstreams: { default: fetcher } },
  );
  const strict = await routes.request("/strict/o1");
  assertEquals(strict.status, 502);
  assertEquals((await strict.json()).branch, "customer");
  const relaxed = await routes.request("/strict/o1?policy=bestEffort");
  assertEquals(relaxed.status, 200);
  assertEquals((await relaxed.json()).degraded, ["customer"]);
});

Deno.test("?policy=collectAll answers what succeeded with an errors list, and a bad policy is a 400 naming it", async () => {
  const { app } = setup((path) => path.startsWith("/recommendations/") ? "fail" : "answer");
  const response = await app.request("/orders/o1?policy=collectAll");
  assertEquals(response.status, 200);
  const body = await response.json();
  assertEquals(body.policy, "collectAll");
  assertEquals(body.errors, [{
    branch: "offers",
    reason: "error: Downstream 'orders.offers' answered 500",
  }]);
  assertEquals(
    body.data.customer.id,
    (branchPayload("orders", "o1") as { customerId: string }).customerId,
  );
  const bad = await app.request("/orders/o1?policy=sometimes");
  assertEquals(bad.status, 400);
  const { fields } = await bad.json();
  assertEquals(fields.map((f: { field: string }) => f.field), ["policy"]);
});

Deno.test("fault.<branch> reaches that branch's every call, fault.errorRate every call, and an unknown one is a 400", async () => {
  const urls: URL[] = [];
  const { fetcher: base } = downstream();
  const fetcher: Fetcher = {
    fetch(request) {
      urls.push(new URL(request.url));
      return base.fetch(request);
    },
  };
  const app = createAggregateRoutes(parseConfig(committed).endpoints, {
    downstreams: { default: fetcher },
  });
  const response = await app.request("/orders/o3?fault.items=slow:5&fault.errorRate=0.25");
  await response.body?.cancel();
  const items = urls.filter((url) => url.pathname.startsWith("/items/"));
  assert(items.length >= 2, "order o3 has several items");
  for (const url of items) assertEquals(url.searchParams.get("latencyMs"), "5", url.href);
  for (const url of urls) assertEquals(url.searchParams.get("errorRate"), "0.25", url.href);
  const order = urls.find((url) => url.pathname.startsWith("/orders/"))!;
  assertEquals(order.searchParams.get("latencyMs"), null);
  const bad = await app.request("/orders/o1?fault.price=fail");
  assertEquals(bad.status, 400);
  const { fields } = await bad.json();
  assertEquals(fields.map((f: { field: string }) => f.field), ["fault.price"]);
});

Deno.test("a failed required branch is a 502 naming it; what needed it is skipped, naming the need", async () => {
  const { app } = setup((path) => path.startsWith("/customers/") ? "fail" : "answer");
  const response = await app.request("/orders/o1");
  assertEquals(response.status, 502);
  assertEquals(response.headers.get("x-fanfare-complete"), "false");
  const body = await response.json();
  assertEquals(body.error, "required branch failed");
  assertEquals(body.branch, "customer");
  assertEquals(body.reasons.customer, "error: Downstream 'orders.customer' answered 500");
  assertEquals(body.reasons.offers, 'skipped: need "customer" failed');
});

Deno.test("a failed first level is a 502 naming it, and nothing after it is called", async () => {
  const { app, calls } = setup((path) => path.startsWith("/orders/") ? "fail" : "answer");
  const response = await app.request("/orders/o1");
  assertEquals(response.status, 502);
  const body = await response.json();
  assertEquals(body.branch, "order");
  assertEquals(body.reasons.customer, 'skipped: need "order" failed');
  assertEquals(body.reasons.items, 'skipped: need "order" failed');
  assertEquals(body.reasons.offers, 'skipped: required branch "order" failed');
  assertEquals(calls.map((c) => c.path), ["/orders/o1"]);
});

Deno.test("an answer that lacks a field a template needs fails that branch, naming the placeholder", async () => {
  const { app } = setup((path) => path.startsWith("/orders/") ? { itemIds: [] } : "answer");
  const response = await app.request("/orders/o1");
  assertEquals(response.status, 502);
  const body = await response.json();
  assertEquals(body.branch, "customer");
  assertEquals(
    body.reasons.customer,
    "error: Cannot fill {order.customerId} as its value must be a string, number or boolean: current value is missing",
  );
  // An empty forEach answers at once, with no call.
  assertEquals(body.timings.items.outcome, "ok");
});

Deno.test("a downstream's answer cannot move the next call's path: '..' is refused", async () => {
  const { app, calls } = setup((path) =>
    path.startsWith("/orders/") ? { customerId: "..", itemIds: [] } : "answer"
  );
  const response = await app.request("/orders/o1");
  assertEquals(response.status, 502);
  assert((await response.json()).reasons.customer.includes('must not be empty, "." or ".."'));
  assertEquals(calls.length, 1);
});

Deno.test("a forEach over more elements than its max fails the branch without calling it", async () => {
  const itemIds = Array.from({ length: 11 }, (_, i) => `i${i}`);
  const { app, calls } = setup((path) =>
    path.startsWith("/orders/") ? { customerId: "c-1", itemIds } : "answer"
  );
  const body = await (await app.request("/orders/o1")).json();
  assertEquals(
    body.reasons.items,
    "error: Cannot call forEach as {order.itemIds} may hold at most 10 elements: current value has 11",
  );
  assert(!calls.some((c) => c.path.startsWith("/items/")));
});

Deno.test("the budget is split: the first level leaves the required customer its minimum", async () => {
  const { app } = setup();
  const body = await (await app.request("/orders/o1?budget=300")).json();
  assertEquals(body.budgetMs, 300);
  // order may run until 300 less customer's minBudgetMs (50), before its own 300 ms are up.
  assertEquals(body.timings.order.deadlineMs, 250);
  assert(body.timings.customer.deadlineMs <= 300, JSON.stringify(body.timings.customer));
});

Deno.test("a required branch cut where the budget split ended its time is a 504, not a 502", async () => {
  const { app } = setup((path) => path.startsWith("/orders/") ? "hang" : "answer");
  // order may run until 60 - 50 (customer's minimum) = 10 ms, long before its own 300 ms.
  const response = await app.request("/orders/o1?budget=60");
  assertEquals(response.status, 504);
  const body = await response.json();
  assertEquals(body.error, "budget exhausted");
  assertEquals(body.branch, "order");
  assertEquals(body.reasons.order, "timeout");
});

Deno.test("bad input is a 400 naming each field, HEAD a 405", async () => {
  const { app, calls } = setup();
  const response = await app.request("/orders/o!1?budget=5", {
    headers: { "x-fanfare-budget-ms": "soon" },
  });
  assertEquals(response.status, 400);
  const { fields } = await response.json();
  assertEquals(fields.map((f: { field: string }) => f.field), [
    "orderId",
    "budget",
    "x-fanfare-budget-ms",
  ]);
  assertEquals((await app.request("/orders/o1", { method: "HEAD" })).status, 405);
  assertEquals(calls.length, 0);
});

Deno.test("a client that goes away aborts the calls in flight at every level", async () => {
  const { app, calls } = setup((path) =>
    path.startsWith("/orders/") || path.startsWith("/customers/") ? "answer" : "hang"
  );
  const client = new AbortController();
  const answer = app.request("/orders/o1", { signal: client.signal });
  // Wait until the second level's items and the third level's offers are in flight.
  for (let i = 0; i < 200 && !calls.some((c) => c.path.startsWith("/recommendations/")); i++) {
    await flush(5);
  }
  const hanging = calls.filter((c) => c.path.startsWith("/items/") || c.path.startsWith("/rec"));
  assert(hanging.length >= 2, calls.map((c) => c.path).join());
  client.abort(new Error("client left"));
  assertEquals((await answer).status, 499);
  assert(hanging.every((c) => c.signal.aborted));
});

Deno.test("metrics count requests by the endpoint's route and calls as <endpoint>.<branch>", async () => {
  const { app, metrics } = setup((path) =>
    path.startsWith("/recommendations/") ? "fail" : "answer"
  );
  await (await app.request("/orders/o1")).body?.cancel();
  const text = metrics.registry.render();
  assert(
    text.includes('fanfare_http_requests_total{route="/orders/:orderId",status="200"} 1'),
    text,
  );
  assert(/fanfare_branch_outcomes_total\{branch="orders.offers",outcome="error"\} 1/.test(text));
  assert(/fanfare_branch_outcomes_total\{branch="orders.customer",outcome="ok"\} 1/.test(text));
  assert(text.includes('fanfare_degraded_responses_total{route="/orders/:orderId"} 1'), text);
});

Deno.test("a hedged branch sends its hedge inside the request's limit and the hedge's answer wins", async () => {
  let orderCalls = 0;
  const { fetcher, calls } = downstream((path) => {
    if (!path.startsWith("/orders/")) return "answer";
    // The first call never answers; the hedge does.
    return orderCalls++ === 0 ? "hang" : "answer";
  });
  const { aggregate } = await import("../routes/aggregate.ts");
  const app = new Hono().get(
    "/o/:id",
    aggregate({
      name: "hedged",
      route: "/o/:id",
      limit: 2,
      branches: {
        order: {
          path: "/orders/{params.id}",
          required: true,
          timeoutMs: 5_000,
          hedge: { delayMs: 1 },
        },
      },
    }, { downstreams: { default: fetcher } }),
  );
  const response = await app.request("/o/o1");
  assertEquals(response.status, 200);
  const { timings } = await response.json();
  assertEquals([timings.order.hedged, timings.order.attempts, timings.order.winner], [true, 2, 2]);
  assertEquals(calls.length, 2);
  // The losing first call was aborted once the hedge answered.
  assert(calls[0].signal.aborted);
});

Deno.test("a branch with retry retries a fast failure, and one with breaker stops calling a downstream that is down", async () => {
  let orderCalls = 0;
  const { fetcher, calls } = downstream((path) => {
    // A 503 is worth a retry (a 500 is not).
    if (path.startsWith("/orders/")) return orderCalls++ === 0 ? "unavailable" : "answer";
    return path.startsWith("/customers/") ? "fail" : "answer";
  });
  const { aggregate } = await import("../routes/aggregate.ts");
  const app = new Hono().get(
    "/o/:id",
    aggregate({
      name: "guarded",
      route: "/o/:id",
      branches: {
        order: { path: "/orders/{params.id}", timeoutMs: 1_000, retry: { maxAttempts: 2 } },
        customer: { path: "/customers/{params.id}", timeoutMs: 1_000, breaker: true },
      },
    }, { downstreams: { default: fetcher } }),
  );
  const first = await (await app.request("/o/o1")).json();
  assertEquals(first.timings.order.outcome, "ok", JSON.stringify(first));
  assertEquals([first.timings.order.attempts, first.timings.order.retries], [2, 1]);
  // The default breaker opens once 90 % of at least 20 calls failed.
  for (let i = 0; i < 19; i++) await (await app.request("/o/o1")).body?.cancel();
  const customerCalls = calls.filter((c) => c.path.startsWith("/customers/")).length;
  assertEquals(customerCalls, 20);
  const open = await (await app.request("/o/o1")).json();
  assertEquals(open.reasons.customer, "circuit-open");
  assertEquals(calls.filter((c) => c.path.startsWith("/customers/")).length, customerCalls);
});

Deno.test("aggregate() mounts on any Hono app and route", async () => {
  const { fetcher } = downstream();
  const { aggregate } = await import("../routes/aggregate.ts");
  const app = new Hono().get(
    "/users/:user/home",
    aggregate({
      name: "home",
      route: "/users/:user/home",
      headers: ["x-tenant"],
      branches: {
        profile: { path: "/customers/{params.user}?tenant={headers.x-tenant}", timeoutMs: 100 },
      },
    }, { downstreams: { default: fetcher } }),
  );
  const body = await (await app.request("/users/u7/home", { headers: { "x-tenant": "acme" } }))
    .json();
  assertEquals(body.data.profile.id, "u7");
});

Deno.test("an endpoint branch's breaker is among /metrics' gauges and the dashboard's, as <endpoint>.<branch>", async () => {
  const { fetcher } = downstream((path) => path.startsWith("/customers/") ? "fail" : "answer");
  const { createApp } = await import("../routes/app.ts");
  const { defaultRegistry } = await import("../src/gateway/mod.ts");
  const { compileConfig } = await import("../src/aggregate/mod.ts");
  const app = createApp({
    registry: defaultRegistry(fetcher),
    endpoints: compileConfig(
      parseConfig({
        endpoints: [{
          name: "guarded",
          route: "/o/:id",
          branches: {
            order: { path: "/orders/{params.id}", timeoutMs: 1_000 },
            customer: { path: "/customers/{params.id}", timeoutMs: 1_000, breaker: true },
          },
        }],
      }),
      { default: fetcher },
    ),
  });
  const gauge = (metrics: string, state: string) =>
    metrics.match(
      new RegExp(
        `^fanfare_circuit_state\\{branch="guarded.customer",state="${state}"\\} (\\S+)$`,
        "m",
      ),
    )?.[1];
  const before = await (await app.request("/metrics")).text();
  assertEquals([gauge(before, "closed"), gauge(before, "open")], ["1", "0"]);
  // The default breaker opens once 90 % of at least 20 calls failed.
  for (let i = 0; i < 20; i++) await (await app.request("/o/o1")).body?.cancel();
  const after = await (await app.request("/metrics")).text();
  assertEquals([gauge(after, "closed"), gauge(after, "open")], ["0", "1"]);
  assert(
    /^fanfare_circuit_transitions_total\{branch="guarded.customer",to="open"\} 1$/m.test(after),
    after.split("\n").filter((line) => line.includes("circuit")).join("\n"),
  );
  // The dashboard reads the same gauges.
  const stats = await (await app.request("/api/stats")).json();
  assertEquals(stats.circuits["guarded.customer"], "open");
});
