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

/** `Cannot continue <what> threw: <message>`, with what was thrown as its cause. */
export function sourceThrew(what: string, cause: unknown): Error {
  const message = cause instanceof Error ? cause.message : String(cause);
  return new Error(`Cannot continue ${what} threw: ${message}`, { cause });
}

/** The failures of `finished` branches as one `AggregateError`. */
export function branchFailures(failures: readonly unknown[], finished: number): AggregateError {
  return new AggregateError(failures, `${failures.length} of ${finished} branches failed`);
}
