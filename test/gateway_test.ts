import { type DefaultBranchName, defaultRegistry } from "../src/gateway/branch_registry.ts";
import { urlFetcher } from "../src/gateway/fetcher.ts";
import { BUDGET_HEADER, scatterGather } from "../src/gateway/scatter_gather.ts";
import { assert, assertEquals } from "./_assert.ts";
import { deferred } from "./_deferred.ts";
import { gatewayOverDownstream as setup } from "./_gateway.ts";

const ALL: DefaultBranchName[] = ["price", "inventory", "reviews", "recommendations", "shipping"];
/** Long enough that a branch given it can only end by being cut. */
const FOREVER_MS = "10000";

/** Every branch waits "forever" except `fast`; only a cut can end them. */
function slowExcept(...fast: DefaultBranchName[]) {
  return {
    query: (branch: DefaultBranchName) =>
      fast.includes(branch) ? undefined : { latencyMs: FOREVER_MS },
    timeoutMs: Object.fromEntries(ALL.map((name) => [name, Number(FOREVER_MS)])),
  };
}

Deno.test("gateway joins every branch of a healthy product into one 200", async () => {
  const budgets: string[] = [];
  const { app } = setup({
    wrap: (downstream) => ({
      fetch(request) {
        budgets.push(request.headers.get(BUDGET_HEADER) ?? "missing");
        return downstream.fetch(request);
      },
    }),
  });
  const response = await app.request("/product/sku-42");
  assertEquals(response.status, 200);
  const body = await response.json();
  assertEquals(body.id, "sku-42");
  assertEquals(body.policy, "bestEffort");
  assertEquals(body.budgetMs, 1000);
  assertEquals(Object.keys(body.product).sort(), [...ALL].sort());
  assertEquals(body.product.price.currency, "EUR");
  assertEquals(body.degraded, []);
  assertEquals(body.reasons, {});
  for (const name of ALL) {
    const timing = body.timings[name];
    assertEquals(timing.outcome, "ok", `outcome of ${name}`);
    assert(
      timing.endMs >= timing.startMs,
      `${name} ends before it starts: ${Deno.inspect(timing)}`,
    );
  }
  // Every downstream call carries its remaining budget, capped by the branch's own timeout.
  assertEquals(budgets.length, ALL.length);
  for (const budget of budgets) {
    assert(/^\d+$/.test(budget) && Number(budget) <= 300, `budget header was ${budget}`);
  }
});

Deno.test("bestEffort answers 200 without a failing optional branch and names it degraded", async () => {
  const { app } = setup({ failBranches: ["reviews"] });
  const response = await app.request("/product/sku-42?policy=bestEffort");
  assertEquals(response.status, 200);
  const body = await response.json();
  assertEquals(body.degraded, ["reviews"]);
  assertEquals(body.reasons, { reviews: "error: Downstream 'reviews' answered 500" });
  assertEquals(body.timings.reviews.outcome, "error");
  assertEquals("reviews" in body.product, false);
  assertEquals(Object.keys(body.product).length, 4);
  assertEquals(body.errors, undefined);
});

Deno.test("collectAll answers 200 with what succeeded plus an errors list", async () => {
  const { app } = setup({ failBranches: ["reviews"] });
  const response = await app.request("/product/sku-42?policy=collectAll");
  assertEquals(response.status, 200);
  const body = await response.json();
  assertEquals(body.policy, "collectAll");
  assertEquals(Object.keys(body.product).length, 4);
  assertEquals(body.degraded, ["reviews"]);
  assertEquals(body.errors, [{
    branch: "reviews",
    reason: "error: Downstream 'reviews' answered 500",
  }]);
});

Deno.test("failFast answers 502 on the first failure and aborts every other branch", async () => {
  const { app, stats } = setup({ failBranches: ["reviews"], ...slowExcept("reviews") });
  const response = await app.request("/product/sku-42?policy=failFast&budget=10000");
  assertEquals(response.status, 502);
  const body = await response.json();
  assertEquals(body.error, "branch failed");
  assertEquals(body.branch, "reviews");
  assertEquals(body.reasons.reviews, "error: Downstream 'reviews' answered 500");
  for (const name of ALL.filter((name) => name !== "reviews")) {
    assertEquals(body.reasons[name], "aborted", `reason of ${name}`);
    assertEquals(body.timings[name].outcome, "aborted", `outcome of ${name}`);
    assertEquals(stats.snapshot()[name]?.aborted, 1, `downstream aborts of ${name}`);
  }
});

