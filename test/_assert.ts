/**
 * The three assertions fanfare's tests need. `@std/assert` lives on JSR (unreachable here) and
 * `node:assert` needs `@types/node`, which is not installed; swap this file for either once it is.
 *
 * @module
 */

/**
 * Throws when `condition` is falsy.
 *
 * @example
 * ```ts
 * import { assert } from "./_assert.ts";
 *
 * assert(1 + 1 === 2, "arithmetic works");
 * ```
 */
export function assert(condition: unknown, message = "assertion failed"): asserts condition {
  if (!condition) throw new Error(message);
}

/**
 * Throws unless `actual` and `expected` are structurally equal: same primitives (by
 * `Object.is`), same array elements in order, same own enumerable keys and values.
 *
 * @example
 * ```ts
 * import { assertEquals } from "./_assert.ts";
 *
 * assertEquals({ a: [1, 2] }, { a: [1, 2] });
 * ```
 */
export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  if (!equal(actual, expected)) {
    throw new Error(
      `${message ?? "values differ"}:\n  actual:   ${Deno.inspect(actual)}\n  expected: ${
        Deno.inspect(expected)
      }`,
    );
  }
}

/**
 * Throws unless `action` throws an error whose message matches `pattern`.
 *
 * @example
 * ```ts
 * import { assertThrows } from "./_assert.ts";
 *
 * assertThrows(() => JSON.parse("{"), /JSON/);
 * ```
 */
export function assertThrows(action: () => unknown, pattern: RegExp): void {
  try {
    action();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    assert(pattern.test(message), `error message ${JSON.stringify(message)} misses ${pattern}`);
    return;
  }
  throw new Error(`expected an error matching ${pattern}, but nothing was thrown`);
}

function equal(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const aKeys = Object.keys(a);
  const bKeys = Object.keys(b);
  return aKeys.length === bKeys.length &&
    aKeys.every((key) =>
      Object.hasOwn(b, key) &&
      equal((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key])
    );
}
