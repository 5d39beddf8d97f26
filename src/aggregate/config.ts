/**
 * The aggregation config (`fanfare.config.json`): named downstreams and endpoints, each a graph
 * of branches. Validated with zod at startup; every error names its JSON path, e.g.
 * `endpoints[2].branches.customer.needs[0]: unknown branch "ordr"`.
 *
 * @module
 */
import * as z from "zod/mini";
import { FAILURE_POLICIES, type FailurePolicy } from "../executor/mod.ts";
import { findCycle } from "./graph.ts";
import { parseTemplate, type Placeholder } from "./template.ts";

/** Names of endpoints, branches and downstreams: they appear in templates and metric labels. */
const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** Names a branch may not take: they are the other template sources. */
const RESERVED = new Set(["params", "query", "headers", "item"]);
/** Smallest and largest budget and time limit an endpoint or branch may set, in ms. */
const MS_RANGE = { min: 1, max: 60_000 };

const name = z.string().check(
  z.regex(NAME, "must be 1 to 64 of A-Z a-z 0-9 _, not starting with a digit"),
);
const ms = z.number().check(z.minimum(MS_RANGE.min), z.maximum(MS_RANGE.max));
const field = z.string().check(z.minLength(1), z.maxLength(128));

const hedgeSchema = z.strictObject({
  /** Fixed wait before a hedge in ms; an adaptive delay at `quantile` when absent. */
  delayMs: z.optional(ms),
  quantile: z.optional(z.number().check(z.minimum(0.5), z.maximum(0.999))),
  maxAttempts: z.optional(z.int().check(z.minimum(2), z.maximum(4))),
  /** Hedges per primary call allowed, e.g. 0.05. */
  ratio: z.optional(z.number().check(z.minimum(0), z.maximum(1))),
});

const branchSchema = z.strictObject({
  downstream: z.optional(name),
  path: z.string().check(z.regex(/^\//, "must start with /"), z.maxLength(2048)),
  required: z.optional(z.boolean()),
  idempotent: z.optional(z.boolean()),
  timeoutMs: ms,
  minBudgetMs: z.optional(ms),
  needs: z.optional(z.array(z.string())),
  forEach: z.optional(z.strictObject({
    from: z.string().check(
      z.regex(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_$-]+)+$/, "must be <need>.<field>…"),
    ),
    max: z.optional(z.int().check(z.minimum(1), z.maximum(100))),
  })),
  hedge: z.optional(hedgeSchema),
  retry: z.optional(z.strictObject({
    maxAttempts: z.optional(z.int().check(z.minimum(2), z.maximum(4))),
    ratio: z.optional(z.number().check(z.minimum(0), z.maximum(1))),
  })),
  breaker: z.optional(z.boolean()),
  group: z.optional(field),
  target: z.optional(field),
  pick: z.optional(z.array(field)),
  rename: z.optional(z.record(z.string(), field)),
  internal: z.optional(z.boolean()),
});

const endpointSchema = z.strictObject({
  name,
  route: z.string().check(
    z.regex(/^(\/[A-Za-z0-9_.~-]+|\/:[A-Za-z_][A-Za-z0-9_]*)+$/, "must be /segments and /:params"),
  ),
  budgetMs: z.optional(z.int().check(z.minimum(10), z.maximum(10_000))),
  limit: z.optional(z.int().check(z.minimum(1), z.maximum(64))),
  headers: z.optional(
    z.array(z.string().check(z.regex(/^[a-z0-9-]+$/, "must be a lower-case header name"))),
  ),
  policy: z.optional(z.enum(FAILURE_POLICIES)),
  branches: z.record(name, branchSchema),
});

/**
 * The config file's schema, without the checks across fields (those are in
 * {@linkcode parseConfig}). Its JSON Schema is `fanfare.config.schema.json`.
 *
 * @example
 * ```ts
 * import { configSchema } from "./config.ts";
 * configSchema.safeParse({ endpoints: [] }).success; // false: at least one endpoint
 * ```
 */
