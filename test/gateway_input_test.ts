/**
 * Hostile input at the app's edge: a malformed body is a 400, not a 500; a HEAD never fans
 * out; a 400 stays small however many bad fields the request has.
 *
 * @module
 */
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { createApp } from "../routes/app.ts";
import { internalError } from "../routes/product.ts";
import { createDownstream } from "../sim/downstream.ts";
import { defaultRegistry } from "../src/gateway/branch_registry.ts";
import { assert, assertEquals } from "./_assert.ts";
import { memoryJobBackend } from "./_memory_jobs.ts";

function countingApp() {
  const downstream = createDownstream({ tailEvery: 0 });
  const calls = { count: 0 };
  const registry = defaultRegistry({
    fetch(request) {
      calls.count++;
      return downstream.fetch(request);
    },
  }, { query: () => ({ latencyMs: "0" }) });
  const { backend } = memoryJobBackend({ bound: 100 });
  return { app: createApp({ registry, jobs: { backend } }), calls };
}

Deno.test("malformed JSON on POST /jobs and /resend is a 400 naming the body", async () => {
  const { app } = countingApp();
  for (const path of ["/jobs", "/jobs/job-1/resend"]) {
    const response = await app.request(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{not json",
    });
    assertEquals(response.status, 400, path);
    const body = await response.json();
    assertEquals(body.error, "invalid request");
    assertEquals(body.fields[0].field, "body");
  }
});

Deno.test("an HTTPException keeps its status through the app-wide error handler", async () => {
  const app = new Hono().get("/", () => {
    throw new HTTPException(418, { message: "short and stout" });
  }).onError(internalError);
  const response = await app.request("/");
  assertEquals(response.status, 418);
  assertEquals(await response.json(), { error: "short and stout" });
});

Deno.test("HEAD /product/:id is refused with 405 and calls no downstream", async () => {
  const { app, calls } = countingApp();
  const response = await app.request("/product/sku-42", { method: "HEAD" });
  assertEquals(response.status, 405);
  assertEquals(response.headers.get("allow"), "GET");
  assertEquals(calls.count, 0);
});

Deno.test("a 400 for thousands of unknown fault fields stays small and counts what it left out", async () => {
  const { app } = countingApp();
  const query = Array.from({ length: 4000 }, (_, i) => `fault.junk${i}=fail`).join("&");
  const response = await app.request(`/product/sku-42?${query}`);
  assertEquals(response.status, 400);
  const text = await response.text();
  assert(text.length < 4096, `a ${query.length}-byte query got a ${text.length}-byte 400`);
  const body = JSON.parse(text);
  assertEquals(body.fields.length, 10);
  assertEquals(body.omitted, 3990);
});

Deno.test("a budget of 0 answers 504 at once without calling a downstream", async () => {
  const { app, calls } = countingApp();
  const response = await app.request("/product/sku-42", {
    headers: { "x-fanfare-budget-ms": "0" },
  });
  assertEquals(response.status, 504);
  assertEquals((await response.json()).error, "budget exhausted");
  assertEquals(calls.count, 0);
});
