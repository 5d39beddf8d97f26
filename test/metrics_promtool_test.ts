/**
 * `promtool check metrics` (Prometheus's own linter, from Debian's `prometheus` package) accepts
 * the gateway's `/metrics` after real traffic: successes, a degraded answer, a 502, a 400, a 404.
 *
 * @module
 */
import assert from "node:assert/strict";
import { gatewayOverDownstream } from "./_gateway.ts";
import { Bulkheads, defaultRegistry, guardBranches } from "../src/gateway/mod.ts";
import { createApp } from "../routes/app.ts";
import { createDownstream } from "../sim/downstream.ts";
import { AdaptiveLimiter } from "../src/limits/mod.ts";

/** Runs `promtool check metrics` on `text`; its exit code and everything it printed. */
async function promtoolCheckMetrics(text: string): Promise<{ code: number; output: string }> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("promtool", {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(
        "Cannot check the metrics format as 'promtool' is not on PATH: install Debian's " +
          "prometheus package (apt-get install prometheus), as .ci/run does",
      );
    }
    throw error;
  }
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  return { code, output: decoder.decode(stdout) + decoder.decode(stderr) };
}

Deno.test("promtool check metrics accepts /metrics after traffic of every kind", async () => {
  const { app } = gatewayOverDownstream({ failBranches: ["reviews"] });
  const paths = [
    "/product/sku-1",
    "/product/sku-2?policy=collectAll",
    "/product/sku-3?policy=failFast",
    "/product/sku-4?policy=sometimes",
    "/no/such/route",
  ];
  const statuses = [];
  for (const path of paths) {
    const response = await app.request(path);
    await response.body?.cancel();
    statuses.push(response.status);
  }
  assert.deepEqual(statuses, [200, 200, 502, 400, 404]);

  const response = await app.request("/metrics");
  assert.equal(response.status, 200);
  const text = await response.text();
  assert.match(
    text,
    /^fanfare_degraded_responses_total\{route="\/product\/:id"\} 2$/m,
    "the traffic reached the metrics",
  );
  const { code, output } = await promtoolCheckMetrics(text);
  assert.equal(
    code,
    0,
    `promtool check metrics rejected /metrics:\n${output}\n--- input ---\n${text}`,
  );
  assert.equal(output.trim(), "", `promtool check metrics reported problems:\n${output}`);
});

Deno.test("promtool check metrics accepts /metrics with retries, declined retries and an open breaker", async () => {
  const { app } = gatewayOverDownstream({
    resilience: guardBranches(["reviews"], {
      retryBurst: 1,
      retryRatio: 0,
      breaker: { failures: { kind: "consecutive", threshold: 5 } },
    }),
    // reviews is down: a fast 503 to every call.
    wrap: (downstream) => ({
      fetch: (request) =>
        new URL(request.url).pathname.startsWith("/reviews/")
          ? new Response("down", { status: 503 })
          : downstream.fetch(request),
    }),
  });
  for (let i = 0; i < 6; i++) {
    const response = await app.request(`/product/sku-${i}`);
    await response.body?.cancel();
  }
  const text = await (await app.request("/metrics")).text();
  assert.match(text, /^fanfare_retries_sent_total\{branch="reviews"\} 1$/m);
  assert.match(text, /^fanfare_retries_declined_total\{branch="reviews",reason="budget"\} \d+$/m);
  assert.match(text, /^fanfare_circuit_state\{branch="reviews",state="open"\} 1$/m);
  assert.match(text, /^fanfare_circuit_transitions_total\{branch="reviews",to="open"\} 1$/m);
  assert.match(
    text,
    /^fanfare_branch_outcomes_total\{branch="reviews",outcome="circuit-open"\} 2$/m,
  );
  const { code, output } = await promtoolCheckMetrics(text);
  assert.equal(
    code,
    0,
    `promtool check metrics rejected /metrics:\n${output}\n--- input ---\n${text}`,
  );
  assert.equal(output.trim(), "", `promtool check metrics reported problems:\n${output}`);
});

Deno.test("promtool check metrics accepts /metrics with the admission limit and bulkheads after a 503", async () => {
  const app = createApp({
    registry: defaultRegistry(createDownstream({ tailEvery: 0 }), {
      query: () => ({ latencyMs: "0" }),
    }),
    admission: new AdaptiveLimiter({ initialLimit: 1, maxLimit: 1, maxQueue: 0 }),
    bulkheads: new Bulkheads(),
  });
  const held = await app.request("/product/sku-1");
  assert.equal(held.status, 200);
  await held.body?.cancel();
  const text = await (await app.request("/metrics")).text();
  assert.match(text, /^fanfare_admission_limit 1$/m);
  assert.match(text, /^fanfare_bulkhead_limit\{branch="reviews"\} 64$/m);
  const { code, output } = await promtoolCheckMetrics(text);
  assert.equal(
    code,
    0,
    `promtool check metrics rejected /metrics:\n${output}\n--- input ---\n${text}`,
  );
  assert.equal(output.trim(), "", `promtool check metrics reported problems:\n${output}`);
});