const productBranchSchema = z.strictObject({
  downstream: z.optional(name),
  path: z.string().check(z.regex(/^\//, "must start with /"), z.maxLength(2048)),
  required: z.optional(z.boolean()),
  idempotent: z.optional(z.boolean()),
  timeoutMs: ms,
  hedge: z.optional(hedgeSchema),
  retry: z.optional(z.strictObject({
    maxAttempts: z.optional(z.int().check(z.minimum(2), z.maximum(4))),
    ratio: z.optional(z.number().check(z.minimum(0), z.maximum(1))),
  })),
  breaker: z.optional(z.boolean()),
});

const productSchema = z.strictObject({ branches: z.record(name, productBranchSchema) });

export const configSchema: z.ZodMiniType<AggregateConfig> = z.strictObject({
  $schema: z.optional(z.string()),
  downstreams: z.optional(z.record(name, z.strictObject({ url: z.optional(z.url()) }))),
  product: z.optional(productSchema),
  endpoints: z.array(endpointSchema).check(z.minLength(1)),
});

/**
 * A branch of an endpoint as the config declares it (see the README's _Aggregation endpoints_
 * for each field).
 *
 * @example
 * ```ts
 * import type { BranchConfig } from "./config.ts";
 * const customer: BranchConfig = {
 *   path: "/customers/{order.customerId}", needs: ["order"], timeoutMs: 200,
 * };
 * ```
 */
export interface BranchConfig {
  /** Name of the downstream it calls; `default` when absent. */
  downstream?: string;
  /** Path and query template, e.g. `/customers/{order.customerId}`. */
  path: string;
  /** Whether the answer fails without it (502); `false` by default. */
  required?: boolean;
  /** Whether it may be repeated (hedged); `true` by default (calls are GETs). */
  idempotent?: boolean;
  /** Its own time limit per call in ms. */
  timeoutMs: number;
  /** Not started with less budget left, in ms; 1 by default. */
  minBudgetMs?: number;
  /** Branches whose answers it uses. */
  needs?: string[];
  /** One call per element of a need's array field (`from: "order.itemIds"`), at most `max`. */
  forEach?: { from: string; max?: number };
  /** Hedging: a fixed delay, or an adaptive one at `quantile`, within `ratio` extra calls. */
  hedge?: { delayMs?: number; quantile?: number; maxAttempts?: number; ratio?: number };
  /**
   * Retries of a fast failure: at most `maxAttempts` (2 by default) per call, within `ratio`
   * (0.5 by default) retries per call of the downstream plus a burst of 10.
   */
  retry?: { maxAttempts?: number; ratio?: number };
  /**
   * The downstream's circuit breaker (`DEFAULT_BRANCH_BREAKER`: open at 90 % of 20 calls failed
   * in 10 s, probe once a second); none by default.
   */
  breaker?: boolean;
  /** Key of its answer in the response; the branch's name by default. */
  group?: string;
  /** Dotted path of the part of its answer kept. */
  target?: string;
  /** Fields kept. */
  pick?: string[];
  /** New names of fields, `{ old: "new" }`. */
  rename?: Record<string, string>;
  /** Used by other branches only: not in the response. */
  internal?: boolean;
}

/**
 * An endpoint as the config declares it: a route, its budget and limit, and its branches.
 *
 * @example
 * ```ts
 * import type { EndpointConfig } from "./config.ts";
 * const orders: EndpointConfig = {
 *   name: "orders",
 *   route: "/orders/:id",
 *   branches: { order: { path: "/orders/{params.id}", required: true, timeoutMs: 300 } },
 * };
 * ```
 */
/**
 * One branch of the product page: a call per request at `path`, whose only placeholder is
 * `{params.id}`; the product route's policies, faults and answer apply to it.
 *
 * @example
 * ```ts
 * import type { ProductBranchConfig } from "./config.ts";
 * const price: ProductBranchConfig = { path: "/price/{params.id}", required: true, timeoutMs: 300 };
 * ```
 */
export type ProductBranchConfig = Pick<
  BranchConfig,
  "downstream" | "path" | "required" | "idempotent" | "timeoutMs" | "hedge" | "retry" | "breaker"
>;

/**
 * The product page (`GET /product/:id`) as the config declares it: its branches by name, in
 * start order.
 *
 * @example
 * ```ts
 * import type { ProductConfig } from "./config.ts";
 * const product: ProductConfig = {
 *   branches: { price: { path: "/price/{params.id}", required: true, timeoutMs: 300 } },
 * };
 * ```
 */
export interface ProductConfig {
  branches: Record<string, ProductBranchConfig>;
}

export interface EndpointConfig {
  /** Its name in metrics (`<name>.<branch>`) and answers. */
  name: string;
  /** The Hono route, e.g. `/orders/:orderId`. */
  route: string;
  /** Budget in ms when the request gives none; 1000 by default. */
  budgetMs?: number;
  /** Calls in flight per request; 6 by default. */
  limit?: number;
  /** Request headers its templates may read, lower-case. */
  headers?: string[];
  /**
   * What a failed branch does to the answer when the request names no `policy`: `bestEffort`
   * (the default) degrades an optional one, `failFast` fails the answer at the first failure,
   * `collectAll` answers as bestEffort plus an `errors` list.
   */
  policy?: FailurePolicy;
  /** Its branches by name, in start order. */
  branches: Record<string, BranchConfig>;
}

/**
 * A whole config: downstreams by name, and endpoints.
 *
 * @example
 * ```ts
 * import type { AggregateConfig } from "./config.ts";
 * const config: AggregateConfig = { endpoints: [] };
 * ```
 */
export interface AggregateConfig {
  $schema?: string;
  /** Downstreams by name; one without `url` is provided by the runtime. */
  downstreams?: Record<string, { url?: string }>;
  /** The product page's branches (`GET /product/:id`); the built-in five when absent. */
  product?: ProductConfig;
  endpoints: EndpointConfig[];
}

/** The downstream a branch calls when it names none. */
export const DEFAULT_DOWNSTREAM = "default";

/**
 * A config that is not valid: `issues` holds one line per problem, each starting with its JSON
 * path (`endpoints[0].branches.customer.needs[0]: unknown branch "ordr"`).
 *
 * @example
 * ```ts
 * import { ConfigError, parseConfig } from "./config.ts";
 * try {
 *   parseConfig({ endpoints: [] });
 * } catch (error) {
 *   if (error instanceof ConfigError) console.error(error.issues.join("\n"));
 * }
 * ```
 */
export class ConfigError extends Error {
  /** Every problem found, each with its JSON path. */
  readonly issues: readonly string[];

  /** A config with `issues`. */
  constructor(issues: readonly string[], source = "the config") {
    super(`Cannot use ${source} as it has ${issues.length} problem(s):\n${issues.join("\n")}`);
    this.name = "ConfigError";
    this.issues = issues;
  }
}

/**
 * Problems of `json` as a config, one line each with its JSON path; empty when it is valid.
 * Beyond the schema it checks that every need names a branch of the same endpoint, that needs
 * form no cycle (named branch by branch), that every placeholder names something the branch has
 * (a route parameter, an allowed header, a need, `item` with `forEach`), that `forEach.from`
 * starts with a need, that downstreams are declared, that hedged branches are idempotent, and
 * that routes and groups are unique.
 *
 * @example
 * ```ts
 * import { configIssues } from "./config.ts";
 * configIssues({
 *   endpoints: [{ name: "o", route: "/o/:id", branches: {
 *     customer: { path: "/c/{ordr.customerId}", needs: ["ordr"], timeoutMs: 100 },
 *   } }],
 * }); // ['endpoints[0].branches.customer.needs[0]: unknown branch "ordr"', …]
 * ```
 */
export function configIssues(json: unknown): string[] {
  const parsed = configSchema.safeParse(json, { reportInput: true });
  if (!parsed.success) {
    return parsed.error.issues.map((issue) => `${jsonPath(issue.path)}: ${describeIssue(issue)}`);
  }
  return crossIssues(parsed.data);
}

/**
 * `json` as a valid config, or a {@linkcode ConfigError} listing every problem (see
 * {@linkcode configIssues}).
 *
 * @example
 * ```ts
 * import { parseConfig } from "./config.ts";
 * const config = parseConfig({
 *   endpoints: [{ name: "orders", route: "/orders/:id", branches: {
 *     order: { path: "/orders/{params.id}", required: true, timeoutMs: 300 },
 *   } }],
 * });
 * ```
 */
export function parseConfig(json: unknown, source?: string): AggregateConfig {
  const issues = configIssues(json);
  if (issues.length > 0) throw new ConfigError(issues, source);
  return json as AggregateConfig;
}

/**
 * A zod issue path as JSON path text: `["endpoints", 2, "branches", "x"]` →
 * `endpoints[2].branches.x`.
 *
 * @example
 * ```ts
 * import { jsonPath } from "./config.ts";
 * jsonPath(["endpoints", 0, "branches", "customer", "needs", 0]); // "endpoints[0].branches.customer.needs[0]"
 * ```
 */
export function jsonPath(path: readonly PropertyKey[]): string {
  let text = "";
  for (const key of path) {
    if (typeof key === "number") text += `[${key}]`;
    else if (typeof key === "string" && NAME.test(key) || key === "$schema") {
      text += text === "" ? String(key) : `.${String(key)}`;
    } else text += `[${JSON.stringify(String(key))}]`;
  }
  return text === "" ? "(root)" : text;
}

/**
 * A schema issue in words. zod/mini says only "Invalid input" unless a locale is loaded, and
 * the English locale would weigh on the Worker bundle: these few cases are all the config needs.
 */
function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.message !== "Invalid input") return issue.message;
  const got = "input" in issue ? describeValue(issue.input) : "another value";
  switch (issue.code) {
    case "invalid_type": {
      const expected = issue.expected === "record" ? "object" : issue.expected;
      return got === "missing"
        ? `is required (${expected})`
        : `must be ${article(expected)}: current value is ${got}`;
    }
    case "too_small":
      return issue.origin === "array"
        ? `must have at least ${issue.minimum} element(s)`
        : `must be at least ${issue.minimum}: current value is ${got}`;
    case "too_big":
      return issue.origin === "array"
        ? `must have at most ${issue.maximum} element(s)`
        : `must be at most ${issue.maximum}: current value is ${got}`;
    case "unrecognized_keys":
      return `unknown field(s) ${issue.keys.map((key) => JSON.stringify(key)).join(", ")}`;
    case "invalid_key":
      return `has an invalid name ${got}: ${issue.issues.map((i) => i.message).join("; ")}`;
    case "invalid_format":
      return `must be a valid ${issue.format}: current value is ${got}`;
    default:
      return `is invalid: current value is ${got}`;
  }
}

