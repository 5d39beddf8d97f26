/**
 * The two failures both executors report the same way: a task source or callback that threw,
 * and collectAll's failures as one `AggregateError`.
 *
 * @example
 * ```ts
 * import { branchFailures, sourceThrew } from "./_failures.ts";
 * sourceThrew("the fan-out as its task source", new Error("disk gone")).message;
 * // "Cannot continue the fan-out as its task source threw: disk gone"
 * branchFailures([new Error("x")], 4).message; // "1 of 4 branches failed"
 * ```
 *
 * @module
 */

import type { DeadlineError } from "./errors.ts";

/** `Cannot continue <what> threw: <message>`, with what was thrown as its cause. */
export function sourceThrew(what: string, cause: unknown): Error {
  return new Error(`Cannot continue ${what} threw: ${describe(cause)}`, { cause });
}

/**
 * The failures of `finished` branches as one `AggregateError`; when the budget ran out before
 * `unfinished` tasks could finish, its `DeadlineError` is the last of `errors`.
 */
export function branchFailures(
  failures: readonly unknown[],
  finished: number,
  outOfBudget?: { error: DeadlineError; unfinished: number },
): AggregateError {
  let message = `${failures.length} of ${finished} branches failed`;
  if (outOfBudget === undefined) return new AggregateError(failures, message);
  const { error, unfinished } = outOfBudget;
  message += `, and the budget of ${error.budgetMs} ms ran out with ${unfinished} task${
    unfinished === 1 ? "" : "s"
  } unfinished`;
  return new AggregateError([...failures, error], message);
}

/**
 * What was thrown, as text for a message: an `Error`'s message, or the value's type and string
 * form. Never throws, whatever was thrown (an object with no `toString`, say).
 */
export function describe(cause: unknown): string {
  if (cause instanceof Error) return cause.message;
  let text: string;
  try {
    text = String(cause);
  } catch {
    text = "no string form";
  }
  return `a non-Error value (${typeof cause}: ${text})`;
}
