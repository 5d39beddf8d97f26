/**
 * The executor: bounded fan-out of tasks (`fanOut`, `fanOutStream`), worker pools, an
 * errgroup-style `Group`, a weighted `Semaphore`, and the errors they report.
 *
 * @example
 * ```ts
 * import { fanOut } from "./mod.ts";
 * const { values } = await fanOut([1, 2, 3], async (n) => n * 2, { limit: 2 });
 * ```
 *
 * @module
 */

export {
  type BranchContext,
  type BranchOutcome,
  DEFAULT_LIMIT,
  FAILURE_POLICIES,
  type FailurePolicy,
  fanOut,
  type FanOutHooks,
  type FanOutOptions,
  type FanOutResult,
  type UnfinishedBranch,
} from "./fan_out.ts";
export {
  type FanOutStream,
  fanOutStream,
  type FanOutStreamOptions,
  type FanOutStreamStats,
  type StreamResult,
  type TaskSource,
} from "./fan_out_stream.ts";
export {
  BranchError,
  BranchTimeoutError,
  DeadlineError,
  isBranchError,
  isDeadlineError,
} from "./errors.ts";
export { type AcquireOptions, Semaphore, type SemaphoreRunOptions } from "./semaphore.ts";
export { Group, type GroupOptions } from "./group.ts";
export { runWorkers, type RunWorkersOptions } from "./pool.ts";
export { abortable } from "./_abort.ts";
export { DeadlineTimer, type Timers } from "./_deadline_timer.ts";
export { CallBudget } from "./call_budget.ts";
