/**
 * The outcomes of the resilience policies that callers handle: a call refused by an open
 * breaker, and a task given up on after its worker crashed too often.
 *
 * @module
 */

const CIRCUIT_OPEN = Symbol.for("fanfare.CircuitOpenError");
const TASK_CRASHED = Symbol.for("fanfare.TaskCrashedError");
const CRASH_LOOP = Symbol.for("fanfare.CrashLoopError");

/**
 * A call refused without being sent because the downstream's breaker is open (or half-open with
 * its probe slots taken). `retryAfterMs` is how long until the breaker lets a probe through.
 *
 * @example
 * ```ts
 * import { CircuitOpenError } from "./errors.ts";
 * const error = new CircuitOpenError("price", 1_200);
 * error.message; // "Cannot call price as its circuit breaker is open: next probe in 1200 ms"
 * ```
 */
export class CircuitOpenError extends Error {
  /** The downstream whose breaker refused the call. */
  readonly downstream: string;
  /** Ms until the breaker lets a probe through (0 when half-open and waiting for a probe). */
  readonly retryAfterMs: number;
  /** Marks the class across duplicated copies of the package. */
  readonly [CIRCUIT_OPEN] = true;

  /** A refusal by `downstream`'s breaker. */
  constructor(downstream: string, retryAfterMs: number) {
    super(
      `Cannot call ${downstream} as its circuit breaker is open: next probe in ${
        Math.ceil(retryAfterMs)
      } ms`,
    );
    this.name = "CircuitOpenError";
    this.downstream = downstream;
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * Whether `error` is a {@linkcode CircuitOpenError}, also one from another copy of the package.
 *
 * @example
 * ```ts
 * import { CircuitOpenError, isCircuitOpenError } from "./errors.ts";
 * isCircuitOpenError(new CircuitOpenError("price", 0)); // true
 * ```
 */
export function isCircuitOpenError(error: unknown): error is CircuitOpenError {
  return typeof error === "object" && error !== null && CIRCUIT_OPEN in error;
}

/**
 * A task whose every attempt crashed its worker: the supervisor records it as failed and goes
 * on. `errors` holds each attempt's crash, first to last.
 *
 * @example
 * ```ts
 * import { TaskCrashedError } from "./errors.ts";
 * const error = new TaskCrashedError("task 7", [new Error("boom"), new Error("boom")]);
 * error.message; // "Cannot complete task 7 as it crashed its worker 2 times: last crash: boom"
 * ```
 */
export class TaskCrashedError extends AggregateError {
  /** Marks the class across duplicated copies of the package. */
  readonly [TASK_CRASHED] = true;

  /** `task` names the task in the message; `errors` are its crashes. */
  constructor(task: string, errors: readonly unknown[]) {
    super(
      errors,
      `Cannot complete ${task} as it crashed its worker ${errors.length} times: last crash: ${
        describe(errors.at(-1))
      }`,
    );
    this.name = "TaskCrashedError";
  }
}

/**
 * Whether `error` is a {@linkcode TaskCrashedError}, also one from another copy of the package.
 *
 * @example
 * ```ts
 * import { isTaskCrashedError, TaskCrashedError } from "./errors.ts";
 * isTaskCrashedError(new TaskCrashedError("task 1", [new Error("boom")])); // true
 * ```
 */
export function isTaskCrashedError(error: unknown): error is TaskCrashedError {
  return typeof error === "object" && error !== null && TASK_CRASHED in error;
}

/**
 * Workers crashed `restarts` times within `periodMs`: the supervisor stops the whole job rather
 * than spin, naming the task whose crash was the last straw.
 *
 * @example
 * ```ts
 * import { CrashLoopError } from "./errors.ts";
 * const error = new CrashLoopError({ task: "task 9", restarts: 5, periodMs: 10_000, cause: new Error("boom") });
 * error.message; // "Cannot go on as workers crashed 5 times within 10000 ms (a crash loop): last crash in task 9: boom"
 * ```
 */
export class CrashLoopError extends Error {
  /** The task whose crash tripped the limit. */
  readonly task: string;
  /** Marks the class across duplicated copies of the package. */
  readonly [CRASH_LOOP] = true;

  /** The limit that was reached and the crash that reached it. */
  constructor(
    { task, restarts, periodMs, cause }: {
      task: string;
      restarts: number;
      periodMs: number;
      cause: unknown;
    },
  ) {
    super(
      `Cannot go on as workers crashed ${restarts} times within ${periodMs} ms (a crash loop): ` +
        `last crash in ${task}: ${describe(cause)}`,
      { cause },
    );
    this.name = "CrashLoopError";
    this.task = task;
  }
}

/**
 * Whether `error` is a {@linkcode CrashLoopError}, also one from another copy of the package.
 *
 * @example
 * ```ts
 * import { CrashLoopError, isCrashLoopError } from "./errors.ts";
 * isCrashLoopError(new CrashLoopError({ task: "t", restarts: 1, periodMs: 1, cause: "x" })); // true
 * ```
 */
export function isCrashLoopError(error: unknown): error is CrashLoopError {
  return typeof error === "object" && error !== null && CRASH_LOOP in error;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
