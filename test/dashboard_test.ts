import { assert, assertEquals } from "./_assert.ts";
import { gatewayOverDownstream } from "./_gateway.ts";
import { createApp } from "../routes/app.ts";
import { createDownstream } from "../sim/downstream.ts";
import { defaultRegistry, type Fetcher } from "../src/gateway/mod.ts";
import { compileConfig, parseConfig } from "../src/aggregate/mod.ts";
import config from "../fanfare.config.json" with { type: "json" };

const setup = () => gatewayOverDownstream().app;

/** The app with the committed config's product page and endpoints, all over `downstream`. */
function appWithEndpoints(downstream: Fetcher) {
  return createApp({
    registry: defaultRegistry(downstream),
    endpoints: compileConfig(parseConfig(config), { default: downstream }),
  });
}

Deno.test("the gateway serves the dashboard page at /", async () => {
  const response = await setup().request("/");
  assertEquals(response.status, 200);
  assert(response.headers.get("content-type")?.startsWith("text/html"), "HTML");
  assert((await response.text()).includes("<title>fanfare · live</title>"), "the dashboard");
});

Deno.test("/api/stats lists every branch and reports no limiter when the gateway has none", async () => {
  const response = await setup().request("/api/stats");
  assertEquals(response.headers.get("cache-control"), "no-store");
  const body = await response.json();
  assertEquals(body.registry.map((branch: { name: string }) => branch.name), [
    "price",
    "inventory",
    "reviews",
    "recommendations",
    "shipping",
  ]);
  assertEquals(body.requests.total, 0);
  assertEquals("limiter" in body, false);
});

Deno.test("/api/stats counts product requests and their branch outcomes, not its own", async () => {
  const app = setup();
  await (await app.request("/product/sku-1?fault.reviews=fail")).body?.cancel();
  await (await app.request("/api/stats")).body?.cancel();
  const body = await (await app.request("/api/stats")).json();
  assertEquals(body.requests.total, 1);
  assertEquals(body.requests.degradedShare, 1);
  assertEquals(body.branches.byName.reviews.outcomes, { error: 1 });
  assertEquals(body.branches.byName.price.outcomes, { ok: 1 });
});

Deno.test("/api/stats counts each aggregation endpoint's requests under its route, apart from the product's", async () => {
  const app = appWithEndpoints(createDownstream({ tailEvery: 0 }));
  await (await app.request("/orders/o1")).body?.cancel();
  const body = await (await app.request("/api/stats")).json();
  assertEquals(body.requests.total, 0);
  assertEquals(body.endpoints.length, 1);
  assertEquals(body.endpoints[0].name, "orders");
  assertEquals(body.endpoints[0].route, "/orders/:orderId");
  assertEquals(body.endpoints[0].requests.total, 1);
  assert("orders.customer" in body.branches.byName, Object.keys(body.branches.byName).join());
});

Deno.test("/api/stats gives the product and each endpoint a degraded share of their own", async () => {
  const simulated = createDownstream({ tailEvery: 0 });
  // Every call answers at once, but an order's offers (recommendations for its customer) fail.
  const app = appWithEndpoints({
    fetch(request: Request) {
      const url = new URL(request.url);
      if (url.pathname.startsWith("/recommendations/c-")) {
        return Response.json({ error: "down" }, { status: 500 });
      }
      url.searchParams.set("latencyMs", "0");
      return simulated.fetch(new Request(url, request));
    },
  });
  const product = await (await app.request("/product/sku-1")).json();
  assertEquals(product.degraded, []);
  const order = await (await app.request("/orders/o1")).json();
  assertEquals(order.degraded, ["offers"]);
  const body = await (await app.request("/api/stats")).json();
  assertEquals(body.requests.degradedShare, 0);
  assertEquals(body.endpoints[0].requests.degradedShare, 1);
});
