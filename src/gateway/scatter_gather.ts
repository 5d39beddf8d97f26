/**
 * `scatterGather`: call every branch of a registry for one id through `fanOut`, each under its
 * own deadline, and report per branch what came back and why not.
 *
 * @module
 */
import {
  abortable,
  type BranchContext,
  BranchTimeoutError,
  childSignal,
  type FailurePolicy,
  fanOut,
  type FanOutResult,
  isBranchError,
  isDeadlineError,
} from "../executor/mod.ts";
import type { BranchRegistry, BranchSpec } from "./branch_registry.ts";
import {
  type BranchResultKind,
  type GatewayMetrics,
  hedgeMetrics,
  retryMetrics,
} from "./gateway_metrics.ts";
import { enterCircuit, guardedCall, type GuardEvents } from "./branch_resilience.ts";
import type { Attempts, CircuitTicket } from "../resilience/mod.ts";
import { hedge, type SpareCapacity } from "../hedging/mod.ts";
import {
  isAdmissionRejectedError,
  isPermitDeadlineError,
  type Limiter,
  type Permit,
} from "../limits/mod.ts";

/**
 * Request header carrying the caller's remaining time budget in whole ms. The gateway reads it
 * from its own callers and sends it to every downstream (the simulated downstream uses the same
 * name).
 */
export const BUDGET_HEADER = "x-fanfare-budget-ms";

/**
 * Branches in flight per request by default. Cloudflare's Workers limits page: "Each Worker
 * invocation can have up to six connections simultaneously waiting for response headers"; a
 * seventh is queued by the runtime, where no deadline or skip logic of ours can see it. So the
 * executor queues it instead.
 */
export const WORKERS_CONNECTION_LIMIT = 6;

/** Origin of the requests handed to fetchers: `urlFetcher` rebases it, in-process apps ignore it. */
const DOWNSTREAM_ORIGIN = "http://downstream.internal";

/**
 * A downstream answered with a non-2xx status. A 504 counts as a timeout (the downstream ran
 * out of the budget it was given), any other status as an error.
 *
 * @example
 * ```ts
 * import { DownstreamError } from "./scatter_gather.ts";
 * new DownstreamError("reviews", 500).message; // "Downstream 'reviews' answered 500"
 * ```
 */
export class DownstreamError extends Error {
  /** Branch name. */
  readonly branch: string;
  /** HTTP status the downstream answered. */
  readonly status: number;
  /** The downstream's `Retry-After`, in ms, when it sent one in seconds. */
  readonly retryAfterMs?: number;

  /** Branch `branch` answered `status` (and maybe asked to wait `retryAfterMs`). */
  constructor(branch: string, status: number, retryAfterMs?: number) {
    super(`Downstream '${branch}' answered ${status}`);
    this.name = "DownstreamError";
    this.branch = branch;
    this.status = status;
    if (retryAfterMs !== undefined) this.retryAfterMs = retryAfterMs;
  }
}

/**
 * How one branch of one request went. Times are ms since the request's `origin`; a branch that
 * never started has neither.
 *
 * @example
 * ```ts
 * import type { BranchReport } from "./scatter_gather.ts";
 * const report: BranchReport = { outcome: "timeout", reason: "timeout", startMs: 0.4, endMs: 200.9 };
 * ```
 */
export interface BranchReport {
  /** How it ended. */
  outcome: BranchResultKind;
  /** Why it gave no data: `"timeout"`, `"error: …"`, `"skipped"` or `"aborted"`; absent when ok. */
  reason?: string;
  /** When it started. */
  startMs?: number;
  /** When it ended, or when the request stopped waiting for it. */
  endMs?: number;
  /** When it had to be done: its own timeout or the request's budget, whichever came first. */
  deadlineMs?: number;
  /** Hedged branches only: whether a hedge was sent. */
  hedged?: boolean;
  /** Hedged or retried branches only: attempts sent, the primary included. */
  attempts?: number;
  /** Retried branches only, when retried: how many retries were sent. */
  retries?: number;
  /** Hedged or retried branches only, when ok: which attempt answered, from 1 (the primary). */
  winner?: number;
}

