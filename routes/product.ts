/**
 * The edge gateway's product route: `GET /product/:id` scatters to every branch of a registry
 * and joins what came back within the request's budget.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import * as z from "zod/mini";
import {
  type BranchRegistry,
  BUDGET_HEADER,
  createGatewayMetrics,
  type GatewayMetrics,
  type GatherReport,
  hedgeMetrics,
  scatterGather,
  WORKERS_CONNECTION_LIMIT,
} from "../src/gateway/mod.ts";
import { downstreamFaults, faultFields, rejectUnknownFaults } from "./faults.ts";
import { FAILURE_POLICIES, type FailurePolicy } from "../src/executor/mod.ts";
import type { SpareCapacity } from "../src/hedging/mod.ts";
import type { Limiter } from "../src/limits/mod.ts";
import { answerRejectedGather, collectedErrors, failureStatus } from "./product_status.ts";
import { defaultTracer, type RequestTrace } from "../src/tracing/mod.ts";
import type { Tracer } from "@opentelemetry/api";
import { traceRequests } from "./tracing.ts";

/** Smallest and largest `budget` a caller may ask for, in ms. */
export const BUDGET_RANGE_MS = Object.freeze({ min: 10, max: 10_000 });

/** Most fields a 400 names; the rest are only counted, so that the answer stays small. */
export const MAX_REPORTED_FIELDS = 10;
/** Longest field name a 400 repeats back, in characters; a longer one is cut. */
const MAX_FIELD_NAME = 64;

/** The route label of the product route in metrics. */
const PRODUCT_ROUTE = "/product/:id";

/**
 * Options of {@linkcode createGateway}.
 *
 * @example
 * ```ts
 * import { createDownstream } from "../sim/downstream.ts";
 * import { defaultRegistry } from "../src/gateway/branch_registry.ts";
 * import type { GatewayOptions } from "./product.ts";
 *
 * const options: GatewayOptions = { registry: defaultRegistry(createDownstream()), limit: 4 };
 * ```
 */
export interface GatewayOptions {
  /** The branches of a product. */
  registry: BranchRegistry;
  /** Branches in flight per request; {@linkcode WORKERS_CONNECTION_LIMIT} (6) by default. */
  limit?: number;
  /** Budget in ms when the query gives none; 1000 by default. */
  defaultBudgetMs?: number;
  /** Where to record metrics; a fresh set by default (serve it with `createMetricsRoute`). */
  metrics?: GatewayMetrics;
  /**
   * The global limiter's spare capacity, which hedged branches' hedges must find free. By
   * default the `limiter` itself when it can grant at once (`LocalLimiter.tryAcquire`).
   */
  spare?: SpareCapacity;
  /**
   * The global ceiling each branch takes a permit from before calling its downstream; none by
   * default. A full admission queue answers 503 with `Retry-After`.
   */
  limiter?: Limiter;
  /**
   * Longest an optional branch waits for a permit of `limiter` before it is skipped, in ms;
   * `OPTIONAL_WAIT_MS` (10) by default, `Infinity` to wait until its deadline (see
   * `GatherOptions.optionalWaitMs`).
   */
  optionalWaitMs?: number;
  /**
   * Traces each product request (a server span, one span per branch and per attempt, trace
   * headers to every downstream, `traceresponse` in the answer); by default fanfare's tracer of
   * the globally registered OpenTelemetry provider, which records nothing until one is. `null`
   * turns tracing off altogether: no spans, no trace headers to the downstreams (which then
   * cannot learn the caller's trace id) and no `traceresponse`.
   */
  tracer?: Tracer | null;
}

/**
 * A 400 body: which fields were wrong and why.
 *
 * @example
 * ```ts
 * import type { InvalidRequestBody } from "./product.ts";
 * const body: InvalidRequestBody = {
 *   error: "invalid request",
 *   fields: [{ field: "policy", message: "Invalid option: expected one of ..." }],
 * };
 * ```
 */
export interface InvalidRequestBody {
  error: "invalid request";
  /** At most {@linkcode MAX_REPORTED_FIELDS}, in the order found. */
  fields: { field: string; message: string }[];
  /** Bad fields found beyond those named; absent when every one is named. */
  omitted?: number;
}

