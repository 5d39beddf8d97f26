/**
 * `aggregate(spec)`: a Hono handler for any declared aggregation endpoint — validate the
 * request, run the endpoint's call graph in the request's budget, answer the shaped data with
 * `x-fanfare-complete` and the degraded branches, or a status naming what failed.
 *
 * @module
 */
import type { Context, Handler } from "hono";
import { Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import * as z from "zod/mini";
import {
  type AggregateReport,
  compileEndpoint,
  type Endpoint,
  type EndpointSpec,
  runEndpoint,
} from "../src/aggregate/mod.ts";
import {
  BUDGET_HEADER,
  createGatewayMetrics,
  type Fetcher,
  type GatewayMetrics,
} from "../src/gateway/mod.ts";
import type { SpareCapacity } from "../src/hedging/mod.ts";
import type { Limiter } from "../src/limits/mod.ts";
import { FAILURE_POLICIES, type FailurePolicy } from "../src/executor/mod.ts";
import { BUDGET_RANGE_MS, internalError, invalidRequest, notFound } from "./product.ts";
import { answerRejectedGather, collectedErrors, failureCause } from "./product_status.ts";
import { downstreamFaults, faultFields, rejectUnknownFaults } from "./faults.ts";

/** Header saying whether every branch answered: `true` or `false`. */
export const COMPLETE_HEADER = "x-fanfare-complete";

/** Longest query or header value a template may take, in characters. */
const MAX_VALUE_LENGTH = 256;
const PARAM = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Options of {@linkcode aggregate}.
 *
 * @example
 * ```ts
 * import { createDownstream } from "../sim/downstream.ts";
 * import type { AggregateOptions } from "./aggregate.ts";
 * const options: AggregateOptions = { downstreams: { default: createDownstream() } };
 * ```
 */
export interface AggregateOptions {
  /** Fetchers by downstream name, for a spec that is not compiled yet. */
  downstreams?: Readonly<Record<string, Fetcher>>;
  /** Where to record metrics; a fresh set by default. */
  metrics?: GatewayMetrics;
  /** The global ceiling: a permit per downstream call. */
  limiter?: Limiter;
  /** The limiter's spare capacity for hedges; by default the limiter when it can grant at once. */
  spare?: SpareCapacity;
  /**
   * Longest an optional branch waits for a permit of `limiter` before it is skipped, in ms;
   * `OPTIONAL_WAIT_MS` (10) by default, `Infinity` to wait until its deadline (see
   * `GatherOptions.optionalWaitMs`).
   */
  optionalWaitMs?: number;
}

const budgetQuery = z.optional(z.pipe(
  z.pipe(
    z.string().check(z.regex(/^\d+$/, "must be a whole number of ms")),
    z.transform(Number),
  ),
  z.number().check(z.minimum(BUDGET_RANGE_MS.min), z.maximum(BUDGET_RANGE_MS.max)),
));
const policyQuery = z.optional(z.enum(FAILURE_POLICIES));
const budgetHeader = z.optional(z.pipe(
  z.string().check(z.regex(/^\d+(\.\d+)?$/, "must be a non-negative number of ms")),
  z.transform(Number),
));

/**
 * A handler for `spec`'s route (mount it there: `app.get(spec.route, aggregate(spec, …))`).
 *
 * Request: the route's parameters (each 1 to 64 of `A-Z a-z 0-9 _ -`), query `budget` (whole ms
 * in [10, 10000], default the endpoint's `budgetMs`) capped by the caller's
 * `x-fanfare-budget-ms`, query `policy` (`bestEffort`, `failFast` or `collectAll`, default the
 * endpoint's `policy`), `fault.<branch>` and `fault.errorRate` (a testing aid: see
 * `routes/faults.ts`), and the query parameters and allowed headers its templates read (each
 * present, at most 256 characters). Bad input is a 400 naming each field.
 *
 * Answers: 200 `{ endpoint, policy, data, complete, degraded, reasons, timings, budgetMs }`
 * (collectAll adds `errors`, a `{ branch, reason }` for each degraded branch) with
 * `x-fanfare-complete: true|false` when every required branch answered (`timings` give each
 * branch's level, needs, and the need it waited on); when a required branch gave no answer, or
 * under failFast any branch, the status says why as for the product route — 502
 * `{ error: "required branch failed", branch }` (failFast: `"branch failed"`) naming the branch
 * that stopped the graph (and in `cause` the failed need behind it, when it was skipped for
 * one), 504 when the budget ran out, 503 when the ceiling gave no permit — with
 * `x-fanfare-complete: false`; 503 `overloaded` when the ceiling's admission queue is full; 499
 * with no body when the client went away.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { createDownstream } from "../sim/downstream.ts";
 * import { aggregate } from "./aggregate.ts";
 *
 * const spec = {
 *   name: "orders",
 *   route: "/orders/:id",
 *   branches: {
 *     order: { path: "/orders/{params.id}", required: true, timeoutMs: 300 },
 *     customer: { path: "/customers/{order.customerId}", needs: ["order"], timeoutMs: 300 },
 *   },
 * };
 * const app = new Hono().get(spec.route, aggregate(spec, {
 *   downstreams: { default: createDownstream() },
 * }));
 * const response = await app.request("/orders/o-1");
 * response.headers.get("x-fanfare-complete"); // "true"
 * ```
 */
export function aggregate(
  spec: Endpoint | EndpointSpec,
  {
    downstreams,
    metrics = createGatewayMetrics(),
    limiter,
    spare = limiterSpare(limiter),
    optionalWaitMs,
  }: AggregateOptions = {},
): Handler {
  const endpoint = "graph" in spec ? spec : compileEndpoint(spec, { downstreams });
  const params = [...endpoint.route.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]);
  const route = endpoint.route;
  const branchNames = endpoint.graph.nodes.map((node) => node.name);
  // Loose, so that an unknown fault.<branch> reaches the check that names it.
  const faultQuery = z.looseObject(faultFields(branchNames))
    .check(z.superRefine(rejectUnknownFaults(branchNames)));
  return async function aggregateEndpoint(c: Context): Promise<Response> {
    const receivedAt = (c.get("receivedAt") as number | undefined) ?? performance.now();
    let response: Response;
    try {
      response = await answerRequest(c, receivedAt);
    } catch (error) {
      response = internalError(error as Error, c);
    }
    metrics.requests.inc({ route, status: String(response.status) });
    metrics.requestDuration.observe({ route }, (performance.now() - receivedAt) / 1000);
    return response;
  };

  async function answerRequest(c: Context, receivedAt: number): Promise<Response> {
    if (c.req.method === "HEAD") {
      // As for the product route: the headers depend on a whole run of the graph.
      c.header("allow", "GET");
      return c.json({ error: "method not allowed", allow: "GET" }, 405);
    }
    const fields: { field: string; message: string }[] = [];
    const request = {
      params: {} as Record<string, string>,
      query: {} as Record<string, string>,
      headers: {} as Record<string, string>,
    };
    for (const name of params) {
      const value = c.req.param(name) ?? "";
      if (!PARAM.test(value)) {
        fields.push({ field: name, message: "must be 1 to 64 of A-Z a-z 0-9 _ -" });
      }
      request.params[name] = value;
    }
    const budget = budgetQuery.safeParse(c.req.query("budget"));
    if (!budget.success) fields.push({ field: "budget", message: budget.error.issues[0].message });
    const policyParsed = policyQuery.safeParse(c.req.query("policy"));
    if (!policyParsed.success) {
      fields.push({ field: "policy", message: policyParsed.error.issues[0].message });
    }
    let faults: ((branch: string) => Record<string, string>) | undefined;
    // Only a request that names a fault pays for reading them.
    if (c.req.url.includes("fault.")) {
      const parsed = faultQuery.safeParse(c.req.query());
      if (parsed.success) faults = downstreamFaults(parsed.data);
      else {
        for (const issue of parsed.error.issues) {
          fields.push({ field: String(issue.path[0]), message: issue.message });
        }
      }
    }
    for (const name of endpoint.query) {
      const value = c.req.query(name);
      if (value === undefined || value === "" || value.length > MAX_VALUE_LENGTH) {
        fields.push({
          field: name,
          message: `must be given, at most ${MAX_VALUE_LENGTH} characters`,
        });
      } else request.query[name] = value;
    }
    for (const name of endpoint.headers) {
      const value = c.req.header(name);
      if (value !== undefined && value.length <= MAX_VALUE_LENGTH) request.headers[name] = value;
    }
    const callerBudget = budgetHeader.safeParse(c.req.header(BUDGET_HEADER));
    if (!callerBudget.success) {
      fields.push({ field: BUDGET_HEADER, message: callerBudget.error.issues[0].message });
    }
    if (fields.length > 0) return invalidRequest(c, fields);
    const policy = policyParsed.data ?? endpoint.policy;
    const budgetMs = Math.min(budget.data ?? endpoint.budgetMs, callerBudget.data ?? Infinity);
    const remainingMs = Math.max(0, budgetMs - (performance.now() - receivedAt));
    c.header(COMPLETE_HEADER, "false");
    if (remainingMs < 1) {
      return c.json({ error: "budget exhausted", endpoint: endpoint.name, budgetMs }, 504);
    }
    const signal = c.req.raw.signal;
    let report: AggregateReport;
    try {
      report = await runEndpoint(endpoint, request, {
        // Counted from the arrival, as the graph's deadlines are.
        budgetMs,
        signal,
        origin: receivedAt,
        metrics,
        limiter,
        spare,
        optionalWaitMs,
        policy,
        query: faults,
      });
    } catch (error) {
      return answerRejectedGather(error, c, signal);
    }
    const [status, body] = answer(endpoint, policy, budgetMs, report);
    if (typeof body.retryAfterS === "number") c.header("retry-after", String(body.retryAfterS));
    c.header(COMPLETE_HEADER, String(report.complete));
    if (status === 200 && !report.complete) metrics.degraded.inc({ route });
    return c.json(body, status);
  }
}

