/**
 * Command-line flags shared by the benchmarks: a positive number or whole number read from a
 * flag's text with an error naming the flag, and the checkout a `--root` flag names.
 *
 * @module
 */

/**
 * The number `text` of flag `--<name>` of `command`; a `RangeError` naming both unless it is
 * positive and finite (with `integer`, a positive whole number).
 *
 * @example
 * ```ts
 * import { positiveFlag } from "./_flags.ts";
 * const rounds = positiveFlag("bench:permits", "rounds", "5", { integer: true }); // 5
 * ```
 */
export function positiveFlag(
  command: string,
  name: string,
  text: string,
  { integer = false }: { integer?: boolean } = {},
): number {
  const value = Number(text);
  const valid = integer ? Number.isSafeInteger(value) && value >= 1 : value > 0 && value < Infinity;
  if (!valid) {
    throw new RangeError(
      `Cannot run ${command} as '--${name}' must be a positive ${
        integer ? "integer" : "number"
      }: current value is ${text}`,
    );
  }
  return value;
}

/**
 * The number `text` of flag `--<name>` of `command`, which may be 0 (a step that is skipped); a
 * `RangeError` naming both unless it is finite and not negative.
 *
 * @example
 * ```ts
 * import { nonNegativeFlag } from "./_flags.ts";
 * const idleSeconds = nonNegativeFlag("exp:overload-steps", "idle", "0"); // 0
 * ```
 */
export function nonNegativeFlag(command: string, name: string, text: string): number {
  const value = Number(text);
  if (!(value >= 0 && value < Infinity) || text.trim() === "") {
    throw new RangeError(
      `Cannot run ${command} as '--${name}' must be a number ≥ 0: current value is ${text}`,
    );
  }
  return value;
}

/**
 * The checkout whose `bench/` and `src/` a run loads: `root` (a `--root` flag's path) when
 * given, else this one, as a directory URL.
 *
 * @example
 * ```ts
 * import { checkoutRoot } from "./_flags.ts";
 * const root = checkoutRoot(undefined); // this checkout
 * const limits = await import(new URL("src/limits/mod.ts", root).href);
 * ```
 */
export function checkoutRoot(root: string | undefined): URL {
  return root === undefined
    ? new URL("../", import.meta.url)
    : new URL(`file://${Deno.realPathSync(root)}/`);
}
