import { assertEquals } from "./_assert.ts";
import type { GatherReport } from "../src/gateway/mod.ts";
import { createDownstream } from "../sim/downstream.ts";
import { defaultRegistry } from "../src/gateway/branch_registry.ts";
import { createGateway } from "../routes/product.ts";
import { failureStatus } from "../routes/product_status.ts";

const NO_PERMIT = "skipped: no permit before the branch's deadline";
const options = { budgetMs: 1000 };

function gathered(
  failed: Record<string, GatherReport["branches"][string]>,
  decidedBy?: GatherReport["decidedBy"],
): GatherReport {
  return {
    data: {},
    branches: { reviews: { outcome: "ok" }, ...failed },
    failedRequired: Object.keys(failed),
    decidedBy,
  };
}

Deno.test("a gathered product with every required branch is no failure", () => {
  assertEquals(failureStatus(gathered({}), options), undefined);
});

Deno.test("a required branch the gateway's own ceiling kept from running is a 503 with Retry-After", () => {
  const report = gathered({ price: { outcome: "skipped", reason: NO_PERMIT } });
  assertEquals(failureStatus(report, options), {
    status: 503,
    error: "no capacity",
    retryAfterS: 1,
  });
});

Deno.test("a required branch its bulkhead turned away is a 503 with Retry-After, as for the ceiling", () => {
  const refused = {
    outcome: "error",
    reason: "error: Bulkhead of 'price' is full (queue_full): limit is 64 calls in flight",
  } as const;
  assertEquals(failureStatus(gathered({ price: refused }), options), {
    status: 503,
    error: "no capacity",
    retryAfterS: 1,
  });
});

Deno.test("a forEach branch's call turned away or kept out by the gateway is a 503 too, its index before the reason", () => {
  for (
    const refused of [
      { outcome: "error", reason: "[1] error: Bulkhead of 'o.items' is full (queue_full)" },
      { outcome: "skipped", reason: `[0] ${NO_PERMIT}` },
    ] as const
  ) {
    assertEquals(failureStatus(gathered({ items: refused }), options), {
      status: 503,
      error: "no capacity",
      retryAfterS: 1,
    });
  }
});

Deno.test("a required branch whose downstream failed or timed out on its own is a 502", () => {
  const failing = { outcome: "error", reason: "error: Downstream 'price' answered 500" } as const;
  const slow = { outcome: "timeout", reason: "timeout", startMs: 1, deadlineMs: 301 } as const;
  assertEquals(failureStatus(gathered({ price: failing }), options)?.status, 502);
  assertEquals(failureStatus(gathered({ price: slow }), options)?.status, 502);
});

Deno.test("a required branch the gateway cut itself while the client waited is a 503, not a 502", () => {
  const cut = { outcome: "aborted", reason: "aborted", startMs: 1, deadlineMs: 301 } as const;
  assertEquals(failureStatus(gathered({ price: cut }), options), {
    status: 503,
    error: "branch cut by the gateway",
    retryAfterS: 1,
  });
});

Deno.test("a downstream failure decides over the ceiling when required branches failed both ways", () => {
  const report = gathered({
    price: { outcome: "skipped", reason: NO_PERMIT },
    inventory: { outcome: "error", reason: "error: Downstream 'inventory' answered 500" },
  });
  assertEquals(failureStatus(report, options)?.status, 502);
});

Deno.test("a budget that ran out before a required branch answered is a 504", () => {
  const cut = { outcome: "timeout", reason: "timeout", startMs: 1, deadlineMs: 1000 } as const;
  const neverStarted = { outcome: "skipped", reason: "skipped" } as const;
  assertEquals(failureStatus(gathered({ price: cut }), options)?.status, 504);
  assertEquals(failureStatus(gathered({ price: neverStarted }), options)?.status, 504);
  assertEquals(failureStatus(gathered({}, { kind: "budget" }), options)?.status, 504);
});

Deno.test("failFast's deciding branch sets the status by its own cause", () => {
  const report: GatherReport = {
    data: {},
    branches: { reviews: { outcome: "skipped", reason: NO_PERMIT } },
    failedRequired: [],
    decidedBy: { kind: "branch", branch: "reviews" },
  };
  assertEquals(failureStatus(report, options)?.status, 503);
});

Deno.test("a client that went away gets a 499 with no body", async () => {
  const gateway = createGateway({
    registry: defaultRegistry(createDownstream({ tailEvery: 0 })),
  });
  const client = new AbortController();
  client.abort(new Error("client went away"));
  const response = await gateway.request("/product/sku-42", { signal: client.signal });
  assertEquals(response.status, 499);
  assertEquals(await response.text(), "");
});