/**
 * What {@linkcode scatterGather} gathered for one id.
 *
 * @example
 * ```ts
 * import type { GatherReport } from "./scatter_gather.ts";
 * const report: GatherReport = {
 *   data: { price: { amountCents: 999 } },
 *   branches: { price: { outcome: "ok", startMs: 0.1, endMs: 3.2 } },
 *   failedRequired: [],
 * };
 * ```
 */
export interface GatherReport {
  /** Parsed JSON of every branch that succeeded, by branch name. */
  data: Record<string, unknown>;
  /** Every branch of the registry, by name. */
  branches: Record<string, BranchReport>;
  /** Required branches that gave no data, in registry order. */
  failedRequired: string[];
  /**
   * failFast only: what ended the request early, either a branch's failure or the budget
   * running out. Absent under the other policies.
   */
  decidedBy?: { kind: "branch"; branch: string } | { kind: "budget" };
}

/**
 * Options of {@linkcode scatterGather}.
 *
 * @example
 * ```ts
 * import type { GatherOptions } from "./scatter_gather.ts";
 * const options: GatherOptions = { policy: "bestEffort", budgetMs: 800 };
 * ```
 */
export interface GatherOptions {
  /** Failure policy of the fan-out; `bestEffort` by default. */
  policy?: FailurePolicy;
  /** The whole request's remaining time in ms. */
  budgetMs: number;
  /** Branches in flight at once; {@linkcode WORKERS_CONNECTION_LIMIT} by default. */
  limit?: number;
  /** Aborting it (the client went away) aborts every branch; the call rejects with its reason. */
  signal?: AbortSignal;
  /** `performance.now()` when the request arrived; the report's times count from it. */
  origin?: number;
  /** Where to record branch outcomes, durations and the in-flight gauge. */
  metrics?: GatewayMetrics;
  /**
   * Extra query parameters of this request's call to a branch, e.g. the simulated downstream's
   * fault settings; they replace parameters of the same name in the branch's own path.
   */
  query?: (branch: string) => Record<string, string> | undefined;
  /**
   * The global limiter's spare capacity: a hedge is sent only when this grants a permit at once.
   * Hedges are also held to the request's own `limit` of calls in flight (primaries and hedges).
   */
  spare?: SpareCapacity;
  /**
   * The global ceiling: each branch takes one permit before calling its downstream and gives it
   * back when the call ends. A branch whose permit would come after its deadline is skipped, not
   * started late; a full admission queue ends the whole gather at once by rejecting with the
   * limiter's `AdmissionRejectedError` (the gateway answers 503 with `Retry-After`).
   */
  limiter?: Limiter;
}

interface Trace {
  startMs?: number;
  endMs?: number;
  deadlineMs?: number;
  attempts?: number;
  hedged?: boolean;
  retries?: number;
  winner?: number;
  outcome?: BranchResultKind;
  reason?: string;
  value?: unknown;
}

/**
 * Calls every branch of `registry` for `id` with at most `limit` in flight, then reports.
 *
 * Each branch gets the request's signal, plus its own timer when its `timeoutMs` ends before
 * the request's budget does (one controller and one timer, disposed when the branch ends).
 * Each downstream request carries the branch's remaining time in {@linkcode BUDGET_HEADER}.
 * Every response that is not used (late, non-2xx, or arriving after an abort) has its body
 * cancelled.
 *
 * Never rejects for a branch's failure (failFast's is reported in `decidedBy`); rejects with the
 * caller's abort reason when `signal` aborts.
 *
 * @example
 * ```ts
 * import { defaultRegistry } from "./branch_registry.ts";
 * import { urlFetcher } from "./fetcher.ts";
 * import { scatterGather } from "./scatter_gather.ts";
 *
 * const registry = defaultRegistry(urlFetcher("http://127.0.0.1:8788/"));
 * const report = await scatterGather(registry, "sku-42", { budgetMs: 1000 });
 * report.failedRequired; // [] when price and inventory answered
 * ```
 */
