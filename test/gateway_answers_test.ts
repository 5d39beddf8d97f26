/**
 * What the gateway accepts from a downstream: a redirect is not followed, a body is capped and
 * read no further than the cap, deep JSON is refused before it can break the join, and an answer
 * must be a 2xx JSON object. A bad answer degrades its branch with a reason of the gateway's own
 * words, never the downstream's bytes.
 *
 * @module
 */
import { createApp } from "../routes/app.ts";
import { createDownstream } from "../sim/downstream.ts";
import { type DefaultBranchName, defaultRegistry } from "../src/gateway/branch_registry.ts";
import { type Fetcher, urlFetcher } from "../src/gateway/fetcher.ts";
import { assert, assertEquals } from "./_assert.ts";

/**
 * The gateway over an in-process downstream where `branch` answers `answer()` instead; every
 * other branch answers at once.
 */
function gatewayWith(branch: DefaultBranchName, answer: (request: Request) => Response) {
  const downstream = createDownstream({ tailEvery: 0 });
  const fetcher: Fetcher = {
    fetch(request) {
      const name = new URL(request.url).pathname.split("/")[1];
      return name === branch ? answer(request) : downstream.fetch(request);
    },
  };
  return createApp({
    registry: defaultRegistry(fetcher, { query: () => ({ latencyMs: "0" }) }),
  });
}

/** A body that yields `chunks` chunks of `size` bytes, counting how many were pulled. */
function countedStream(chunks: number, size: number) {
  const counter = { pulled: 0, cancelled: false };
  const chunk = new Uint8Array(size).fill(0x20);
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (counter.pulled === chunks) return controller.close();
      counter.pulled++;
      controller.enqueue(chunk);
    },
    cancel() {
      counter.cancelled = true;
    },
  }, { highWaterMark: 0 });
  return { stream, counter };
}

const json = (body: BodyInit, init: ResponseInit = {}) =>
  new Response(body, {
    ...init,
    headers: { "content-type": "application/json", ...init.headers as Record<string, string> },
  });

Deno.test("a redirect from a downstream is not followed and degrades its branch as 'redirect'", async () => {
  let internalCalls = 0;
  const internal = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    internalCalls++;
    return Response.json({ secret: "admin keys" });
  });
  const downstream = createDownstream({ tailEvery: 0 });
  const redirecting = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    if (new URL(request.url).pathname.startsWith("/reviews/")) {
      return Response.redirect(`http://127.0.0.1:${internal.addr.port}/admin/keys`, 302);
    }
    return downstream.fetch(request);
  });
  try {
    const app = createApp({
      registry: defaultRegistry(urlFetcher(`http://127.0.0.1:${redirecting.addr.port}/`), {
        query: () => ({ latencyMs: "0" }),
      }),
    });
    const response = await app.request("/product/sku-42");
    assertEquals(response.status, 200);
    const body = await response.json();
    assertEquals(body.reasons.reviews, "redirect");
    assertEquals(body.product.reviews, undefined);
    assertEquals(internalCalls, 0);
  } finally {
    await Promise.all([internal.shutdown(), redirecting.shutdown()]);
  }
});

Deno.test("a body over the branch's cap with no content-length is read no further than the cap", async () => {
  const { stream, counter } = countedStream(10_000, 16 * 1024);
  const app = gatewayWith("reviews", () => json(stream));
  const response = await app.request("/product/sku-42");
  assertEquals(response.status, 200);
  const body = await response.json();
  assertEquals(body.reasons.reviews, "body too large");
  assert(counter.pulled <= 8, `pulled ${counter.pulled} chunks of 16 KiB past a 64 KiB cap`);
  assert(counter.cancelled, "the body was not cancelled");
});

Deno.test("a content-length over the branch's cap degrades it before a byte is read", async () => {
  const { stream, counter } = countedStream(10, 1024);
  const app = gatewayWith(
    "reviews",
    () => json(stream, { headers: { "content-length": String(30 * 1024 * 1024) } }),
  );
  const body = await (await app.request("/product/sku-42")).json();
  assertEquals(body.reasons.reviews, "body too large");
  assertEquals(counter.pulled, 0);
});

Deno.test("a branch's own maxBodyBytes replaces the default cap", async () => {
  const downstream = createDownstream({ tailEvery: 0 });
  const registry = defaultRegistry(downstream, { query: () => ({ latencyMs: "0" }) })
    .map((spec) => spec.name === "price" ? { ...spec, maxBodyBytes: 10 } : spec);
  const response = await createApp({ registry }).request("/product/sku-42");
  assertEquals(response.status, 502);
  assertEquals((await response.json()).reasons.price, "body too large");
});

Deno.test("deeply nested JSON in an optional branch degrades it as 'invalid body' and the product still answers", async () => {
  const depth = 10_000;
  const app = gatewayWith("reviews", () => json("[".repeat(depth) + "]".repeat(depth)));
  const response = await app.request("/product/sku-42");
  assertEquals(response.status, 200);
  const body = await response.json();
  assertEquals(body.reasons.reviews, "invalid body");
  assertEquals(body.product.price.currency, "EUR");
});

Deno.test("JSON null, a 206 and JSON labelled text/html do not count as an answer, also for a required branch", async () => {
  const cases: [string, () => Response][] = [
    ["invalid body", () => json("null")],
    ["error: Downstream 'price' answered 206", () => json("{}", { status: 206 })],
    [
      "invalid body",
      () => new Response('{"amountCents":1}', { headers: { "content-type": "text/html" } }),
    ],
    ["invalid body", () => json("[1, 2]")],
  ];
  for (const [reason, answer] of cases) {
    const response = await gatewayWith("price", answer).request("/product/sku-42");
    assertEquals(response.status, 502, reason);
    assertEquals((await response.json()).reasons.price, reason);
  }
});

Deno.test("a reason never echoes the downstream's bytes", async () => {
  const app = gatewayWith("reviews", () => json("<script>alert('owned')</script>"));
  const body = await (await app.request("/product/sku-42")).json();
  assertEquals(body.reasons.reviews, "invalid body");
  assert(!JSON.stringify(body).includes("owned"), "the answer quotes the downstream's body");
});

Deno.test("an application/*+json content type with a charset is a JSON answer", async () => {
  const app = gatewayWith(
    "reviews",
    () =>
      new Response('{"stars":4}', {
        headers: { "content-type": "application/vnd.reviews+json; charset=utf-8" },
      }),
  );
  const body = await (await app.request("/product/sku-42")).json();
  assertEquals(body.reasons, {});
  assertEquals(body.product.reviews, { stars: 4 });
});
