/**
 * Fault injection through the gateway, a testing aid: a caller of `GET /product/:id` or of an
 * aggregation endpoint can ask the simulated downstream (`routes/downstream.ts`) to fail or slow
 * one branch of this one request (every call of a `forEach` branch).
 *
 * | gateway query          | sent on that branch's downstream call | effect                      |
 * |------------------------|---------------------------------------|-----------------------------|
 * | `fault.<branch>=fail`  | `fail=1`                              | the branch answers 500      |
 * | `fault.<branch>=slow`  | `latencyMs=10000`                     | only a deadline can end it  |
 * | `fault.<branch>=slow:N`| `latencyMs=N` (N in 0–10000)          | the branch takes N ms       |
 * | `fault.errorRate=R`    | `errorRate=R` on every branch (R in [0, 1]) | each call fails with probability R |
 *
 * `<branch>` is a branch of the gateway's registry (an endpoint's: a branch of its config); any
 * other `fault.` field is a 400 naming it.
 * A real downstream ignores these parameters.
 *
 * @module
 */
import * as z from "zod/mini";

/** Prefix of every fault field of the gateway's query. */
const PREFIX = "fault.";
/** The error-rate field, for every branch at once. */
const ERROR_RATE = `${PREFIX}errorRate`;
/** What plain `slow` sleeps: the largest budget a request can have, so a deadline always cuts it. */
const SLOW_MS = 10_000;

/** One branch's fault, as parsed. */
type BranchFault = { fail: true } | { latencyMs: number };

const branchFault = z.pipe(
  z.string().check(z.regex(/^(fail|slow|slow:\d{1,5})$/, "must be fail, slow or slow:<ms>")),
  z.transform((text: string): BranchFault =>
    text === "fail" ? { fail: true } : { latencyMs: Number(text.split(":")[1] ?? SLOW_MS) }
  ),
).check(
  z.refine((fault) => !("latencyMs" in fault) || fault.latencyMs <= SLOW_MS, {
    message: `slow:<ms> must be at most ${SLOW_MS} ms`,
  }),
);

const errorRate = z.pipe(
  z.pipe(
    z.string().check(z.regex(/^\d+(\.\d+)?$/, "must be a decimal number in [0, 1]")),
    z.transform(Number),
  ),
  z.number().check(z.maximum(1, "must be a decimal number in [0, 1]")),
);

/**
 * The zod shape of the fault fields for a registry's branches, to spread into the gateway's
 * query schema (a loose object, so that {@linkcode rejectUnknownFaults} sees unknown fields).
 *
 * @example
 * ```ts
 * import * as z from "zod/mini";
 * import { faultFields, rejectUnknownFaults } from "./faults.ts";
 *
 * const names = ["price", "reviews"];
 * const query = z.looseObject({ ...faultFields(names) })
 *   .check(z.superRefine(rejectUnknownFaults(names)));
 * query.parse({ "fault.reviews": "fail" }); // { "fault.reviews": { fail: true } }
 * ```
 */
export function faultFields(branchNames: readonly string[]) {
  const branches = Object.fromEntries(
    branchNames.map((name) => [`${PREFIX}${name}`, z.optional(branchFault)]),
  );
  return { ...branches, [ERROR_RATE]: z.optional(errorRate) };
}

/**
 * A zod `superRefine` function adding an issue for every `fault.` field that names no branch of
 * `branchNames`.
 *
 * @example
 * ```ts
 * import * as z from "zod/mini";
 * import { rejectUnknownFaults } from "./faults.ts";
 *
 * const query = z.looseObject({}).check(z.superRefine(rejectUnknownFaults(["price"])));
 * query.safeParse({ "fault.prize": "fail" }).success; // false: the issue's path is "fault.prize"
 * ```
 */
export function rejectUnknownFaults(branchNames: readonly string[]) {
  const known = new Set([...branchNames.map((name) => `${PREFIX}${name}`), ERROR_RATE]);
  return function checkFaultNames(
    query: Record<string, unknown>,
    ctx: z.core.$RefinementCtx<Record<string, unknown>>,
  ): void {
    for (const field of Object.keys(query)) {
      if (field.startsWith(PREFIX) && !known.has(field)) {
        ctx.addIssue({
          code: "custom",
          path: [field],
          message: `names no branch: expected fault.<branch> with a branch of ${
            branchNames.join(", ")
          }, or fault.errorRate`,
        });
      }
    }
  };
}

/**
 * The downstream query parameters each branch's call needs for the faults of a parsed query,
 * or `undefined` when the query asks for none (then calls go out unchanged).
 *
 * @example
 * ```ts
 * import { downstreamFaults } from "./faults.ts";
 *
 * const query = downstreamFaults({ "fault.reviews": { fail: true }, "fault.errorRate": 0.1 });
 * query?.("reviews"); // { errorRate: "0.1", fail: "1" }
 * query?.("price"); // { errorRate: "0.1" }
 * ```
 */
export function downstreamFaults(
  parsed: Record<string, unknown>,
): ((branch: string) => Record<string, string>) | undefined {
  const rate = parsed[ERROR_RATE] as number | undefined;
  const byBranch = new Map<string, BranchFault>();
  for (const [field, value] of Object.entries(parsed)) {
    if (field.startsWith(PREFIX) && field !== ERROR_RATE && value !== undefined) {
      byBranch.set(field.slice(PREFIX.length), value as BranchFault);
    }
  }
  if (rate === undefined && byBranch.size === 0) return undefined;
  return function faultQuery(branch: string): Record<string, string> {
    const query: Record<string, string> = {};
    if (rate !== undefined) query.errorRate = String(rate);
    const fault = byBranch.get(branch);
    if (fault !== undefined && "fail" in fault) query.fail = "1";
    if (fault !== undefined && "latencyMs" in fault) query.latencyMs = String(fault.latencyMs);
    return query;
  };
}