export async function scatterGather(
  registry: BranchRegistry,
  id: string,
  {
    policy = "bestEffort",
    budgetMs,
    limit = WORKERS_CONNECTION_LIMIT,
    signal,
    origin = performance.now(),
    metrics,
    query,
    spare,
    limiter,
  }: GatherOptions,
): Promise<GatherReport> {
  const traces: Trace[] = registry.map(() => ({}));
  let sealed = false;
  const inFlight = metrics?.branchesInFlight;
  const hedges = registry.some((spec) => spec.hedge !== undefined) && metrics !== undefined
    ? hedgeMetrics(metrics.registry)
    : undefined;
  const retries = registry.some((spec) => spec.retry !== undefined) && metrics !== undefined
    ? retryMetrics(metrics.registry)
    : undefined;
  // Calls of this request in flight, hedges included: a hedge must not open a connection
  // beyond `limit` (on Workers, the seventh would wait where no deadline sees it).
  let calls = 0;
  const seats: SpareCapacity = {
    tryAcquire: function trySeat() {
      if (calls >= limit) return undefined;
      const permit = spare === undefined ? { release() {} } : spare.tryAcquire();
      if (permit === undefined) return undefined;
      calls++;
      let held = true;
      return {
        release() {
          if (held) (calls--, permit.release());
          held = false;
        },
      };
    },
  };

  // A full admission queue aborts every branch and rejects the gather with its error.
  const admission = limiter && new AbortController();
  const admit = async (spec: BranchSpec, context: BranchContext): Promise<Permit> => {
    const deadline = Math.min(performance.now() + spec.timeoutMs, context.deadline);
    try {
      return await limiter!.acquire(1, { signal: context.signal, deadline });
    } catch (error) {
      if (!sealed && !context.signal.aborted) {
        if (isPermitDeadlineError(error)) {
          Object.assign(traces[context.index], {
            outcome: "skipped",
            reason: "skipped: no permit before the branch's deadline",
          });
        } else if (isAdmissionRejectedError(error)) {
          admission!.abort(error);
        }
      }
      throw error;
    }
  };

  const callTraced = async (spec: BranchSpec, context: BranchContext): Promise<unknown> => {
    // An open breaker fails the branch here: no permit taken, no request sent.
    const ticket = enterBranchCircuit(spec, context);
    if (limiter === undefined) return await callAdmitted(spec, context, ticket);
    let permit: Permit;
    try {
      permit = await admit(spec, context);
    } catch (error) {
      ticket?.release();
      throw error;
    }
    try {
      return await callAdmitted(spec, context, ticket);
    } finally {
      await permit.release();
    }
  };

  const enterBranchCircuit = (spec: BranchSpec, context: BranchContext) => {
    try {
      return enterCircuit(spec.name, spec.breaker);
    } catch (error) {
      Object.assign(traces[context.index], { outcome: "circuit-open", reason: "circuit-open" });
      throw error;
    }
  };

  const callAdmitted = async (
    spec: BranchSpec,
    context: BranchContext,
    ticket: CircuitTicket | undefined,
  ): Promise<unknown> => {
    const trace = traces[context.index];
    const startedAt = performance.now();
    trace.startMs = startedAt - origin;
    trace.deadlineMs = Math.min(startedAt + spec.timeoutMs, context.deadline) - origin;
    calls++;
    try {
      const url = new URL(spec.path(id), DOWNSTREAM_ORIGIN);
      for (const [name, value] of Object.entries(query?.(spec.name) ?? {})) {
        url.searchParams.set(name, value);
      }
      const hedging = spec.hedge !== undefined && spec.idempotent
        ? {
          seats,
          onHedge: () => {
            if (!sealed) Object.assign(trace, { attempts: trace.attempts! + 1, hedged: true });
            hedges?.sent.inc({ branch: spec.name });
          },
          onDeclined: (reason: string) => hedges?.declined.inc({ branch: spec.name, reason }),
        }
        : undefined;
      if (hedging !== undefined || spec.retry !== undefined) trace.attempts = 1;
      const guard = spec.breaker === undefined && spec.retry === undefined ? undefined : {
        ticket,
        onRetry: (attempt: number) => {
          if (!sealed) {
            Object.assign(trace, { attempts: attempt, retries: (trace.retries ?? 0) + 1 });
          }
          retries?.sent.inc({ branch: spec.name });
        },
        onRetryDeclined: (reason: string) => retries?.declined.inc({ branch: spec.name, reason }),
      };
      const { value, winner, hedgeWon } = await callBranch(spec, url, context, hedging, guard);
      if (hedgeWon) hedges?.won.inc({ branch: spec.name });
      if (!sealed) {
        Object.assign(trace, { outcome: "ok", value, winner, endMs: performance.now() - origin });
      }
      return value;
    } catch (error) {
      // A branch cut by the request itself (budget, failFast, client) is classified from the
      // fan-out's own account once it settles, not from whatever its fetch threw.
      if (!sealed && !context.signal.aborted) {
        Object.assign(trace, { ...classify(error), endMs: performance.now() - origin });
      }
      throw error;
    } finally {
      calls--;
    }
  };

  let result: FanOutResult<unknown> | undefined;
  let decidedBy: GatherReport["decidedBy"];
  try {
    result = await fanOut(registry, callTraced, {
      policy,
      budgetMs,
      limit,
      signal: admission === undefined
        ? signal
        : signal === undefined
        ? admission.signal
        : AbortSignal.any([signal, admission.signal]),
      hooks: inFlight && {
        onStart: () => inFlight.inc(),
        onSettle: (_index, outcome) => outcome !== "skipped" && inFlight.dec(),
      },
    });
  } catch (error) {
    if (isBranchError(error) && error.partial !== undefined) {
      result = error.partial as FanOutResult<unknown>;
      decidedBy = { kind: "branch", branch: registry[error.index].name };
    } else if (isDeadlineError(error) && error.partial !== undefined) {
      result = error.partial as FanOutResult<unknown>;
      decidedBy = { kind: "budget" };
    } else {
      sealed = true;
      settleUnfinished(traces, new Map(), performance.now() - origin);
      record(metrics, registry, traces);
      throw error;
    }
  }
  sealed = true;
  const abandoned = new Map(result.abandoned.map(({ index, reason }) => [index, reason]));
  settleUnfinished(traces, abandoned, performance.now() - origin);
  record(metrics, registry, traces);
  return report(registry, traces, decidedBy);
}