Deno.test("a failed required branch makes bestEffort and collectAll answer 502 naming it", async () => {
  for (const policy of ["bestEffort", "collectAll"]) {
    const { app } = setup({ failBranches: ["price"] });
    const response = await app.request(`/product/sku-42?policy=${policy}`);
    assertEquals(response.status, 502, `status under ${policy}`);
    const body = await response.json();
    assertEquals(body.error, "required branch failed");
    assertEquals(body.branches, ["price"]);
    assertEquals(body.reasons, { price: "error: Downstream 'price' answered 500" });
    assertEquals(body.product, undefined);
  }
});

Deno.test("bestEffort cuts a straggler at its own timeout and names it degraded", async () => {
  const { app, stats } = setup({
    query: (branch) => branch === "reviews" ? { latencyMs: FOREVER_MS } : undefined,
    timeoutMs: { reviews: 20 },
  });
  const response = await app.request("/product/sku-42?budget=10000");
  assertEquals(response.status, 200);
  const body = await response.json();
  assertEquals(body.degraded, ["reviews"]);
  assertEquals(body.reasons, { reviews: "timeout" });
  assertEquals(body.timings.reviews.outcome, "timeout");
  assertEquals(Object.keys(body.product).length, 4);
  // The downstream either saw the abort or gave up on the 20 ms it was told it had.
  assertEquals(stats.snapshot().reviews.inFlight, 0);
});

Deno.test("bestEffort cuts a straggler at the request's budget", async () => {
  const { app } = setup({
    query: (branch) => branch === "shipping" ? { latencyMs: FOREVER_MS } : undefined,
  });
  const response = await app.request("/product/sku-42?budget=30");
  assertEquals(response.status, 200);
  const body = await response.json();
  assertEquals(body.budgetMs, 30);
  assertEquals(body.degraded, ["shipping"]);
  assertEquals(body.reasons, { shipping: "timeout" });
});

Deno.test("the caller's budget header caps the budget asked for in the query", async () => {
  const { app } = setup();
  const response = await app.request("/product/sku-42?budget=1000", {
    headers: { [BUDGET_HEADER]: "250" },
  });
  assertEquals(response.status, 200);
  assertEquals((await response.json()).budgetMs, 250);
});

Deno.test("bad input answers 400 naming each bad field", async () => {
  const { app, stats } = setup();
  const cases: [string, HeadersInit, string[]][] = [
    ["/product/sku-42?policy=sometimes&budget=5", {}, ["budget", "policy"]],
    ["/product/sku-42?budget=20000", {}, ["budget"]],
    ["/product/sku-42?budget=fast", {}, ["budget"]],
    ["/product/bad%20id", {}, ["id"]],
    [`/product/${"x".repeat(65)}`, {}, ["id"]],
    ["/product/sku-42", { [BUDGET_HEADER]: "soon" }, [BUDGET_HEADER]],
  ];
  for (const [path, headers, fields] of cases) {
    const response = await app.request(path, { headers });
    assertEquals(response.status, 400, `status of ${path}`);
    const body = await response.json();
    assertEquals(body.error, "invalid request");
    assertEquals(body.fields.map((f: { field: string }) => f.field).sort(), fields, path);
    for (const { message } of body.fields) assert(typeof message === "string" && message !== "");
  }
  assertEquals(stats.snapshot(), {}, "no downstream call for a bad request");
});

Deno.test("unknown routes answer 404 JSON", async () => {
  const { app } = setup();
  for (const path of ["/nope", "/product", "/product/a/b"]) {
    const response = await app.request(path);
    assertEquals(response.status, 404, path);
    assertEquals(response.headers.get("content-type")?.startsWith("application/json"), true);
    assertEquals((await response.json()).error, "not found");
  }
});

Deno.test("/metrics exposes requests, latencies, branch outcomes, degraded and in-flight", async () => {
  const { app } = setup({ failBranches: ["reviews"] });
  await (await app.request("/product/sku-42")).body?.cancel();
  await (await app.request("/product/sku-42?policy=nope")).body?.cancel();
  const response = await app.request("/metrics");
  assertEquals(response.status, 200);
  assertEquals(response.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const text = await response.text();
  const lines = text.trimEnd().split("\n");
  for (
    const expected of [
      "# TYPE fanfare_http_requests_total counter",
      'fanfare_http_requests_total{route="/product/:id",status="200"} 1',
      'fanfare_http_requests_total{route="/product/:id",status="400"} 1',
      "# TYPE fanfare_http_request_duration_seconds histogram",
      'fanfare_http_request_duration_seconds_bucket{route="/product/:id",le="+Inf"} 2',
      'fanfare_http_request_duration_seconds_count{route="/product/:id"} 2',
      'fanfare_branch_outcomes_total{branch="price",outcome="ok"} 1',
      'fanfare_branch_outcomes_total{branch="reviews",outcome="error"} 1',
      'fanfare_branch_duration_seconds_bucket{branch="reviews",outcome="error",le="+Inf"} 1',
      'fanfare_branch_duration_seconds_count{branch="price",outcome="ok"} 1',
      'fanfare_degraded_responses_total{route="/product/:id"} 1',
      "# TYPE fanfare_branches_in_flight gauge",
      "fanfare_branches_in_flight 0",
    ]
  ) {
    assert(lines.includes(expected), `missing line: ${expected}\n${text}`);
  }
  assert(
    lines.some((line) => line.startsWith('fanfare_branch_duration_seconds_sum{branch="price"')),
  );
  // Every line is a HELP, a TYPE, or `name{labels} value` in the text exposition format.
  const sample =
    /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)*\})? (NaN|[+-]Inf|-?\d+(\.\d+)?(e[+-]?\d+)?)$/;
  for (const line of lines) {
    assert(
      /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$/.test(line) || sample.test(line),
      `not exposition format: ${line}`,
    );
  }
});

