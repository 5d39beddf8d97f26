/**
 * Properties of the gateway in this process (fast-check): no generated query string, header set
 * or downstream answer makes it answer 500, and where every downstream answers at once, no
 * answer takes longer than its budget plus 50 ms (the budget is 1,000 ms and an answer takes a
 * few, so the bound only trips on real work: the deep JSON that took Bun 1.9 s did).
 *
 * @module
 */
import fc from "fast-check";
import { createApp } from "../../routes/app.ts";
import { defaultRegistry } from "../../src/gateway/branch_registry.ts";
import type { Fetcher } from "../../src/gateway/fetcher.ts";
import { assert } from "../_assert.ts";

/** Statuses the product route may answer; 500 is not one of them. */
const ALLOWED = [200, 400, 405, 502, 503, 504];
/** How far past its budget an answer may come when every downstream answers at once. */
const SLACK_MS = 50;

/** Every branch answers `answer(branch)` at once. */
function appAnswering(answer: (branch: string) => Response) {
  const fetcher: Fetcher = {
    fetch: (request) => answer(new URL(request.url).pathname.split("/")[1]),
  };
  return createApp({ registry: defaultRegistry(fetcher) });
}

const healthy = () => Response.json({ ok: true });

const queryKey = fc.oneof(
  fc.constantFrom(
    "policy",
    "budget",
    "fault.price",
    "fault.reviews",
    "fault.errorRate",
    "fault.",
    "fault.__proto__",
    "__proto__",
    "constructor",
  ),
  fc.string({ maxLength: 20 }),
);
const queryValue = fc.oneof(
  fc.constantFrom("fail", "slow", "slow:5", "slow:99999", "bestEffort", "failFast", "collectAll"),
  fc.constantFrom("0", "9", "10", "10000", "10001", "1e3", "-1", "NaN", "0.5", ""),
  fc.string({ maxLength: 30 }),
);

Deno.test("no generated query string makes the gateway answer 500", async () => {
  const app = appAnswering(healthy);
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(queryKey, queryValue), { maxLength: 12 }), async (pairs) => {
      const query = new URLSearchParams(pairs).toString();
      const response = await app.request(`/product/sku-42?${query}`);
      await response.body?.cancel();
      assert(ALLOWED.includes(response.status), `?${query} answered ${response.status}`);
    }),
    { numRuns: 200 },
  );
});

const headerName = fc.oneof(
  fc.constantFrom(
    "x-fanfare-budget-ms",
    "accept",
    "accept-encoding",
    "content-type",
    "content-length",
    "authorization",
    "x-forwarded-for",
    "cookie",
  ),
  fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/),
);
const headerValue = fc.oneof(
  fc.constantFrom("0", "1", "999999999999", "-1", "NaN", "1e9", " 5 ", "application/json", "*/*"),
  fc.stringMatching(/^[\x20-\x7e]{0,40}$/),
);

Deno.test("no generated header set makes the gateway answer 500", async () => {
  const app = appAnswering(healthy);
  await fc.assert(
    fc.asyncProperty(fc.dictionary(headerName, headerValue, { maxKeys: 10 }), async (headers) => {
      const response = await app.request("/product/sku-42", { headers });
      await response.body?.cancel();
      assert(
        ALLOWED.includes(response.status),
        `${JSON.stringify(headers)} answered ${response.status}`,
      );
    }),
    { numRuns: 200 },
  );
});

/** Nesting `depth` deep of arrays or objects, possibly unbalanced. */
const deepJson = fc.record({
  depth: fc.integer({ min: 1, max: 60_000 }),
  object: fc.boolean(),
  balanced: fc.boolean(),
}).map(({ depth, object, balanced }) => {
  const [open, close] = object ? ['{"a":', "}"] : ["[", "]"];
  const inner = object ? "1" : "";
  return open.repeat(depth) + inner + (balanced ? close.repeat(depth) : "");
});

const downstreamAnswer = fc.record({
  status: fc.constantFrom(200, 201, 203, 204, 206, 301, 302, 307, 400, 404, 500, 503, 504),
  contentType: fc.constantFrom(
    "application/json",
    "application/json; charset=utf-8",
    "application/problem+json",
    "text/html",
    "text/plain",
    "",
    undefined,
  ),
  body: fc.oneof(
    fc.json({ maxDepth: 8 }),
    fc.string({ maxLength: 200 }),
    fc.uint8Array({ maxLength: 200 }),
    deepJson,
    fc.constantFrom("null", "[]", "{}", '{"a":', "\ufeff{}", '"\\ud800"', "1e400"),
  ),
  contentLength: fc.option(fc.constantFrom("0", "1", "10", "99999999", "-1", "abc")),
});

Deno.test("no generated downstream answer makes the gateway answer 500 or exceed its budget", async () => {
  await fc.assert(
    fc.asyncProperty(
      downstreamAnswer,
      fc.constantFrom("price", "reviews"),
      async ({ status, contentType, body, contentLength }, branch) => {
        const headers: Record<string, string> = {};
        if (contentType !== undefined) headers["content-type"] = contentType;
        if (contentLength !== null) headers["content-length"] = contentLength;
        const noBody = [204, 205, 304].includes(status) || (status >= 300 && status < 400);
        const app = appAnswering((name) =>
          name === branch
            ? new Response(noBody ? null : body as BodyInit, { status, headers })
            : healthy()
        );
        const budgetMs = 1000;
        const started = performance.now();
        const response = await app.request(`/product/sku-42?budget=${budgetMs}`);
        const text = await response.text();
        const elapsedMs = performance.now() - started;
        assert(
          ALLOWED.includes(response.status),
          `${branch} answering ${status} answered ${response.status}: ${text.slice(0, 300)}`,
        );
        assert(
          elapsedMs <= budgetMs + SLACK_MS,
          `${branch} answering ${status} took ${elapsedMs} ms`,
        );
      },
    ),
    { numRuns: 300 },
  );
});