/** The status and JSON body of a run. */
function answer(
  endpoint: Endpoint,
  policy: FailurePolicy,
  budgetMs: number,
  { data, branches, failedRequired, stoppedBy, complete }: AggregateReport,
): [ContentfulStatusCode, Record<string, unknown>] {
  const reasons: Record<string, string> = {};
  const timings: Record<string, Record<string, unknown>> = {};
  for (const name in branches) {
    const { reason, ...timing } = branches[name];
    if (reason !== undefined) reasons[name] = reason;
    timings[name] = {
      ...timing,
      startMs: round(timing.startMs),
      endMs: round(timing.endMs),
      deadlineMs: round(timing.deadlineMs),
    };
  }
  const degraded = Object.keys(reasons);
  // Under failFast any branch's failure stopped the graph and fails the answer.
  const failedFast = policy === "failFast" && stoppedBy !== undefined;
  if (failedRequired.length === 0 && !failedFast) {
    const body: Record<string, unknown> = {
      endpoint: endpoint.name,
      policy,
      data,
      complete,
      degraded,
      reasons,
      timings,
      budgetMs,
    };
    if (policy === "collectAll") body.errors = collectedErrors(reasons);
    return [200, body];
  }
  const branch = stoppedBy ?? failedRequired[0];
  // A branch skipped for a need's sake failed for that need's reason: follow the chain.
  let cause = branch;
  for (let i = 0; i < 64 && branches[cause].reason?.startsWith('skipped: need "'); i++) {
    cause = branches[cause].waitedOn!;
  }
  const status = statusOf(causeOf(endpoint, cause, branches[cause], budgetMs));
  // As the product route words failFast's deciding failure.
  const error = failedFast && status.status === 502 ? "branch failed" : status.error;
  const body: Record<string, unknown> = { error, branch };
  if (cause !== branch) body.cause = cause;
  if (status.retryAfterS !== undefined) body.retryAfterS = status.retryAfterS;
  Object.assign(body, { endpoint: endpoint.name, policy, degraded, reasons, timings, budgetMs });
  return [status.status, body];
}