function describeValue(value: unknown): string {
  if (value === undefined) return "missing";
  const text = JSON.stringify(value);
  return text === undefined ? typeof value : text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function crossIssues(config: AggregateConfig): string[] {
  const issues: string[] = [];
  const downstreams = new Set([DEFAULT_DOWNSTREAM, ...Object.keys(config.downstreams ?? {})]);
  if (config.product !== undefined) issues.push(...productIssues(config.product, downstreams));
  const routes = new Map<string, number>();
  const names = new Map<string, number>();
  config.endpoints.forEach((endpoint, e) => {
    const at = `endpoints[${e}]`;
    // Hono matches "/a/:x" and "/a/:y" alike: a route is its shape, parameter names aside.
    const shape = endpoint.route.replace(/:[A-Za-z0-9_]+/g, ":");
    if (routes.has(shape)) {
      issues.push(
        `${at}.route: same route as endpoints[${routes.get(shape)}]: "${endpoint.route}"`,
      );
    } else routes.set(shape, e);
    if (names.has(endpoint.name)) {
      issues.push(
        `${at}.name: same name as endpoints[${names.get(endpoint.name)}]: "${endpoint.name}"`,
      );
    } else names.set(endpoint.name, e);
    const params = new Set([...endpoint.route.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]));
    const headers = new Set(endpoint.headers ?? []);
    const branchNames = Object.keys(endpoint.branches);
    if (branchNames.length === 0) issues.push(`${at}.branches: must declare at least one branch`);
    const groups = new Map<string, string>();
    for (const [branch, spec] of Object.entries(endpoint.branches)) {
      const here = `${at}.branches.${branch}`;
      if (RESERVED.has(branch)) {
        issues.push(
          `${at}.branches: "${branch}" is reserved for templates, name the branch otherwise`,
        );
      }
      const needs = spec.needs ?? [];
      needs.forEach((need, n) => {
        if (!Object.hasOwn(endpoint.branches, need)) {
          issues.push(`${here}.needs[${n}]: unknown branch "${need}"`);
        } else if (needs.indexOf(need) !== n) {
          issues.push(`${here}.needs[${n}]: "${need}" is listed twice`);
        }
      });
      issues.push(...callIssues(here, spec, downstreams));
      if (spec.forEach !== undefined) {
        const [from] = spec.forEach.from.split(".");
        if (!needs.includes(from)) {
          issues.push(`${here}.forEach.from: "${from}" is not in needs`);
        }
      }
      if (spec.internal !== true) {
        const group = spec.group ?? branch;
        if (groups.has(group)) {
          issues.push(`${here}.group: "${group}" is also the group of branch ${groups.get(group)}`);
        } else groups.set(group, branch);
      }
      let placeholders: readonly Placeholder[] = [];
      try {
        placeholders = parseTemplate(spec.path).placeholders;
      } catch (error) {
        issues.push(`${here}.path: ${(error as Error).message}`);
      }
      for (const placeholder of placeholders) {
        const problem = placeholderProblem(placeholder, {
          params,
          headers,
          needs,
          forEach: spec.forEach !== undefined,
        });
        if (problem !== undefined) issues.push(`${here}.path: {${placeholder.text}} ${problem}`);
      }
    }
    const index = new Map(branchNames.map((name, i) => [name, i]));
    const needIndexes = branchNames.map((name) =>
      (endpoint.branches[name].needs ?? []).flatMap((need) =>
        index.has(need) ? [index.get(need)!] : []
      )
    );
    const cycle = findCycle(needIndexes);
    if (cycle !== undefined) {
      issues.push(
        `${at}.branches: needs form a cycle: ${cycle.map((i) => branchNames[i]).join(" → ")}`,
      );
    }
  });
  return issues;
}