/**
 * Creates the gateway app: `GET /product/:id?policy=&budget=` plus JSON 404 and 500 answers.
 *
 * - Query `policy`: `failFast`, `collectAll` or `bestEffort` (default).
 * - Query `budget`: whole ms in [10, 10000], default `defaultBudgetMs`; the caller's
 *   `x-fanfare-budget-ms` header, when present, caps it.
 * - `:id`: 1 to 64 of `A-Z a-z 0-9 _ -`.
 * - Query `fault.<branch>` (`fail`, `slow`, `slow:<ms>`) and `fault.errorRate`: a testing aid
 *   that forwards fault settings to the simulated downstream for this request only (see
 *   `routes/faults.ts`).
 *
 * Answers: 200 `{ id, policy, product, degraded, reasons, timings, budgetMs }` (each timing has
 * `startMs`, `endMs`, `deadlineMs` and `outcome`, in ms since the request arrived, and a hedged
 * branch's also `hedged`, `attempts` and, when ok, `winner`) when every
 * required branch answered (collectAll adds `errors`); otherwise the status says why (see
 * `routes/product_status.ts`): 502 when a required branch's downstream failed (naming the
 * required branches, or failFast's first failed `branch`), 504 when the budget ran out (at once, with no downstream called, when it was
 * spent before any branch could start), 503
 * with `Retry-After` when the gateway's own ceiling kept a required branch from running, and
 * 499 with no body when the client went away; 503 `{ error: "overloaded" }` with
 * `Retry-After` when the `limiter`'s admission queue is full; 400 naming each bad field of the
 * first invalid part (query, then path, then headers).
 *
 * @example
 * ```ts
 * import { createDownstream } from "../sim/downstream.ts";
 * import { createGateway } from "./product.ts";
 * import { defaultRegistry } from "../src/gateway/branch_registry.ts";
 *
 * const gateway = createGateway({ registry: defaultRegistry(createDownstream()) });
 * const response = await gateway.request("/product/sku-42?policy=bestEffort&budget=500");
 * const { product, degraded } = await response.json();
 * ```
 */
