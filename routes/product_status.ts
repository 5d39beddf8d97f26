/**
 * The status of a product answer that is not a 200: what happened, said by the status code.
 *
 * | what happened                                                             | status | body                |
 * | ------------------------------------------------------------------------- | ------ | ------------------- |
 * | the client went away first                                                | 499    | none (logged)       |
 * | the gateway's own ceiling or bulkhead kept a required branch from running | 503    | JSON, `Retry-After` |
 * | the gateway cut a required branch itself, the client still waiting        | 503    | JSON, `Retry-After` |
 * | a required branch's downstream failed or did not answer in its time       | 502    | JSON                |
 * | the request's budget ran out before a required branch answered            | 504    | JSON                |
 *
 * When required branches failed for different reasons, a downstream failure decides (502), then
 * the budget (504), then the gateway's own reasons (503).
 *
 * @module
 */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { BranchReport, GatherReport } from "../src/gateway/mod.ts";
import { isAdmissionRejectedError } from "../src/limits/mod.ts";

/** Status for a client that went away first, after nginx's convention; nobody reads it. */
export const CLIENT_CLOSED_REQUEST = 499;

/** Reason prefix of a branch skipped because no permit of the ceiling came before its deadline. */
const NO_PERMIT = "skipped: no permit";

/** Reason prefix of a branch whose bulkhead turned the call away (`BulkheadRejectedError`). */
const BULKHEAD_FULL = "error: Bulkhead of ";

/**
 * Why a branch gave no data, as far as the status is concerned.
 *
 * @example
 * ```ts
 * import type { FailureCause } from "./product_status.ts";
 * const cause: FailureCause = "ceiling";
 * ```
 */
export type FailureCause = "ceiling" | "gateway" | "downstream" | "budget";

/**
 * A failed answer's status and the words that go with it.
 *
 * @example
 * ```ts
 * import type { FailureStatus } from "./product_status.ts";
 * const status: FailureStatus = { status: 503, error: "no capacity", retryAfterS: 1 };
 * ```
 */
export interface FailureStatus {
  status: 502 | 503 | 504;
  /** The body's `error`. */
  error: string;
  /** 503 only: seconds for `Retry-After`. */
  retryAfterS?: number;
}

/** The `[n] ` a forEach branch's reason starts with: the index of its call that failed. */
const ELEMENT_INDEX = /^\[\d+\] /;

/**
 * Why `branch` gave no data: skipped for want of a permit, or turned away by its downstream's
 * bulkhead → `ceiling` (the gateway's own capacity said no, not the downstream); never started
 * for lack of budget, or cut when the request's budget ended (its deadline was the budget's
 * end) → `budget`; `aborted` otherwise (the gateway cut it while the client still waited, see the
 * README's known gaps) → `gateway`; anything else (an error, a non-2xx, its own timeout) →
 * `downstream`.
 *
 * @example
 * ```ts
 * import { failureCause } from "./product_status.ts";
 * failureCause({ outcome: "timeout", reason: "timeout", deadlineMs: 300 }, 1000); // "downstream"
 * failureCause({ outcome: "error", reason: "[1] error: Bulkhead of 'o.items' is full" }, 1000); // "ceiling"
 * ```
 */
export function failureCause(branch: BranchReport, budgetMs: number): FailureCause {
  // A forEach branch's reason is its failed call's, after the call's index: `[1] error: …`.
  const reason = branch.reason?.replace(ELEMENT_INDEX, "");
  if (reason?.startsWith(NO_PERMIT) || reason?.startsWith(BULKHEAD_FULL)) return "ceiling";
  if (branch.outcome === "skipped") return "budget";
  const cutByBudget = branch.deadlineMs !== undefined && branch.deadlineMs >= budgetMs - 1;
  if ((branch.outcome === "timeout" || branch.outcome === "aborted") && cutByBudget) {
    return "budget";
  }
  if (branch.outcome === "aborted") return "gateway";
  return "downstream";
}

/**
 * The status of a gathered product that cannot be a 200, or `undefined` when it can: failFast's
 * deciding failure or budget, else the required branches that gave no data (see the module's
 * table).
 *
 * @example
 * ```ts
 * import { failureStatus } from "./product_status.ts";
 * const status = failureStatus({
 *   data: {},
 *   branches: { price: { outcome: "skipped", reason: "skipped: no permit before the branch's deadline" } },
 *   failedRequired: ["price"],
 * }, { budgetMs: 1000 });
 * status?.status; // 503
 * ```
 */
export function failureStatus(
  { branches, failedRequired, decidedBy }: GatherReport,
  { budgetMs, retryAfterS = 1 }: { budgetMs: number; retryAfterS?: number },
): FailureStatus | undefined {
  if (decidedBy?.kind === "budget") return { status: 504, error: "budget exhausted" };
  const failed = decidedBy?.kind === "branch" ? [decidedBy.branch] : failedRequired;
  if (failed.length === 0) return undefined;
  const causes = new Set(failed.map((name) => failureCause(branches[name], budgetMs)));
  const error = decidedBy?.kind === "branch" ? "branch failed" : "required branch failed";
  if (causes.has("downstream")) return { status: 502, error };
  if (causes.has("budget")) return { status: 504, error: "budget exhausted" };
  if (causes.has("gateway")) {
    return { status: 503, error: "branch cut by the gateway", retryAfterS };
  }
  return { status: 503, error: "no capacity", retryAfterS };
}

/**
 * The answer to a gather that rejected instead of reporting: 503 `{ error: "overloaded" }` with
 * `Retry-After` when the limiter's admission queue was full, 499 with no body when the client
 * went away (`signal` aborted); anything else is rethrown for the app's error handler.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { answerRejectedGather } from "./product_status.ts";
 *
 * new Hono().get("/", async (c) => {
 *   try {
 *     return c.json(await Promise.reject(new Error("boom")));
 *   } catch (error) {
 *     return answerRejectedGather(error, c, c.req.raw.signal);
 *   }
 * });
 * ```
 */
export function answerRejectedGather(error: unknown, c: Context, signal: AbortSignal): Response {
  if (isAdmissionRejectedError(error)) {
    const retryAfterS = Math.max(1, Math.ceil(error.retryAfterMs / 1000));
    c.header("retry-after", String(retryAfterS));
    return c.json({ error: "overloaded", retryAfterS, waiting: error.waiting }, 503);
  }
  // Nobody reads it: the status is for the logs and metrics, with no body.
  if (signal.aborted) return c.body(null, CLIENT_CLOSED_REQUEST as ContentfulStatusCode);
  throw error;
}

/**
 * collectAll's `errors`: a `{ branch, reason }` for each branch with a reason, in their order.
 *
 * @example
 * ```ts
 * import { collectedErrors } from "./product_status.ts";
 * collectedErrors({ reviews: "timeout" }); // [{ branch: "reviews", reason: "timeout" }]
 * ```
 */
export function collectedErrors(
  reasons: Readonly<Record<string, string>>,
): { branch: string; reason: string }[] {
  return Object.entries(reasons).map(([branch, reason]) => ({ branch, reason }));
}
