/**
 * Response shaping of one branch's answer: take a sub-object (`target`), keep some fields
 * (`pick`), rename fields (`rename`), in that order.
 *
 * @module
 */
import { readPath } from "./template.ts";

/**
 * How one answer is shaped before it is placed in the response (under the branch's `group`).
 *
 * @example
 * ```ts
 * import type { Shape } from "./shape.ts";
 * const shape: Shape = { target: "customer", pick: ["id", "name"], rename: { name: "fullName" } };
 * ```
 */
export interface Shape {
  /** A dotted path to the part of the answer kept, e.g. `"data.customer"`. */
  readonly target?: string;
  /** Fields kept; every field when absent. */
  readonly pick?: readonly string[];
  /** New names of fields, `{ old: "new" }`. */
  readonly rename?: Readonly<Record<string, string>>;
}

/**
 * Applies `shape` to `answer`: `target` first (a missing target gives `null`), then `pick` and
 * `rename` on an object (anything else passes unchanged). Never changes `answer`.
 *
 * @example
 * ```ts
 * import { shapeAnswer } from "./shape.ts";
 * shapeAnswer({ data: { id: 1, name: "Ada", secret: "x" } }, {
 *   target: "data", pick: ["id", "name"], rename: { name: "fullName" },
 * }); // { id: 1, fullName: "Ada" }
 * ```
 */
export function shapeAnswer(answer: unknown, { target, pick, rename }: Shape): unknown {
  let value = target === undefined ? answer : readPath(answer, target.split(".")) ?? null;
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  if (pick === undefined && rename === undefined) return value;
  const source = value as Record<string, unknown>;
  const shaped: Record<string, unknown> = {};
  for (const field of pick ?? Object.keys(source)) {
    if (Object.hasOwn(source, field)) shaped[rename?.[field] ?? field] = source[field];
  }
  value = shaped;
  return value;
}