export function createGateway(
  {
    registry,
    limit = WORKERS_CONNECTION_LIMIT,
    defaultBudgetMs = 1000,
    metrics = createGatewayMetrics(),
    limiter,
    spare = limiterSpare(limiter),
    optionalWaitMs,
    tracer = defaultTracer(),
  }: GatewayOptions,
): Hono<{ Variables: { receivedAt: number } }> {
  if (
    !Number.isInteger(defaultBudgetMs) || defaultBudgetMs < BUDGET_RANGE_MS.min ||
    defaultBudgetMs > BUDGET_RANGE_MS.max
  ) {
    throw new RangeError(
      `Cannot create the gateway as 'defaultBudgetMs' must be an integer in [${BUDGET_RANGE_MS.min}, ${BUDGET_RANGE_MS.max}]: current value is ${defaultBudgetMs}`,
    );
  }
  const branchNames = registry.map(({ name }) => name);
  // Registered up front so that /metrics shows hedging's counters before the first hedge.
  if (registry.some((spec) => spec.hedge !== undefined)) hedgeMetrics(metrics.registry);
  // Loose, so that an unknown fault.<branch> reaches the check that names it.
  const querySchema = z.looseObject({
    policy: z._default(z.enum(FAILURE_POLICIES), "bestEffort"),
    budget: z.optional(z.pipe(
      z.pipe(
        z.string().check(z.regex(/^\d+$/, "must be a whole number of ms")),
        z.transform(Number),
      ),
      z.number().check(z.minimum(BUDGET_RANGE_MS.min), z.maximum(BUDGET_RANGE_MS.max)),
    )),
    ...faultFields(branchNames),
  }).check(z.superRefine(rejectUnknownFaults(branchNames)));
  const paramSchema = z.object({
    id: z.string().check(z.regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1 to 64 of A-Z a-z 0-9 _ -")),
  });
  const headerSchema = z.object({
    [BUDGET_HEADER]: z.optional(z.pipe(
      z.string().check(z.regex(/^\d+(\.\d+)?$/, "must be a non-negative number of ms")),
      z.transform(Number),
    )),
  });

  // Most requests have no query and no budget header, and those parse the same every time:
  // once, here (frozen, since every such request shares them).
  const noQuery = querySchema.safeParse({});
  const noHeader = headerSchema.safeParse({});
  Object.freeze(noQuery.data);
  Object.freeze(noHeader.data);
  const traced = tracer === null ? undefined : traceRequests({ tracer, route: PRODUCT_ROUTE });
  // One handler, no middlewares: each Hono middleware hop costs a dispatch and a promise per
  // request, and a sub-app with an error handler of its own has every handler wrapped in one
  // more when an app mounts it. So this handler answers its own errors (a JSON 500).
  return new Hono<{ Variables: { receivedAt: number } }>()
    .get(PRODUCT_ROUTE, async function serveProduct(c) {
      // Hono answers HEAD by running GET and dropping the body: here that would be a whole
      // fan-out to send no product. The headers of a GET depend on that fan-out, so HEAD is
      // refused.
      if (c.req.method === "HEAD") {
        c.header("allow", "GET");
        return c.json({ error: "method not allowed", allow: "GET" }, 405);
      }
      // Set by the admission middleware when there is one: the budget counts its queue too.
      const receivedAt = (c.get("receivedAt") as number | undefined) ?? performance.now();
      c.set("receivedAt", receivedAt);
      const answer = async (trace: RequestTrace | undefined) => {
        try {
          return await joinProduct(c, receivedAt, trace);
        } catch (error) {
          return internalError(error as Error, c);
        }
      };
      let response: Response;
      try {
        response = traced === undefined ? await answer(undefined) : await traced(c, answer);
      } catch (error) {
        // The tracer itself failed: the answer is a 500 all the same.
        response = internalError(error as Error, c);
      }
      const route = PRODUCT_ROUTE;
      metrics.requests.inc({ route, status: String(response.status) });
      metrics.requestDuration.observe({ route }, (performance.now() - receivedAt) / 1000);
      return response;
    })
    .notFound(notFound);

  async function joinProduct(
    c: Context,
    receivedAt: number,
    trace: RequestTrace | undefined,
  ): Promise<Response> {
    // One synchronous parse of each part, in the order zValidator middlewares would run
    // them; three zValidators (each an async parse and a middleware hop) cost Bun about
    // 12 µs a request, a quarter of a hand-written handler's whole request.
    const rawQuery = queryOf(c);
    const parsedQuery = rawQuery === undefined ? noQuery : querySchema.safeParse(rawQuery);
    if (!parsedQuery.success) return reportInvalid(parsedQuery, c)!;
    const parsedParam = paramSchema.safeParse({ id: c.req.param("id") });
    if (!parsedParam.success) return reportInvalid(parsedParam, c)!;
    const rawBudget = c.req.header(BUDGET_HEADER);
    const parsedHeader = rawBudget === undefined
      ? noHeader
      : headerSchema.safeParse({ [BUDGET_HEADER]: rawBudget });
    if (!parsedHeader.success) return reportInvalid(parsedHeader, c)!;
    const { id } = parsedParam.data;
    const query = parsedQuery.data;
    const { policy, budget = defaultBudgetMs } = query;
    const callerBudgetMs = parsedHeader.data[BUDGET_HEADER];
    const budgetMs = Math.min(budget, callerBudgetMs ?? Infinity);
    const remainingMs = Math.max(0, budgetMs - (performance.now() - receivedAt));
    if (remainingMs < 1) {
      // Nothing can start (fanOut's least budget is 1 ms): say so, rather than blame branches.
      return c.json({ error: "budget exhausted", id, policy, budgetMs }, 504);
    }
    const signal = c.req.raw.signal;
    let gathered: GatherReport;
    try {
      gathered = await scatterGather(registry, id, {
        policy,
        budgetMs: remainingMs,
        limit,
        signal,
        origin: receivedAt,
        metrics,
        query: downstreamFaults(query),
        spare,
        limiter,
        optionalWaitMs,
        trace,
      });
    } catch (error) {
      return answerRejectedGather(error, c, signal);
    }
    const [status, body] = answer(id, policy, budgetMs, gathered);
    if (typeof body.retryAfterS === "number") c.header("retry-after", String(body.retryAfterS));
    if (status === 200 && (body.degraded as string[]).length > 0) {
      metrics.degraded.inc({ route: PRODUCT_ROUTE });
    }
    return c.json(body, status);
  }
}

/**
 * The query as zValidator hands it to its schema: one string per name, an array for a name
 * given more than once; `undefined` for a URL with no query at all.
 */
function queryOf(c: Context): Record<string, string | string[]> | undefined {
  if (!c.req.url.includes("?")) return undefined;
  const query: Record<string, string | string[]> = {};
  for (const [name, values] of Object.entries(c.req.queries())) {
    query[name] = values.length === 1 ? values[0] : values;
  }
  return query;
}

/** The status and JSON body for a gathered product. */
function answer(
  id: string,
  policy: FailurePolicy,
  budgetMs: number,
  { data, branches, failedRequired, decidedBy }: GatherReport,
): [ContentfulStatusCode, Record<string, unknown>] {
  const reasons: Record<string, string> = {};
  const timings: Record<string, Timing> = {};
  for (const name in branches) {
    const { outcome, reason, startMs, endMs, deadlineMs, hedged, attempts, winner } =
      branches[name];
    if (reason !== undefined) reasons[name] = reason;
    const timing: Timing = {
      startMs: round(startMs),
      endMs: round(endMs),
      deadlineMs: round(deadlineMs),
      outcome,
    };
    if (attempts !== undefined) {
      timing.hedged = hedged;
      timing.attempts = attempts;
      timing.winner = winner;
    }
    timings[name] = timing;
  }
  const degraded = Object.keys(reasons);
  const failure = failureStatus({ data, branches, failedRequired, decidedBy }, { budgetMs });
  if (failure !== undefined) {
    const { status, error, retryAfterS } = failure;
    const body: Record<string, unknown> = { error };
    if (decidedBy?.kind === "branch") body.branch = decidedBy.branch;
    else if (decidedBy === undefined) body.branches = failedRequired;
    if (retryAfterS !== undefined) body.retryAfterS = retryAfterS;
    body.id = id;
    body.policy = policy;
    body.reasons = reasons;
    body.timings = timings;
    body.budgetMs = budgetMs;
    return [status, body];
  }
  const body: Record<string, unknown> = {
    id,
    policy,
    product: data,
    degraded,
    reasons,
    timings,
    budgetMs,
  };
  if (policy === "collectAll") body.errors = collectedErrors(reasons);
  return [200, body];
}

/** One branch's entry of an answer's `timings`. */
interface Timing {
  startMs?: number;
  endMs?: number;
  deadlineMs?: number;
  outcome: string;
  hedged?: boolean;
  attempts?: number;
  winner?: number;
}

function round(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : Math.round(ms * 1000) / 1000;
}

/**
 * The zod-validator hook of every gateway route: a 400 naming each bad field.
 *
 * @example
 * ```ts
 * import { zValidator } from "@hono/zod-validator";
 * import * as z from "zod/mini";
 * import { reportInvalid } from "./product.ts";
 *
 * const validateQuery = zValidator("query", z.object({ n: z.string() }), reportInvalid);
 * ```
 */
export function reportInvalid(
  result: { success: boolean; error?: z.core.$ZodError },
  c: Context,
): Response | undefined {
  if (result.success || result.error === undefined) return undefined;
  const fields = result.error.issues.map((issue) => ({
    field: issue.path.map(String).join("."),
    message: issue.message,
  }));
  return invalidRequest(c, fields);
}

/**
 * A 400 whose JSON body names each bad field: the one shape of every "invalid request" answer.
 * Bounded whatever the request: the first {@linkcode MAX_REPORTED_FIELDS} fields, each name cut
 * to 64 characters, and a count of the rest in `omitted`.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { invalidRequest } from "./product.ts";
 *
 * new Hono().get("/", (c) => invalidRequest(c, [{ field: "n", message: "must be a number" }]));
 * ```
 */
export function invalidRequest(c: Context, fields: InvalidRequestBody["fields"]): Response {
  const body: InvalidRequestBody = {
    error: "invalid request",
    fields: fields.slice(0, MAX_REPORTED_FIELDS).map(({ field, message }) => ({
      field: field.length > MAX_FIELD_NAME ? `${field.slice(0, MAX_FIELD_NAME)}…` : field,
      message,
    })),
  };
  if (fields.length > MAX_REPORTED_FIELDS) body.omitted = fields.length - MAX_REPORTED_FIELDS;
  return c.json(body, 400);
}

/**
 * JSON 404 for any unknown route.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { notFound } from "./product.ts";
 * const app = new Hono().notFound(notFound);
 * ```
 */
export function notFound(c: Context): Response {
  return c.json({ error: "not found", method: c.req.method, path: c.req.path }, 404);
}

/**
 * JSON 500 for anything thrown; the message stays in the log, not in the answer. An
 * `HTTPException` keeps its status: a 400 (Hono's validators throw one for a body that is not
 * JSON) names the body as invalid, any other answers `{ error: message }`.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { internalError } from "./product.ts";
 * const app = new Hono().onError(internalError);
 * ```
 */
export function internalError(error: Error, c: Context): Response {
  if (error instanceof HTTPException && error.status < 500) {
    if (error.status === 400) {
      return invalidRequest(c, [{ field: "body", message: `must be valid: ${error.message}` }]);
    }
    return c.json({ error: error.message || "request refused" }, error.status);
  }
  console.error(error);
  return c.json({ error: "internal error" }, 500);
}

/** The limiter as spare capacity for hedges, when it can grant a permit without waiting. */
function limiterSpare(limiter: unknown): SpareCapacity | undefined {
  const candidate = limiter as Partial<SpareCapacity> | undefined;
  return typeof candidate?.tryAcquire === "function" ? candidate as SpareCapacity : undefined;
}
