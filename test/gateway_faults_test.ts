import { assert, assertEquals } from "./_assert.ts";
import { gatewayOverDownstream } from "./_gateway.ts";

/** The gateway before an in-process downstream answering at once; `calls` sees every URL. */
function setup() {
  const calls: URL[] = [];
  const { app } = gatewayOverDownstream({
    wrap: (downstream) => ({
      fetch(request) {
        calls.push(new URL(request.url));
        return downstream.fetch(request);
      },
    }),
  });
  return { app, calls };
}

Deno.test("fault.<branch>=fail makes that branch fail for real and the answer degrades", async () => {
  const { app, calls } = setup();
  const response = await app.request("/product/sku-1?fault.reviews=fail");
  assertEquals(response.status, 200);
  const body = await response.json();
  assertEquals(body.degraded, ["reviews"]);
  assertEquals(body.reasons.reviews, "error: Downstream 'reviews' answered 500");
  const reviews = calls.find((url) => url.pathname.startsWith("/reviews/"))!;
  assertEquals(reviews.searchParams.get("fail"), "1");
  const price = calls.find((url) => url.pathname.startsWith("/price/"))!;
  assertEquals(price.searchParams.has("fail"), false);
});

Deno.test("fault.<branch>=slow:<ms> replaces that branch's latency on its downstream call", async () => {
  const { app, calls } = setup();
  const response = await app.request("/product/sku-1?fault.shipping=slow:1");
  assertEquals(response.status, 200);
  await response.body?.cancel();
  const shipping = calls.find((url) => url.pathname.startsWith("/shipping/"))!;
  assertEquals(shipping.searchParams.get("latencyMs"), "1");
  const price = calls.find((url) => url.pathname.startsWith("/price/"))!;
  assertEquals(price.searchParams.get("latencyMs"), "0");
});

Deno.test("fault.errorRate=1 fails every branch, so the required ones make it a 502", async () => {
  const { app, calls } = setup();
  const response = await app.request("/product/sku-1?fault.errorRate=1");
  assertEquals(response.status, 502);
  const body = await response.json();
  assertEquals(body.branches, ["price", "inventory"]);
  assert(calls.every((url) => url.searchParams.get("errorRate") === "1"), "every call has it");
});

Deno.test("a fault field naming no branch is a 400 naming that field", async () => {
  const { app, calls } = setup();
  const response = await app.request("/product/sku-1?fault.prize=fail");
  assertEquals(response.status, 400);
  const body = await response.json();
  assertEquals(body.fields.map((field: { field: string }) => field.field), ["fault.prize"]);
  assertEquals(calls.length, 0);
});

Deno.test("a fault value other than fail, slow or slow:<ms> is a 400 naming the field", async () => {
  const { app } = setup();
  const response = await app.request("/product/sku-1?fault.reviews=explode&fault.errorRate=2");
  assertEquals(response.status, 400);
  const body = await response.json();
  assertEquals(
    body.fields.map((field: { field: string }) => field.field).sort(),
    ["fault.errorRate", "fault.reviews"],
  );
});

Deno.test("each branch's timing carries its deadline: its own timeout after its start", async () => {
  const { app } = setup();
  const response = await app.request("/product/sku-1?budget=1000");
  const { timings } = await response.json();
  const { startMs, deadlineMs } = timings.reviews;
  assert(Math.abs(deadlineMs - startMs - 200) < 0.01, `reviews: ${startMs} → ${deadlineMs}`);
});

Deno.test("a branch's deadline is capped by the request's budget", async () => {
  const { app } = setup();
  const response = await app.request("/product/sku-1?budget=50");
  const { startMs, deadlineMs } = (await response.json()).timings.price;
  // price's own timeout is 300 ms; a 50 ms budget ends far sooner.
  assert(deadlineMs - startMs < 100, `price: ${startMs} → ${deadlineMs}`);
});