/**
 * Query parameters every endpoint reads itself: no template may (nor `fault.<branch>`, which a
 * placeholder cannot name, being one word).
 */
const GATEWAY_QUERY = new Set(["budget", "policy"]);

function placeholderProblem(
  { source, name }: Placeholder,
  context: { params: Set<string>; headers: Set<string>; needs: string[]; forEach: boolean },
): string | undefined {
  switch (source) {
    case "params":
      return context.params.has(name) ? undefined : `names no parameter of the route`;
    case "headers":
      return context.headers.has(name)
        ? undefined
        : `names a header not listed in the endpoint's headers`;
    case "query":
      return GATEWAY_QUERY.has(name)
        ? `names the gateway's own query parameter "${name}"`
        : undefined;
    case "item":
      return context.forEach ? undefined : `needs forEach on the branch`;
    case "need":
      return context.needs.includes(name) ? undefined : `names "${name}", which is not in needs`;
    default:
      return undefined;
  }
}

/**
 * What any declared call (an endpoint's branch or the product page's) may not do, at JSON path
 * `here`: call an undeclared downstream, or repeat a call that is not idempotent.
 */
function callIssues(
  here: string,
  spec: Pick<BranchConfig, "downstream" | "idempotent" | "hedge" | "retry">,
  downstreams: ReadonlySet<string>,
): string[] {
  const issues: string[] = [];
  const downstream = spec.downstream ?? DEFAULT_DOWNSTREAM;
  if (!downstreams.has(downstream)) {
    issues.push(
      `${here}.downstream: unknown downstream "${downstream}" (declare it in downstreams)`,
    );
  }
  for (const repeat of ["hedge", "retry"] as const) {
    if (spec[repeat] !== undefined && spec.idempotent === false) {
      issues.push(`${here}.${repeat}: a ${repeat} repeats the call, which needs idempotent: true`);
    }
  }
  return issues;
}

/** What the product page's branches may not do: only `{params.id}` fills their paths. */
function productIssues(product: ProductConfig, downstreams: ReadonlySet<string>): string[] {
  const issues: string[] = [];
  if (Object.keys(product.branches).length === 0) {
    issues.push("product.branches: must declare at least one branch");
  }
  for (const [branch, spec] of Object.entries(product.branches)) {
    const here = `product.branches.${branch}`;
    issues.push(...callIssues(here, spec, downstreams));
    try {
      for (const { source, name, text } of parseTemplate(spec.path).placeholders) {
        if (source !== "params" || name !== "id") {
          issues.push(
            `${here}.path: {${text}} cannot be filled: the product page has only {params.id}`,
          );
        }
      }
    } catch (error) {
      issues.push(`${here}.path: ${(error as Error).message}`);
    }
  }
  return issues;
}
