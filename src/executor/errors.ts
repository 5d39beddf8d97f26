/**
 * Outcomes of a fan-out that callers handle. Misuse throws built-ins (`RangeError`, `TypeError`).
 *
 * Each class has an `is…` guard that works across duplicated copies of this package
 * (it checks a registered symbol, not `instanceof`).
 *
 * @module
 */

import { describe } from "./_failures.ts";

const branchBrand = Symbol.for("fanfare.BranchError");
const deadlineBrand = Symbol.for("fanfare.DeadlineError");

/**
 * A branch threw, rejected, or outlived its own `timeoutMs`. `index` is the task's input
 * index and `cause` what it threw (a non-`Error` rejection is kept as is in `cause`).
 * Under `failFast` the fan-out rejects with it, and `partial` holds what was gathered.
 *
 * @example
 * ```ts
 * import { BranchError, isBranchError } from "./errors.ts";
 * const err = new BranchError(3, new Error("boom"));
 * isBranchError(err); // true
 * err.message; // "Branch 3 failed: boom"
 * ```
 */
export class BranchError extends Error {
  /** Input index of the branch. */
  readonly index: number;
  /** What gathered so far, when the whole fan-out failed because of this branch. */
  declare partial?: unknown;
  readonly [branchBrand] = true;

  /** Wraps what branch `index` threw. */
  constructor(index: number, cause: unknown, message?: string) {
    super(message ?? `Branch ${index} failed: ${describeRejection(cause)}`, { cause });
    this.name = "BranchError";
    this.index = index;
  }
}

/**
 * Branch `index` ran past its own `timeoutMs`: its signal was aborted and its outcome, if it
 * ever comes, is ignored.
 *
 * @example
 * ```ts
 * import { BranchTimeoutError } from "./errors.ts";
 * new BranchTimeoutError(0, 50).message; // "Branch 0 timed out after 50 ms"
 * ```
 */
export class BranchTimeoutError extends BranchError {
  /** The branch's timeout in ms. */
  readonly timeoutMs: number;

  /** Branch `index` exceeded `timeoutMs`. */
  constructor(index: number, timeoutMs: number) {
    super(index, undefined, `Branch ${index} timed out after ${timeoutMs} ms`);
    this.name = "BranchTimeoutError";
    this.timeoutMs = timeoutMs;
  }
}

/**
 * The whole call's `budgetMs` ran out. Under `failFast` the fan-out rejects with it; under the
 * other policies it is the reason given to every branch it aborted.
 *
 * @example
 * ```ts
 * import { DeadlineError, isDeadlineError } from "./errors.ts";
 * isDeadlineError(new DeadlineError(300)); // true
 * ```
 */
export class DeadlineError extends Error {
  /** The call's budget in ms. */
  readonly budgetMs: number;
  /** What gathered before the deadline (set under `failFast`). */
  declare partial?: unknown;
  readonly [deadlineBrand] = true;

  /** The call's `budgetMs` elapsed. */
  constructor(budgetMs: number) {
    super(`Fan-out deadline exceeded: budget of ${budgetMs} ms used up`);
    this.name = "DeadlineError";
    this.budgetMs = budgetMs;
  }
}

/** Whether `value` is a {@linkcode BranchError} (or a subclass) from any copy of this package. */
export function isBranchError(value: unknown): value is BranchError {
  return typeof value === "object" && value !== null && branchBrand in value;
}

/** Whether `value` is a {@linkcode DeadlineError} from any copy of this package. */
export function isDeadlineError(value: unknown): value is DeadlineError {
  return typeof value === "object" && value !== null && deadlineBrand in value;
}

function describeRejection(cause: unknown): string {
  return cause instanceof Error ? cause.message : `rejected with ${describe(cause)}`;
}
