/**
 * The assertions fanfare's tests use, under short names, from Node's `assert/strict` (which
 * Deno, Bun and Node all ship; JSR's `@std/assert` is not reachable from every build machine).
 *
 * @example
 * ```ts
 * import { assert, assertEquals, assertThrows } from "./_assert.ts";
 * assert(1 + 1 === 2, "arithmetic works");
 * assertEquals({ a: [1, 2] }, { a: [1, 2] });
 * assertThrows(() => JSON.parse("{"), /JSON/);
 * ```
 *
 * @module
 */
import strict from "node:assert/strict";

/** Throws when `value` is falsy. */
export const assert: typeof strict.ok = strict.ok;

/** Throws unless `actual` and `expected` are deeply and strictly equal. */
export const assertEquals: typeof strict.deepEqual = strict.deepEqual;

/** Throws unless `action` throws an error whose message matches `pattern`. */
export function assertThrows(action: () => unknown, pattern: RegExp): void {
  strict.throws(action, (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    strict.match(message, pattern);
    return true;
  });
}
