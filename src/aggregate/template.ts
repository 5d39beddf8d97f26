/**
 * Path templates of aggregation branches: `/customers/{order.customerId}?lang={query.lang}`,
 * parsed once and filled per call with URL-encoded values.
 *
 * @module
 */

/**
 * Where a placeholder takes its value from: a path parameter, a query parameter, an allowed
 * request header, the `forEach` element, or a field of a need's answer.
 *
 * @example
 * ```ts
 * import type { TemplateSource } from "./template.ts";
 * const source: TemplateSource = "need";
 * ```
 */
export type TemplateSource = "params" | "query" | "headers" | "item" | "need";

/**
 * One `{…}` of a template: its source, the name within it (a need's name for `need`), and the
 * field path below that (`order.customer.id` → name `order`, path `["customer", "id"]`).
 *
 * @example
 * ```ts
 * import type { Placeholder } from "./template.ts";
 * const placeholder: Placeholder = { source: "need", name: "order", path: ["customerId"], text: "order.customerId" };
 * ```
 */
export interface Placeholder {
  source: TemplateSource;
  /** The parameter, header or need named; `""` for `item`. */
  name: string;
  /** Fields below it, for `need` and `item`. */
  path: string[];
  /** The placeholder as written, without braces. */
  text: string;
}

/**
 * A parsed template: literal text and placeholders, alternating (`parts.length` is
 * `placeholders.length + 1`).
 *
 * @example
 * ```ts
 * import { parseTemplate } from "./template.ts";
 * const template = parseTemplate("/orders/{params.id}");
 * template.parts; // ["/orders/", ""]
 * ```
 */
export interface Template {
  readonly source: string;
  readonly parts: readonly string[];
  readonly placeholders: readonly Placeholder[];
}

const PLACEHOLDER = /\{([^{}]*)\}/g;
const FIELD = /^[A-Za-z0-9_$-]+$/;

/**
 * Parses `source`: each `{…}` is `params.<name>`, `query.<name>`, `headers.<name>`, `item` or
 * `item.<field>…`, or `<need>.<field>…` (a field path into a need's answer; a numeric field
 * indexes an array). Throws a `SyntaxError` naming a malformed placeholder or a stray brace.
 *
 * @example
 * ```ts
 * import { parseTemplate } from "./template.ts";
 * parseTemplate("/customers/{order.customerId}").placeholders[0].name; // "order"
 * ```
 */
export function parseTemplate(source: string): Template {
  const parts: string[] = [];
  const placeholders: Placeholder[] = [];
  let last = 0;
  for (const match of source.matchAll(PLACEHOLDER)) {
    parts.push(source.slice(last, match.index));
    placeholders.push(parsePlaceholder(match[1]));
    last = match.index + match[0].length;
  }
  parts.push(source.slice(last));
  const stray = parts.find((part) => part.includes("{") || part.includes("}"));
  if (stray !== undefined) {
    throw new SyntaxError(
      `Cannot parse the template as every brace must close one placeholder: current value is ${
        JSON.stringify(source)
      }`,
    );
  }
  return Object.freeze({ source, parts, placeholders });
}

function parsePlaceholder(text: string): Placeholder {
  const fields = text.split(".");
  if (fields.some((field) => !FIELD.test(field))) {
    throw new SyntaxError(
      `Cannot parse the placeholder as it must be dotted names of A-Z a-z 0-9 _ $ -: current value is "{${text}}"`,
    );
  }
  const [head, ...path] = fields;
  if (head === "item") return { source: "item", name: "", path, text };
  if (head === "params" || head === "query" || head === "headers") {
    if (path.length !== 1) {
      throw new SyntaxError(
        `Cannot parse the placeholder as ${head} takes exactly one name: current value is "{${text}}"`,
      );
    }
    return { source: head, name: path[0], path: [], text };
  }
  if (path.length === 0) {
    throw new SyntaxError(
      `Cannot parse the placeholder as a need's answer is an object, so it needs a field: current value is "{${text}}"`,
    );
  }
  return { source: "need", name: head, path, text };
}

/**
 * What a template is filled from for one call.
 *
 * @example
 * ```ts
 * import type { TemplateValues } from "./template.ts";
 * const values: TemplateValues = { params: { id: "o-1" }, query: {}, headers: {}, inputs: {} };
 * ```
 */
export interface TemplateValues {
  params: Readonly<Record<string, string>>;
  query: Readonly<Record<string, string>>;
  headers: Readonly<Record<string, string>>;
  /** The needs' answers, by need. */
  inputs: Readonly<Record<string, unknown>>;
  /** The `forEach` element. */
  item?: unknown;
}

/**
 * Reads `path` below `value`: object fields by name, array elements by index. `undefined` when
 * any step is missing.
 *
 * @example
 * ```ts
 * import { readPath } from "./template.ts";
 * readPath({ a: [{ b: 2 }] }, ["a", "0", "b"]); // 2
 * ```
 */
export function readPath(value: unknown, path: readonly string[]): unknown {
  let current = value;
  for (const field of path) {
    if (current === null || typeof current !== "object" || !Object.hasOwn(current, field)) {
      return undefined;
    }
    current = (current as Record<string, unknown>)[field];
  }
  return current;
}

/**
 * Fills `template` from `values`, each value URL-encoded. Throws a `TypeError` naming the
 * placeholder when its value is missing, not a string, number or boolean, or one that would
 * move the path (`""`, `.` or `..`): a downstream's answer must not choose where the next call
 * goes.
 *
 * @example
 * ```ts
 * import { fillTemplate, parseTemplate } from "./template.ts";
 * const template = parseTemplate("/customers/{order.customerId}");
 * fillTemplate(template, {
 *   params: {}, query: {}, headers: {}, inputs: { order: { customerId: "c 1" } },
 * }); // "/customers/c%201"
 * ```
 */
export function fillTemplate(template: Template, values: TemplateValues): string {
  const { parts, placeholders } = template;
  let filled = parts[0];
  for (let i = 0; i < placeholders.length; i++) {
    filled += encodeURIComponent(valueOf(placeholders[i], values)) + parts[i + 1];
  }
  return filled;
}

function valueOf(placeholder: Placeholder, values: TemplateValues): string {
  const { source, name, path, text } = placeholder;
  let value: unknown;
  if (source === "need") value = readPath(values.inputs[name], path);
  else if (source === "item") value = readPath(values.item, path);
  else value = values[source][name];
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (typeof value !== "string") {
    throw new TypeError(
      `Cannot fill {${text}} as its value must be a string, number or boolean: current value is ${
        value === undefined ? "missing" : value === null ? "null" : `of type ${typeof value}`
      }`,
    );
  }
  if (value === "" || value === "." || value === "..") {
    throw new TypeError(
      `Cannot fill {${text}} as its value must not be empty, "." or "..": current value is ${
        JSON.stringify(value)
      }`,
    );
  }
  return value;
}
