/**
 * The simulated downstream: a real HTTP app that plays every branch of a fan-out, with latency
 * and failures drawn from a seeded {@linkcode LatencyModel} or forced per request.
 *
 * `GET /:branch/:id` sleeps, then answers 200 with the branch's JSON, 500 when the call fails,
 * or 504 when the caller's remaining budget (header `x-fanfare-budget-ms`) runs out first.
 * Query parameters, all optional:
 *
 * | parameter     | meaning                                                              |
 * |---------------|----------------------------------------------------------------------|
 * | `latencyMs`   | sleep exactly this long instead of the drawn latency                 |
 * | `fail`        | `1` fails the call whatever the draw says                            |
 * | `errorRate`   | error probability in [0, 1] for this call                            |
 * | `tail`        | `1` forces the injected tail (`tailMs`), `0` suppresses it           |
 * | `attempt`     | attempt counter; part of the draw key, so each retry or hedge redraws |
 * | `branchIndex` | the branch's position in the fan-out, for numeric `failBranches`     |
 *
 * `GET /stats` returns `{ branches: { [name]: { served, inFlight, aborted } } }`;
 * `GET /calls?id=` the last 256 calls received (for that product id), each with the W3C
 * `traceparent` and `tracestate` it carried; `POST /stats/reset` zeroes both. A client abort (the
 * request's signal) cancels the sleep.
 *
 * @module
 */
import { zValidator } from "@hono/zod-validator";
import { type Context, Hono } from "hono";
import type { UnofficialStatusCode } from "hono/utils/http-status";
import * as z from "zod/mini";
import { DownstreamStats } from "./downstream_stats.ts";
import { DownstreamCalls } from "./downstream_calls.ts";
import {
  createLatencyModel,
  type LatencyModel,
  type LatencyModelOptions,
} from "./latency_model.ts";
import { BUDGET_HEADER } from "../src/gateway/mod.ts";
import { branchPayload } from "./_branch_payload.ts";

/** `setTimeout` fires at once for delays above this (a signed 32-bit millisecond count). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Status for a client that went away first, after nginx's convention; nobody reads it. */
const CLIENT_CLOSED_REQUEST = 499 as UnofficialStatusCode;

const decimal = z.pipe(
  z.string().check(z.regex(/^\d+(\.\d+)?$/, "must be a non-negative decimal number")),
  z.transform(Number),
);
const integer = z.pipe(
  z.string().check(z.regex(/^\d+$/, "must be a non-negative integer")),
  z.transform(Number),
);
const flag = z.pipe(z.enum(["0", "1"]), z.transform((value) => value === "1"));

const querySchema = z.object({
  latencyMs: z.optional(z.pipe(decimal, z.number().check(z.maximum(MAX_TIMER_MS)))),
  fail: z.optional(flag),
  errorRate: z.optional(z.pipe(decimal, z.number().check(z.maximum(1)))),
  tail: z.optional(flag),
  attempt: z._default(integer, 0),
  branchIndex: z.optional(integer),
});

const headerSchema = z.object({
  [BUDGET_HEADER]: z.optional(decimal),
});

/**
 * Options of {@linkcode createDownstream}: the latency model's knobs plus the counters to use.
 *
 * @example
 * ```ts
 * import type { DownstreamOptions } from "./downstream.ts";
 *
 * const options: DownstreamOptions = { seed: 3, errorRate: 0.01, failBranches: ["reviews"] };
 * ```
 */
export interface DownstreamOptions extends LatencyModelOptions {
  /** Counters to update; pass your own to read them without going through `GET /stats`. */
  stats?: DownstreamStats;
  /** The log of calls received with their trace headers; pass your own to read it directly. */
  calls?: DownstreamCalls;
}

/**
 * Creates the simulated downstream as a Hono app. Serve it over HTTP, call `app.request()` in
 * tests, or hand `app` to the gateway in-process as a Workers-style fetcher (`app.fetch`).
 *
 * @example
 * ```ts
 * import { createDownstream } from "./downstream.ts";
 *
 * const app = createDownstream({ seed: 1, tailEvery: 0 });
 * const response = await app.request("/price/sku-42?latencyMs=0");
 * await response.json(); // { branch: "price", id: "sku-42", latencyMs: 0, amountCents: ..., ... }
 * ```
 */
export function createDownstream(
  { stats = new DownstreamStats(), calls = new DownstreamCalls(), ...modelOptions }:
    DownstreamOptions = {},
) {
  const draw: LatencyModel = createLatencyModel(modelOptions);

  return new Hono()
    .get("/stats", (c) => c.json({ branches: stats.snapshot() }))
    .get("/calls", (c) => c.json({ calls: calls.snapshot({ id: c.req.query("id") }) }))
    .post("/stats/reset", (c) => {
      stats.reset();
      calls.reset();
      return c.json({ branches: stats.snapshot() });
    })
    .get(
      "/:branch/:id",
      zValidator("query", querySchema, reportInvalid),
      zValidator("header", headerSchema, reportInvalid),
      async function playBranch(c) {
        const { branch, id } = c.req.param();
        const query = c.req.valid("query");
        const budgetMs = c.req.valid("header")[BUDGET_HEADER];
        const tracestate = c.req.header("tracestate");
        calls.record({
          branch,
          id,
          attempt: query.attempt,
          traceparent: c.req.header("traceparent") ?? null,
          ...(tracestate === undefined ? {} : { tracestate }),
        });
        const drawn = draw({
          branch,
          key: `${id}#${query.attempt}`,
          index: query.branchIndex,
          errorRate: query.errorRate,
          tail: query.tail,
        });
        const latencyMs = query.latencyMs ?? drawn.latencyMs;
        const failure = query.fail ? "forced" : drawn.failure;
        const overBudget = budgetMs !== undefined && budgetMs < latencyMs;

        // sleep() throws before arming anything when the delay is out of range, so start
        // counting only once it is armed.
        const sleeping = sleep(overBudget ? budgetMs : latencyMs, c.req.raw.signal);
        stats.start(branch);
        const completed = await sleeping;
        stats.finish(branch, completed ? "served" : "aborted");

        if (!completed) return c.json({ error: "client closed request" }, CLIENT_CLOSED_REQUEST);
        if (overBudget) {
          return c.json({ error: "budget exhausted", branch, id, budgetMs, latencyMs }, 504);
        }
        if (failure !== undefined) {
          return c.json({ error: "downstream failed", branch, id, failure, latencyMs }, 500);
        }
        return c.json({ branch, id, latencyMs, ...branchPayload(branch, id) });
      },
    );
}

function reportInvalid(
  result: { success: boolean; error?: z.core.$ZodError; target: string },
  c: Context,
): Response | undefined {
  if (result.success || result.error === undefined) return undefined;
  const issues = result.error.issues.map((issue) => ({
    field: issue.path.join("."),
    message: issue.message,
  }));
  return c.json({ error: `invalid ${result.target}`, issues }, 400);
}

/**
 * Resolves `true` after `ms`, or `false` as soon as `signal` aborts; either way the timer and the
 * listener are gone once it settles.
 */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (ms > MAX_TIMER_MS) {
    throw new RangeError(
      `Cannot sleep as 'ms' must be at most ${MAX_TIMER_MS}: current value is ${ms}`,
    );
  }
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const settle = (completed: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      resolve(completed);
    };
    const onAbort = () => settle(false);
    const timer = setTimeout(settle, ms, true);
    signal.addEventListener("abort", onAbort);
  });
}