/** How a hedged branch sends its hedges and reports them. */
interface Hedging {
  /** The request's seats and the limiter's spare capacity together. */
  seats: SpareCapacity;
  onHedge(attempt: number): void;
  onDeclined(reason: string): void;
}

/**
 * One branch: send the request (hedged when `hedging` is given), wait under the branch's
 * deadline, parse the JSON. A hedge carries `attempt=<n - 1>`, so the simulated downstream
 * draws it a latency of its own.
 */
async function callBranch(
  spec: BranchSpec,
  url: URL,
  context: BranchContext,
  hedging: Hedging | undefined,
  guard: (GuardEvents & { ticket?: CircuitTicket }) | undefined,
): Promise<{ value: unknown; winner?: number; hedgeWon?: boolean }> {
  const now = performance.now();
  const ownDeadline = now + spec.timeoutMs;
  // Only a branch whose own limit ends first pays for a controller and a timer.
  const own = ownDeadline < context.deadline
    ? childSignal(
      context.signal,
      spec.timeoutMs,
      new BranchTimeoutError(context.index, spec.timeoutMs),
    )
    : undefined;
  const signal = own?.signal ?? context.signal;
  const deadline = Math.min(ownDeadline, context.deadline);
  // One try: a single call, or a hedged one whose extra attempts come out of `attempts`.
  const once = async (trySignal: AbortSignal, attempts?: Attempts) => {
    // Attempt numbers run on across retries and hedges, so each one redraws downstream.
    const first = attempts === undefined ? 1 : attempts.sent;
    const urlOf = (n: number) => {
      if (n === 1) return url;
      const again = new URL(url);
      again.searchParams.set("attempt", String(n - 1));
      return again;
    };
    if (hedging === undefined || spec.hedge === undefined) {
      return { value: await callOnce(spec, urlOf(first), trySignal, deadline), winner: first };
    }
    const { value, winner } = await hedge((attemptSignal, attempt) => {
      if (attempt > 1) attempts?.take();
      const n = attempt === 1 ? first : attempts?.sent ?? attempt;
      return callOnce(spec, urlOf(n), attemptSignal, deadline);
    }, {
      ...spec.hedge,
      maxAttempts: attempts === undefined
        ? spec.hedge.maxAttempts
        : Math.min(spec.hedge.maxAttempts ?? 2, attempts.left + 1),
      signal: trySignal,
      spare: hedging.seats,
      onHedge: hedging.onHedge,
      onDeclined: hedging.onDeclined,
    });
    return { value, winner: first - 1 + winner, hedgeWon: winner > 1 };
  };
  try {
    if (guard === undefined) return await once(signal);
    return await guardedCall(
      { ...spec, hedgeMaxAttempts: spec.hedge?.maxAttempts },
      once,
      { ...guard, signal, deadline, requestSignal: context.signal },
    );
  } finally {
    own?.dispose();
  }
}

