import { assert, assertEquals } from "./_assert.ts";
import { gatewayOverDownstream } from "./_gateway.ts";

const setup = () => gatewayOverDownstream().app;

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