Deno.test("a client abort aborts every downstream branch", async () => {
  const started = deferred();
  const calls: Promise<Response>[] = [];
  const { app, stats } = setup({
    ...slowExcept(),
    wrap: (downstream) => ({
      fetch(request) {
        const call = Promise.resolve(downstream.fetch(request));
        calls.push(call);
        if (calls.length === ALL.length) started.resolve();
        return call;
      },
    }),
  });
  const client = new AbortController();
  const pending = app.request("/product/sku-42?budget=10000", { signal: client.signal });
  await started.promise;
  client.abort(new Error("client went away"));
  const response = await pending;
  assertEquals(response.status, 499);
  await response.body?.cancel();
  // The downstream answers each aborted call; the gateway already cancelled those bodies.
  await Promise.all(calls);
  for (const name of ALL) {
    assertEquals(stats.snapshot()[name], { served: 0, inFlight: 0, aborted: 1 }, name);
  }
  const metrics = await (await app.request("/metrics")).text();
  assert(metrics.includes("fanfare_branches_in_flight 0\n"), metrics);
  assert(metrics.includes('fanfare_branch_outcomes_total{branch="price",outcome="aborted"} 1'));
});

Deno.test("urlFetcher sends a request built under its origin as it is", async () => {
  const sent: (string | Request)[] = [];
  const fetcher = urlFetcher("http://127.0.0.1:9/api/", {
    fetch: (input) => {
      sent.push(input);
      return Promise.resolve(new Response("{}"));
    },
  });
  assertEquals(fetcher.origin, "http://127.0.0.1:9/api");
  const request = new Request("http://127.0.0.1:9/api/price/sku-42");
  await (await fetcher.fetch(request)).body?.cancel();
  // Only the prefix followed by "/" counts: "/apix" is another path, resolved under the base.
  await (await fetcher.fetch(new Request("http://127.0.0.1:9/apix/price"))).body?.cancel();
  assertEquals(sent[0], request);
  assertEquals(sent[1], "http://127.0.0.1:9/api/apix/price");
});

Deno.test("scatterGather builds each branch's URL under its fetcher's origin", async () => {
  const urls: string[] = [];
  const fetcher = urlFetcher("http://127.0.0.1:9/api/", {
    fetch: (input) => {
      urls.push(typeof input === "string" ? input : input.url);
      return Promise.resolve(Response.json({ value: 1 }));
    },
  });
  const registry = defaultRegistry(fetcher);
  await scatterGather(registry, "sku-42", { budgetMs: 1000, query: () => ({ latencyMs: "0" }) });
  assertEquals(urls.sort(), [
    "http://127.0.0.1:9/api/inventory/sku-42?latencyMs=0",
    "http://127.0.0.1:9/api/price/sku-42?latencyMs=0",
    "http://127.0.0.1:9/api/recommendations/sku-42?latencyMs=0",
    "http://127.0.0.1:9/api/reviews/sku-42?latencyMs=0",
    "http://127.0.0.1:9/api/shipping/sku-42?latencyMs=0",
  ]);
});

Deno.test("urlFetcher resolves the request's path and query under its base URL", async () => {
  let sent: Request | undefined;
  const fetcher = urlFetcher("http://127.0.0.1:9/api/", {
    fetch: (url, init) => {
      sent = new Request(url, init);
      return Promise.resolve(new Response("{}"));
    },
  });
  const response = await fetcher.fetch(
    new Request("http://downstream.internal/price/sku-42?latencyMs=0", {
      headers: { [BUDGET_HEADER]: "120" },
    }),
  );
  await response.body?.cancel();
  assertEquals(sent?.url, "http://127.0.0.1:9/api/price/sku-42?latencyMs=0");
  assertEquals(sent?.headers.get(BUDGET_HEADER), "120");
});