/** One attempt: the downstream's JSON, with what is left until `deadline` in its budget header. */
async function callOnce(
  spec: BranchSpec,
  url: URL,
  signal: AbortSignal,
  deadline: number,
): Promise<unknown> {
  const remainingMs = Math.max(0, Math.floor(deadline - performance.now()));
  const request = new Request(url, {
    headers: { [BUDGET_HEADER]: String(remainingMs), accept: "application/json" },
    signal,
  });
  const response = await abortable(
    Promise.resolve(spec.fetcher.fetch(request)),
    signal,
    cancelBody,
  );
  if (!response.ok) {
    await cancelBody(response);
    throw new DownstreamError(spec.name, response.status, retryAfterMs(response));
  }
  return await abortable(response.json(), signal, () => {});
}

/** `Retry-After` in delay-seconds, as ms; an HTTP date or anything else is ignored. */
function retryAfterMs(response: Response): number | undefined {
  const value = response.headers.get("retry-after");
  return value !== null && /^\d+$/.test(value.trim()) ? Number(value) * 1000 : undefined;
}

function cancelBody(response: Response): Promise<void> {
  return response.body?.cancel().catch(() => {}) ?? Promise.resolve();
}

function classify(error: unknown): Pick<Trace, "outcome" | "reason"> {
  if (error instanceof BranchTimeoutError) return { outcome: "timeout", reason: "timeout" };
  if (error instanceof DownstreamError && error.status === 504) {
    return { outcome: "timeout", reason: "timeout" };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { outcome: "error", reason: `error: ${message}` };
}

/** Branches the fan-out gave up on or never started get their outcome from its account. */
function settleUnfinished(
  traces: Trace[],
  abandoned: Map<number, "budget" | "deadline" | "aborted" | "failFast">,
  nowMs: number,
): void {
  traces.forEach((trace, index) => {
    if (trace.outcome !== undefined) return;
    if (trace.startMs === undefined) {
      Object.assign(trace, { outcome: "skipped", reason: "skipped" });
      return;
    }
    const timedOut = abandoned.get(index) === "deadline";
    Object.assign(trace, {
      outcome: timedOut ? "timeout" : "aborted",
      reason: timedOut ? "timeout" : "aborted",
      endMs: nowMs,
    });
  });
}

function record(
  metrics: GatewayMetrics | undefined,
  registry: BranchRegistry,
  traces: Trace[],
): void {
  if (metrics === undefined) return;
  traces.forEach(({ outcome, startMs, endMs }, index) => {
    const labels = { branch: registry[index].name, outcome: outcome! };
    metrics.branchOutcomes.inc(labels);
    if (startMs !== undefined && endMs !== undefined) {
      metrics.branchDuration.observe(labels, (endMs - startMs) / 1000);
    }
  });
}

function report(
  registry: BranchRegistry,
  traces: Trace[],
  decidedBy: GatherReport["decidedBy"],
): GatherReport {
  const gathered: GatherReport = { data: {}, branches: {}, failedRequired: [] };
  traces.forEach(
    (
      { outcome, reason, startMs, endMs, deadlineMs, value, attempts, hedged, retries, winner },
      index,
    ) => {
      const { name, required, hedge } = registry[index];
      gathered.branches[name] = { outcome: outcome!, reason, startMs, endMs, deadlineMs };
      if (attempts !== undefined) {
        if (hedge !== undefined) gathered.branches[name].hedged = hedged === true;
        gathered.branches[name].attempts = attempts;
        if (retries !== undefined) gathered.branches[name].retries = retries;
        if (outcome === "ok") gathered.branches[name].winner = winner ?? 1;
      }
      if (outcome === "ok") gathered.data[name] = value;
      else if (required) gathered.failedRequired.push(name);
    },
  );
  if (decidedBy !== undefined) gathered.decidedBy = decidedBy;
  return gathered;
}
