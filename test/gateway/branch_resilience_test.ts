import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { defineRegistry } from "../../src/gateway/branch_registry.ts";
import type { BranchRetry } from "../../src/gateway/branch_resilience.ts";
import type { Fetcher } from "../../src/gateway/fetcher.ts";
import { scatterGather } from "../../src/gateway/scatter_gather.ts";
import { guardBranches } from "../../src/gateway/branch_resilience.ts";
import { gatewayOverDownstream } from "../_gateway.ts";
import { LocalLimiter } from "../../src/limits/mod.ts";
import { CircuitBreaker, RetryBudget } from "../../src/resilience/mod.ts";

/** A downstream that answers each call with the next scripted status (200 after the script). */
function scripted(statuses: number[], headers: Record<string, string> = {}) {
  const urls: string[] = [];
  const fetcher: Fetcher = {
    fetch(request) {
      urls.push(request.url);
      const status = statuses.shift() ?? 200;
      return status === 200
        ? Response.json({ ok: true })
        : new Response("unavailable", { status, headers });
    },
  };
  return { fetcher, urls };
}

function registryOf(
  fetcher: Fetcher,
  extra: { retry?: BranchRetry; breaker?: CircuitBreaker; idempotent?: boolean } = {},
) {
  return defineRegistry([{
    name: "reviews",
    fetcher,
    path: (id) => `/reviews/${id}`,
    required: false,
    idempotent: extra.idempotent ?? true,
    timeoutMs: 1_000,
    ...extra,
  }]);
}

const quickRetry: BranchRetry = { maxAttempts: 3, backoff: () => 0 };

Deno.test("a branch whose downstream answers 503 is retried within its deadline and answers", async () => {
  const { fetcher, urls } = scripted([503, 503]);
  const report = await scatterGather(registryOf(fetcher, { retry: quickRetry }), "7", {
    budgetMs: 1_000,
  });
  assertEquals(report.branches.reviews.outcome, "ok");
  assertEquals(
    [
      report.branches.reviews.attempts,
      report.branches.reviews.retries,
      report.branches.reviews.winner,
    ],
    [3, 2, 3],
  );
  assertEquals(urls.map((u) => new URL(u).searchParams.get("attempt")), [null, "1", "2"]);
});

Deno.test("a 500 or a 404 is not retried: only a 502, 503, 504 or a network error may be cured by one", async () => {
  for (const status of [500, 404]) {
    const { fetcher, urls } = scripted([status]);
    const report = await scatterGather(registryOf(fetcher, { retry: quickRetry }), "7", {
      budgetMs: 1_000,
    });
    assertEquals([report.branches.reviews.outcome, urls.length], ["error", 1], String(status));
  }
});

Deno.test("a Retry-After longer than the branch's deadline stops the retries at once", async () => {
  const { fetcher, urls } = scripted([503], { "retry-after": "5" });
  const report = await scatterGather(registryOf(fetcher, { retry: quickRetry }), "7", {
    budgetMs: 1_000,
  });
  assertEquals([report.branches.reviews.outcome, urls.length], ["error", 1]);
});

Deno.test("a dry retry budget declines the retry", async () => {
  const { fetcher, urls } = scripted([503, 503, 503]);
  const retry = { ...quickRetry, budget: new RetryBudget({ ratio: 0, burst: 1 }) };
  await scatterGather(registryOf(fetcher, { retry }), "7", { budgetMs: 1_000 });
  assertEquals(urls.length, 2, "one attempt and the one retry the bucket held");
  await scatterGather(registryOf(fetcher, { retry }), "8", { budgetMs: 1_000 });
  assertEquals(urls.length, 3, "no token left: no retry");
});

