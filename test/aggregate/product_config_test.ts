import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { compileProduct, configIssues } from "../../src/aggregate/mod.ts";
import { defaultRegistry, type Fetcher } from "../../src/gateway/mod.ts";

const repo = new URL("../../", import.meta.url);
const fetcher: Fetcher = { fetch: () => Response.json({}) };
const orders = {
  name: "orders",
  route: "/orders/:orderId",
  branches: { order: { path: "/orders/{params.orderId}", timeoutMs: 300 } },
};

Deno.test("the committed product page compiles to the built-in five branches, path for path", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("fanfare.config.json", repo)));
  const declared = compileProduct(config, { default: fetcher })!;
  const builtIn = defaultRegistry(fetcher);
  const shape = (registry: typeof builtIn) =>
    registry.map(({ name, required, idempotent, timeoutMs, path }) => ({
      name,
      required,
      idempotent,
      timeoutMs,
      path: path("sku_42-a"),
    }));
  assertEquals(shape(declared), shape(builtIn));
});

Deno.test("the product page's paths may hold only {params.id}, and each problem is named", () => {
  const issues = configIssues({
    product: {
      branches: {
        price: { path: "/price/{params.sku}", timeoutMs: 300 },
        stock: { path: "/stock/{query.region}/{params.id}", timeoutMs: 300, downstream: "nope" },
        review: { path: "/reviews/{params.id", timeoutMs: 200 },
        ship: { path: "/ship/{params.id}", timeoutMs: 200, idempotent: false, hedge: {} },
      },
    },
    endpoints: [orders],
  });
  assertEquals(issues, [
    "product.branches.price.path: {params.sku} cannot be filled: the product page has only {params.id}",
    'product.branches.stock.downstream: unknown downstream "nope" (declare it in downstreams)',
    "product.branches.stock.path: {query.region} cannot be filled: the product page has only {params.id}",
    issues[3],
    "product.branches.ship.hedge: a hedge repeats the call, which needs idempotent: true",
  ]);
  assert(issues[3].startsWith("product.branches.review.path: "), issues[3]);
  assertEquals(configIssues({ product: { branches: {} }, endpoints: [orders] }), [
    "product.branches: must declare at least one branch",
  ]);
  assertEquals(
    configIssues({ product: { branches: { a: { path: "/a" } } }, endpoints: [orders] }),
    [
      "product.branches.a.timeoutMs: is required (number)",
    ],
  );
});

Deno.test("compileProduct() gives no registry without a product page, and takes hedging by name", () => {
  assertEquals(compileProduct({ endpoints: [orders] }, { default: fetcher }), undefined);
  const config = {
    product: {
      branches: {
        price: { path: "/price/{params.id}", required: true, timeoutMs: 300 },
        reviews: { path: "/reviews/{params.id}", timeoutMs: 200, hedge: { delayMs: 20 } },
      },
    },
    endpoints: [orders],
  };
  const registry = compileProduct(config, { default: fetcher })!;
  assertEquals(registry[1].hedge?.delay, 20);
  assertEquals(registry[0].hedge, undefined);
  const overridden = compileProduct(config, { default: fetcher }, {
    hedge: { price: { delay: 5 }, reviews: undefined },
  })!;
  assertEquals(overridden[0].hedge?.delay, 5);
  assertEquals(overridden[1].hedge, undefined);
  assertThrows(
    () => compileProduct(config, {}),
    /branch "price" calls downstream "default", which has no fetcher/,
  );
});
