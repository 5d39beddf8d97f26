/**
 * Options of `fanOut` and their validation, kept apart so the executor reads as a state machine.
 *
 * @module
 */
import type { Timers } from "./_deadline_timer.ts";

/**
 * How a fan-out treats a failed branch:
 * `failFast` rejects at the first failure and aborts the rest; `collectAll` runs every branch
 * and reports all failures as an `AggregateError`; `bestEffort` runs every branch and reports
 * failures as a count, ratio and list for the caller to judge.
 */
export type FailurePolicy = "failFast" | "collectAll" | "bestEffort";

/** How one branch ended, as reported to {@linkcode FanOutHooks.onSettle}. */
export type BranchOutcome = "ok" | "error" | "timeout" | "skipped" | "abandoned";

/**
 * Observation points, for metrics. Each costs nothing when absent.
 *
 * @example
 * ```ts
 * let inFlight = 0;
 * const hooks = {
 *   onStart: () => inFlight++,
 *   onSettle: (_i: number, outcome: string) => outcome !== "skipped" && inFlight--,
 * };
 * ```
 */
export interface FanOutHooks {
  /** A branch started. */
  onStart?(index: number): void;
  /** A branch ended; `durationMs` is 0 for a skipped one. */
  onSettle?(index: number, outcome: BranchOutcome, durationMs: number): void;
}

/** Options of `fanOut`. */
export interface FanOutOptions<R = unknown> {
  /** Most branches in flight at once. 0 or absent means {@linkcode DEFAULT_LIMIT}. */
  limit?: number;
  /** Failure policy; `bestEffort` by default. */
  policy?: FailurePolicy;
  /** `true` (default): `values` aligned to input index. `false`: completion order. */
  ordered?: boolean;
  /** The caller's signal: aborting it aborts every branch and rejects with its reason. */
  signal?: AbortSignal;
  /** Each branch's own time limit in ms. */
  timeoutMs?: number;
  /** The whole call's time limit in ms. */
  budgetMs?: number;
  /** A branch is not started with less than this many ms of `budgetMs` left (default 1). */
  minBudgetMs?: number;
  /** Receives each value as it completes, in completion order; values are then not kept. */
  onResult?: (value: R, index: number) => void;
  /** Observation hooks. */
  hooks?: FanOutHooks;
  /** Where the deadlines' timeouts are set; the global `setTimeout` pair by default. */
  timers?: Timers;
}

/**
 * Branches in flight when `limit` is 0 or absent. Sixteen keeps a burst polite to one
 * downstream while leaving room for the usual fan-outs of a handful of calls.
 */
export const DEFAULT_LIMIT = 16;

/**
 * Every failure policy, e.g. for a schema that accepts one by name.
 *
 * @example
 * ```ts
 * import { FAILURE_POLICIES } from "./fan_out_options.ts";
 * FAILURE_POLICIES.includes("failFast"); // true
 * ```
 */
export const FAILURE_POLICIES = Object.freeze(
  ["failFast", "collectAll", "bestEffort"] as const satisfies readonly FailurePolicy[],
);

/**
 * Validates `options` and fills in defaults; throws `RangeError`/`TypeError` naming the field.
 *
 * @example
 * ```ts
 * import { checkOptions } from "./fan_out_options.ts";
 * checkOptions({ limit: 0 }).limit; // 16
 * ```
 */
export function checkOptions<R>(
  {
    limit = 0,
    policy = "bestEffort",
    ordered = true,
    signal,
    timeoutMs,
    budgetMs,
    minBudgetMs = 1,
    onResult,
    hooks,
    timers = globalThis,
  }: FanOutOptions<R>,
) {
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new RangeError(
      `Cannot fan out as 'limit' must be a non-negative integer: current value is ${limit}`,
    );
  }
  if (!FAILURE_POLICIES.includes(policy)) {
    throw new TypeError(
      `Cannot fan out as 'policy' must be one of ${
        FAILURE_POLICIES.join(", ")
      }: current value is ${policy}`,
    );
  }
  checkDuration("timeoutMs", timeoutMs, false);
  checkDuration("budgetMs", budgetMs, true);
  checkDuration("minBudgetMs", minBudgetMs, true);
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(`Cannot fan out as 'signal' must be an AbortSignal`);
  }
  // Checked here, not when the first branch settles: a typo fails before anything runs.
  checkCallback("onResult", onResult);
  if (hooks !== undefined) {
    if (typeof hooks !== "object" || hooks === null) {
      throw new TypeError(
        `Cannot fan out as 'hooks' must be an object: current type is ${typeOf(hooks)}`,
      );
    }
    checkCallback("hooks.onStart", hooks.onStart);
    checkCallback("hooks.onSettle", hooks.onSettle);
  }
  if (typeof timers?.setTimeout !== "function" || typeof timers.clearTimeout !== "function") {
    throw new TypeError(
      `Cannot fan out as 'timers' must have setTimeout and clearTimeout functions: current type is ${
        typeOf(timers)
      }`,
    );
  }
  return {
    limit: limit === 0 ? DEFAULT_LIMIT : limit,
    policy,
    ordered,
    signal,
    timeoutMs,
    budgetMs,
    minBudgetMs,
    onResult,
    hooks,
    timers,
  };
}

function checkDuration(name: string, value: number | undefined, zeroAllowed: boolean): void {
  if (value === undefined) return;
  if (
    typeof value !== "number" || !Number.isFinite(value) || value < 0 ||
    (!zeroAllowed && value === 0)
  ) {
    throw new RangeError(
      `Cannot fan out as '${name}' must be a ${
        zeroAllowed ? "non-negative" : "positive"
      } finite number of ms: current value is ${value}`,
    );
  }
}

function checkCallback(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== "function") {
    throw new TypeError(
      `Cannot fan out as '${name}' must be a function: current type is ${typeOf(value)}`,
    );
  }
}

function typeOf(value: unknown): string {
  return value === null ? "null" : typeof value;
}