/**
 * As the product route's `failureCause`, but a branch cut before its own timeout was cut by the
 * budget as the graph split it (its deadline kept time back for the required branches after it):
 * the budget, not its downstream, ran out.
 */
function causeOf(
  endpoint: Endpoint,
  name: string,
  branch: AggregateReport["branches"][string],
  budgetMs: number,
): ReturnType<typeof failureCause> {
  const cause = failureCause(branch, budgetMs);
  if (cause !== "downstream" || branch.outcome !== "timeout") return cause;
  const timeoutMs = endpoint.graph.nodes.find((node) => node.name === name)?.timeoutMs ?? Infinity;
  const allowedMs = (branch.deadlineMs ?? Infinity) - (branch.startMs ?? 0);
  return allowedMs < timeoutMs - 1 ? "budget" : cause;
}

function statusOf(
  cause: ReturnType<typeof failureCause>,
): { status: 502 | 503 | 504; error: string; retryAfterS?: number } {
  switch (cause) {
    case "downstream":
      return { status: 502, error: "required branch failed" };
    case "budget":
      return { status: 504, error: "budget exhausted" };
    case "gateway":
      return { status: 503, error: "branch cut by the gateway", retryAfterS: 1 };
    default:
      return { status: 503, error: "no capacity", retryAfterS: 1 };
  }
}

function round(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : Math.round(ms * 1000) / 1000;
}

/**
 * Options of {@linkcode createAggregateRoutes}: those of {@linkcode aggregate}.
 *
 * @example
 * ```ts
 * import type { AggregateRoutesOptions } from "./aggregate.ts";
 * const options: AggregateRoutesOptions = { downstreams: {} };
 * ```
 */
export type AggregateRoutesOptions = AggregateOptions;

/**
 * Every endpoint of a config mounted at its route (GET, and HEAD refused), with JSON 404 and
 * 500 (each endpoint answers its own errors): mount it into an app with `.route("/", …)`.
 *
 * @example
 * ```ts
 * import { createDownstream } from "../sim/downstream.ts";
 * import { parseConfig } from "../src/aggregate/mod.ts";
 * import { createAggregateRoutes } from "./aggregate.ts";
 * import config from "../fanfare.config.json" with { type: "json" };
 *
 * const routes = createAggregateRoutes(parseConfig(config).endpoints, {
 *   downstreams: { default: createDownstream() },
 * });
 * ```
 */
export function createAggregateRoutes(
  endpoints: readonly (Endpoint | EndpointSpec)[],
  options: AggregateRoutesOptions = {},
): Hono {
  const app = new Hono();
  for (const spec of endpoints) {
    const handler = aggregate(spec, options);
    app.on(["GET", "HEAD"], spec.route, handler);
  }
  // No error handler of its own (each endpoint answers its errors as a JSON 500): Hono wraps
  // every handler of a mounted app that has one in an extra dispatch per request.
  return app.notFound(notFound);
}

function limiterSpare(limiter: unknown): SpareCapacity | undefined {
  const candidate = limiter as Partial<SpareCapacity> | undefined;
  return typeof candidate?.tryAcquire === "function" ? candidate as SpareCapacity : undefined;
}