Deno.test("retries and hedges share the branch's maxAttempts", async () => {
  const urls: string[] = [];
  let hedgeArrived!: () => void;
  const arrived = new Promise<void>((resolve) => hedgeArrived = resolve);
  const registry = defineRegistry([{
    name: "reviews",
    fetcher: {
      // The primary fails only once the hedge was sent; the hedge fails at once.
      fetch: async (request) => {
        urls.push(request.url);
        if (urls.length === 1) await arrived;
        else hedgeArrived();
        return new Response("unavailable", { status: 503 });
      },
    },
    path: (id) => `/reviews/${id}`,
    required: false,
    idempotent: true,
    timeoutMs: 1_000,
    hedge: { delay: 0, maxAttempts: 2 },
    retry: { maxAttempts: 2, backoff: () => 0 },
  }]);
  const report = await scatterGather(registry, "7", { budgetMs: 1_000 });
  assertEquals(urls.length, 2, "the hedge took the second attempt: nothing left to retry");
  assertEquals(
    [
      report.branches.reviews.outcome,
      report.branches.reviews.hedged,
      report.branches.reviews.attempts,
    ],
    ["error", true, 2],
  );
});

Deno.test("an open breaker fails the branch as circuit-open with no permit taken and no request sent", async () => {
  let now = 0;
  const breaker = new CircuitBreaker({
    failures: { kind: "consecutive", threshold: 2 },
    openMs: 1_000,
    clock: () => now,
  });
  const { fetcher, urls } = scripted([503, 503]);
  const limiter = new LocalLimiter({ capacity: 4 });
  let acquired = 0;
  const counting = {
    acquire: (weight?: number, options?: Parameters<LocalLimiter["acquire"]>[1]) => {
      acquired++;
      return limiter.acquire(weight, options);
    },
  };
  const registry = registryOf(fetcher, { breaker });
  await scatterGather(registry, "1", { budgetMs: 1_000, limiter: counting });
  await scatterGather(registry, "2", { budgetMs: 1_000, limiter: counting });
  assertEquals(breaker.state, "open");
  const report = await scatterGather(registry, "3", { budgetMs: 1_000, limiter: counting });
  assertEquals(report.branches.reviews.outcome, "circuit-open");
  assertEquals(report.branches.reviews.reason, "circuit-open");
  assertEquals(
    [urls.length, acquired],
    [2, 2],
    "the third request took no permit and sent nothing",
  );
  now = 1_000;
  const probe = await scatterGather(registry, "4", { budgetMs: 1_000, limiter: counting });
  assertEquals([probe.branches.reviews.outcome, breaker.state], ["ok", "closed"]);
});

Deno.test("the request's own abort says nothing about the downstream to its breaker", async () => {
  const breaker = new CircuitBreaker({ failures: { kind: "consecutive", threshold: 1 } });
  const registry = registryOf({
    fetch: (request) =>
      new Promise((_, reject) =>
        request.signal.addEventListener("abort", () => reject(request.signal.reason))
      ),
  }, { breaker });
  const controller = new AbortController();
  const gathering = scatterGather(registry, "1", { budgetMs: 1_000, signal: controller.signal });
  controller.abort(new Error("client went away"));
  await gathering.catch(() => {});
  assertEquals(breaker.state, "closed");
  assert(breaker.tryEnter() !== undefined);
});

Deno.test("a registry refuses retries on a branch that is not idempotent", () => {
  assertThrows(
    () => registryOf(scripted([]).fetcher, { retry: quickRetry, idempotent: false }),
    /'retry' but a retry repeats the call, which needs 'idempotent: true'/,
  );
});

Deno.test("the live stats show retries sent and each breaker's state", async () => {
  const { app } = gatewayOverDownstream({
    resilience: guardBranches(["reviews", "shipping"], {
      retryBurst: 1,
      retryRatio: 0,
      breaker: { failures: { kind: "consecutive", threshold: 5 } },
    }),
    wrap: (downstream) => ({
      fetch: (request) =>
        new URL(request.url).pathname.startsWith("/reviews/")
          ? new Response("down", { status: 503 })
          : downstream.fetch(request),
    }),
  });
  for (let i = 0; i < 5; i++) await (await app.request(`/product/sku-${i}`)).body?.cancel();
  const stats = await (await app.request("/api/stats")).json();
  assertEquals(stats.circuits, { reviews: "open", shipping: "closed" });
  assertEquals(stats.retries, { sent: 1 });
});
