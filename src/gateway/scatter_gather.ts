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
  DeadlineError,
  type FailurePolicy,
  fanOut,
  type FanOutResult,
  isBranchError,
  isDeadlineError,
  type Timers,
} from "../executor/mod.ts";
import { type BranchCall, BranchDeadlines } from "./_branch_deadlines.ts";
import { RequestTimers } from "./_request_timers.ts";
import type { BranchRegistry, BranchSpec } from "./branch_registry.ts";
import {
  type BranchResultKind,
  type GatewayMetrics,
  hedgeMetrics,
  retryMetrics,
} from "./gateway_metrics.ts";
import { enterCircuit, guardedCall, type GuardEvents } from "./branch_resilience.ts";
import { type Attempts, type CircuitTicket, isCircuitOpenError } from "../resilience/mod.ts";
import { hedge, type SpareCapacity } from "../hedging/mod.ts";
import { AnswerError, cancelBody, DownstreamError, readAnswer } from "./read_answer.ts";
import { isAdmissionRejectedError, isPermitDeadlineError, type Limiter } from "../limits/mod.ts";
import type { RequestTrace, TraceHeaders } from "../tracing/mod.ts";
import {
  type AttemptKind,
  type AttemptSpan,
  type BranchRecord,
  BranchSpans,
} from "./_branch_spans.ts";

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

export { DownstreamError };

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
  /**
   * Longest an optional branch waits for a permit of `limiter`, in ms, before it is skipped;
   * {@linkcode OPTIONAL_WAIT_MS} by default. A required branch waits until its deadline: the
   * answer is worthless without it. An optional one that waits holds the whole answer back
   * (best effort waits for every branch) and queues ahead of other requests' required branches,
   * so past the ceiling's capacity every answer would be late and few complete; skipped at once,
   * it leaves its permits to them, and answers lose an optional part instead.
   */
  optionalWaitMs?: number;
  /**
   * The request's place in its distributed trace (`startRequestTrace`): every downstream call
   * carries a `traceparent` descending from it, and, when its span records, each branch and each
   * attempt gets a span of its own. No trace headers are sent without it.
   */
  trace?: RequestTrace;
}

/**
 * How long an optional branch waits for a ceiling permit by default, in ms: a short burst
 * passes, a saturated ceiling sheds optional work first. `exp:overload-steps --capacity=1150
 * --multipliers=1,4` read 99 and 127 % of capacity with it (b197bef), 70 and 71 % without.
 *
 * @example
 * ```ts
 * import { OPTIONAL_WAIT_MS } from "./scatter_gather.ts";
 * OPTIONAL_WAIT_MS; // 10
 * ```
 */
export const OPTIONAL_WAIT_MS = 10;

/**
 * One branch of one request as it went, its answer with it; every field is set by the time it is
 * reported.
 */
interface Trace extends BranchRecord {
  value: unknown;
}

/** A trace with every field present from the start, so that all traces share one shape. */
function newTrace(): Trace {
  return {
    startMs: undefined,
    endMs: undefined,
    deadlineMs: undefined,
    attempts: undefined,
    hedged: undefined,
    retries: undefined,
    winner: undefined,
    outcome: undefined,
    reason: undefined,
    value: undefined,
  };
}

/** What every request over one registry shares, worked out once per registry. */
interface Plan {
  /** Whether any branch is hedged. */
  hedged: boolean;
  /** Whether any branch is retried. */
  retried: boolean;
  /** The shortest own time limit of any branch. */
  leadMs: number;
}

const plans = new WeakMap<BranchRegistry, Plan>();

function planOf(registry: BranchRegistry): Plan {
  let plan = plans.get(registry);
  if (plan === undefined) {
    plan = {
      hedged: registry.some((spec) => spec.hedge !== undefined),
      retried: registry.some((spec) => spec.retry !== undefined),
      leadMs: Math.min(...registry.map((spec) => spec.timeoutMs)),
    };
    plans.set(registry, plan);
  }
  return plan;
}

/**
 * Calls every branch of `registry` for `id` with at most `limit` in flight, then reports.
 *
 * Each branch gets a signal of its own that aborts at the earliest of the request's signal and
 * the branch's own `timeoutMs`, when that ends before the request's budget does; one listener
 * and one timer serve all branches of a request, and each downstream call settles as soon as its
 * signal aborts, whether or not the downstream heeds it. Each downstream request carries the
 * branch's remaining time in {@linkcode BUDGET_HEADER}. Every response that is not used (late,
 * non-2xx, or arriving after an abort) has its body cancelled.
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
    optionalWaitMs = OPTIONAL_WAIT_MS,
    trace,
  }: GatherOptions,
): Promise<GatherReport> {
  if (!(optionalWaitMs >= 0)) {
    throw new RangeError(
      `Cannot gather as 'optionalWaitMs' must be a number of ms of at least 0: current value is ${optionalWaitMs}`,
    );
  }
  const plan = planOf(registry);
  // Spans only for a request whose span records; otherwise every call sends the request's headers.
  const spans = BranchSpans.of(trace, registry, { origin, describe });
  const traceHeaders = trace?.headers;
  const traces: Trace[] = [];
  for (let i = 0; i < registry.length; i++) traces.push(newTrace());
  // Every timeout of this request (branch deadlines, hedge delays) on one timer.
  const timers = new RequestTimers();
  const deadlines = new BranchDeadlines({ leadMs: plan.leadMs, signal, timers });
  let sealed = false;
  // A full admission queue aborts every branch and rejects the gather with its error.
  let rejected: { error: unknown } | undefined;
  const inFlight = metrics?.branchesInFlight;
  const hedges = plan.hedged && metrics !== undefined ? hedgeMetrics(metrics.registry) : undefined;
  const retries = plan.retried && metrics !== undefined
    ? retryMetrics(metrics.registry)
    : undefined;
  // Calls of this request in flight, hedges included: a hedge must not open a connection
  // beyond `limit` (on Workers, the seventh would wait where no deadline sees it).
  let calls = 0;
  const seats: SpareCapacity | undefined = plan.hedged
    ? {
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
    }
    : undefined;

  const admit = async (spec: BranchSpec, context: BranchContext, call: BranchCall) => {
    const askedAt = performance.now();
    const ownDeadline = Math.min(askedAt + spec.timeoutMs, context.deadline);
    const optionalDeadline = spec.required ? Infinity : askedAt + optionalWaitMs;
    const deadline = Math.min(ownDeadline, optionalDeadline);
    try {
      const permit = await limiter!.acquire(1, { signal: call.signal, deadline });
      spans?.permitted(context.index, performance.now() - askedAt);
      return permit;
    } catch (error) {
      if (!sealed && !context.aborted && rejected === undefined) {
        if (isPermitDeadlineError(error)) {
          traces[context.index].outcome = "skipped";
          traces[context.index].reason = optionalDeadline < ownDeadline
            ? `skipped: optional, no permit within ${optionalWaitMs} ms`
            : "skipped: no permit before the branch's deadline";
        } else if (isAdmissionRejectedError(error)) {
          rejected = { error };
          deadlines.abortAll(error);
        }
      }
      throw error;
    }
  };

  const callTraced = async (spec: BranchSpec, context: BranchContext): Promise<unknown> => {
    if (rejected !== undefined) throw rejected.error;
    spans?.started(context.index, { budgetLeftMs: context.deadline - performance.now() });
    // An open breaker fails the branch here: no permit taken, no request sent.
    const ticket = enterBranchCircuit(spec, context);
    const call = deadlines.open(context.index);
    try {
      if (limiter === undefined) return await callAdmitted(spec, context, call, ticket);
      // A free permit is taken at once; only a branch that must wait reads its deadline.
      let permit: { release(): unknown } | undefined = limiter.tryAcquire?.();
      if (permit !== undefined) spans?.permitted(context.index, 0);
      else {
        try {
          permit = await admit(spec, context, call);
        } catch (error) {
          ticket?.release();
          throw error;
        }
      }
      try {
        return await callAdmitted(spec, context, call, ticket);
      } finally {
        await permit.release();
      }
    } finally {
      deadlines.end(call);
    }
  };

  const enterBranchCircuit = (spec: BranchSpec, context: BranchContext) => {
    try {
      return enterCircuit(spec.name, spec.breaker);
    } catch (error) {
      traces[context.index].outcome = "circuit-open";
      traces[context.index].reason = "circuit-open";
      throw error;
    }
  };

  const callAdmitted = async (
    spec: BranchSpec,
    context: BranchContext,
    call: BranchCall,
    ticket: CircuitTicket | undefined,
  ): Promise<unknown> => {
    const trace = traces[context.index];
    const startedAt = performance.now();
    const ownDeadline = startedAt + spec.timeoutMs;
    const deadline = Math.min(ownDeadline, context.deadline);
    trace.startMs = startedAt - origin;
    trace.deadlineMs = deadline - origin;
    // Only a branch whose own limit ends first needs a deadline of its own.
    if (ownDeadline < context.deadline) {
      deadlines.arm(call, { deadline: ownDeadline, timeoutMs: spec.timeoutMs });
    }
    calls++;
    try {
      const url = branchUrl(spec, id, query);
      const name = spec.name;
      const hedging = seats !== undefined && spec.hedge !== undefined && spec.idempotent
        ? {
          seats,
          timers,
          onHedge: () => {
            if (!sealed) {
              trace.attempts = trace.attempts! + 1;
              trace.hedged = true;
            }
            hedges?.sent.inc({ branch: name });
          },
          onDeclined: (reason: string) => hedges?.declined.inc({ branch: name, reason }),
        }
        : undefined;
      if (hedging !== undefined || spec.retry !== undefined) trace.attempts = 1;
      const guard = spec.breaker === undefined && spec.retry === undefined ? undefined : {
        ticket,
        onRetry: (attempt: number) => {
          if (!sealed) {
            trace.attempts = attempt;
            trace.retries = (trace.retries ?? 0) + 1;
          }
          retries?.sent.inc({ branch: name });
        },
        onRetryDeclined: (reason: string) => retries?.declined.inc({ branch: name, reason }),
      };
      // A branch with neither hedges nor a guard is one attempt, called without the closures
      // and async steps that hedges and retries need.
      const { value, winner, hedgeWon } = hedging === undefined && guard === undefined
        ? {
          value: await callOnce(spec, url, call.signal, {
            deadline,
            call,
            traceHeaders,
            span: spans?.attempt(context.index, { n: 1, kind: "primary", hedged: false }),
          }),
          winner: 1,
          hedgeWon: false,
        }
        : await callBranch(spec, url, {
          context,
          call,
          deadline,
          hedging,
          guard,
          traceHeaders,
          spans,
        });
      if (hedgeWon) hedges?.won.inc({ branch: name });
      // A branch the fan-out gave up on an instant before its answer came is reported as the
      // fan-out accounts for it.
      if (!sealed && !context.aborted) {
        trace.outcome = "ok";
        trace.value = value;
        trace.winner = winner;
        trace.endMs = performance.now() - origin;
      }
      return value;
    } catch (error) {
      // A branch cut by the request itself (budget, failFast, client, admission) is classified
      // from the fan-out's own account once it settles, not from whatever its fetch threw.
      if (!sealed && !context.aborted && rejected === undefined) {
        classify(trace, error);
        trace.endMs = performance.now() - origin;
      }
      throw error;
    } finally {
      calls--;
    }
  };

  let result: FanOutResult<unknown> | undefined;
  let decidedBy: GatherReport["decidedBy"];
  // What cut the branches still running once the fan-out settled: its whole-call deadline, the
  // failure that decided a failFast call, the client's abort, or a full admission queue.
  let cut: unknown;
  try {
    result = await fanOut(registry, callTraced, {
      policy,
      budgetMs,
      limit,
      signal,
      timers,
      hooks: inFlight && {
        onStart: () => inFlight.inc(),
        onSettle: (_index, outcome) => outcome !== "skipped" && inFlight.dec(),
      },
    });
  } catch (error) {
    if (rejected === undefined && isBranchError(error) && error.partial !== undefined) {
      result = error.partial as FanOutResult<unknown>;
      decidedBy = { kind: "branch", branch: registry[error.index].name };
    } else if (rejected === undefined && isDeadlineError(error) && error.partial !== undefined) {
      result = error.partial as FanOutResult<unknown>;
      decidedBy = { kind: "budget" };
    } else {
      rejected ??= { error };
    }
    cut = error;
  } finally {
    sealed = true;
    deadlines.close(() => cut ?? new DeadlineError(budgetMs));
    timers.close();
  }
  if (rejected !== undefined) {
    settleUnfinished(traces, new Map(), performance.now() - origin);
    spans?.finish(traces);
    record(metrics, registry, traces);
    throw rejected.error;
  }
  const abandoned = new Map(result!.abandoned.map(({ index, reason }) => [index, reason]));
  settleUnfinished(traces, abandoned, performance.now() - origin);
  spans?.finish(traces);
  record(metrics, registry, traces);
  return report(registry, traces, decidedBy);
}

/**
 * The URL of `spec`'s call for `id`: its path under its fetcher's `origin` (by default
 * {@linkcode DOWNSTREAM_ORIGIN}), with the request's extra query parameters (which replace those
 * of the same name in the path).
 */
function branchUrl(
  spec: BranchSpec,
  id: string,
  query: GatherOptions["query"],
): string {
  const path = spec.path(id);
  const extra = query?.(spec.name);
  // A path that is not rooted is resolved by the fetcher against its own base.
  if (!path.startsWith("/")) return withQuery(new URL(path, DOWNSTREAM_ORIGIN), extra);
  const url = (spec.fetcher.origin ?? DOWNSTREAM_ORIGIN) + path;
  // The common case, no extra parameters, needs no URL object.
  return extra === undefined || isEmpty(extra) ? url : withQuery(new URL(url), extra);
}

function withQuery(url: URL, extra: Record<string, string> | undefined): string {
  for (const name in extra) url.searchParams.set(name, extra[name]);
  return url.href;
}

function isEmpty(record: Record<string, string>): boolean {
  for (const _ in record) return false;
  return true;
}

/** How a hedged branch sends its hedges and reports them. */
interface Hedging {
  /** The request's seats and the limiter's spare capacity together. */
  seats: SpareCapacity;
  /** The request's timers, where each hedge's delay is set. */
  timers: Timers;
  onHedge(attempt: number): void;
  onDeclined(reason: string): void;
}

/** What {@linkcode callBranch} needs besides the branch and its URL. */
interface BranchCallOptions {
  context: BranchContext;
  /** The branch's own signal and race. */
  call: BranchCall;
  /** The earliest of the branch's own deadline and the request's. */
  deadline: number;
  hedging: Hedging | undefined;
  guard: (GuardEvents & { ticket?: CircuitTicket }) | undefined;
  /** The request's trace headers, sent by every attempt that has no span of its own. */
  traceHeaders: TraceHeaders | undefined;
  /** The request's branch spans, when its span records. */
  spans: BranchSpans | undefined;
}

/**
 * One branch: send the request (hedged when `hedging` is given, through its breaker and retries
 * when `guard` is), wait under the branch's deadline, parse the JSON. A hedge or a retry carries
 * `attempt=<n - 1>`, so the simulated downstream draws it a latency of its own.
 */
async function callBranch(
  spec: BranchSpec,
  url: string,
  { context, call, deadline, hedging, guard, traceHeaders, spans }: BranchCallOptions,
): Promise<{ value: unknown; winner?: number; hedgeWon?: boolean }> {
  const signal = call.signal;
  const index = context.index;
  // One try: a single call, or a hedged one whose extra attempts come out of `attempts`.
  const once = async (trySignal: AbortSignal, attempts?: Attempts) => {
    // Attempt numbers run on across retries and hedges, so each one redraws downstream.
    const first = attempts === undefined ? 1 : attempts.sent;
    const urlOf = (n: number) => {
      if (n === 1) return url;
      const again = new URL(url);
      again.searchParams.set("attempt", String(n - 1));
      return again.href;
    };
    const kind: AttemptKind = first === 1 ? "primary" : "retry";
    if (hedging === undefined || spec.hedge === undefined) {
      const value = await callOnce(spec, urlOf(first), trySignal, {
        deadline,
        call,
        traceHeaders,
        span: spans?.attempt(index, { n: first, kind, hedged: false }),
      });
      return { value, winner: first };
    }
    const { value, winner } = await hedge((attemptSignal, attempt) => {
      if (attempt > 1) attempts?.take();
      const n = attempt === 1 ? first : attempts?.sent ?? attempt;
      return callOnce(spec, urlOf(n), attemptSignal, {
        deadline,
        call,
        traceHeaders,
        span: spans?.attempt(index, { n, kind: attempt === 1 ? kind : "hedge", hedged: true }),
      });
    }, {
      ...spec.hedge,
      maxAttempts: attempts === undefined
        ? spec.hedge.maxAttempts
        : Math.min(spec.hedge.maxAttempts ?? 2, attempts.left + 1),
      signal: trySignal,
      spare: hedging.seats,
      timers: hedging.timers,
      onHedge: hedging.onHedge,
      onDeclined: hedging.onDeclined,
    });
    return { value, winner: first - 1 + winner, hedgeWon: winner > 1 };
  };
  if (guard === undefined) return await once(signal);
  return await guardedCall(
    { ...spec, hedgeMaxAttempts: spec.hedge?.maxAttempts },
    once,
    { ...guard, signal, deadline, requestSignal: context.signal },
  );
}

/**
 * One attempt: the downstream's JSON, with what is left until `deadline` in its budget header
 * and the trace headers of its own span (or of the request). It settles as soon as `signal`
 * aborts when `signal` is the branch's (through the branch's own race), or when the attempt has
 * a span; a hedge's attempt otherwise settles when its downstream call does.
 */
function callOnce(
  spec: BranchSpec,
  url: string,
  signal: AbortSignal,
  { deadline, call, traceHeaders, span }: {
    deadline: number;
    call: BranchCall;
    traceHeaders: TraceHeaders | undefined;
    span: AttemptSpan | undefined;
  },
): Promise<unknown> {
  const work = fetchJson(spec, url, signal, {
    deadline,
    traceHeaders: span?.headers ?? traceHeaders,
  });
  if (signal === call.signal) {
    const raced = call.race(work);
    return span === undefined ? raced : span.watch(raced, signal);
  }
  // A hedge's attempt: `hedge` settles the race itself when its caller aborts and drops a
  // loser's late answer, so only a span, which ends when its attempt is cut, needs the attempt
  // to settle at its abort; a listener per attempt is not free (Bun's addEventListener).
  return span === undefined ? work : span.watch(abortable(work, signal, () => {}), signal);
}

/**
 * Sends the request and reads the answer through `readAnswer` (status, content type, size,
 * depth, shape checked). It keeps going after `signal` aborts only as far as the downstream
 * does, and then cancels a response that arrives late.
 */
async function fetchJson(
  spec: BranchSpec,
  url: string,
  signal: AbortSignal,
  { deadline, traceHeaders }: { deadline: number; traceHeaders: TraceHeaders | undefined },
): Promise<unknown> {
  const remainingMs = Math.max(0, Math.floor(deadline - performance.now()));
  // Identity: a compressed answer's size says nothing of what it inflates to.
  const headers: Record<string, string> = {
    [BUDGET_HEADER]: String(remainingMs),
    accept: "application/json",
    "accept-encoding": "identity",
  };
  if (traceHeaders !== undefined) {
    headers.traceparent = traceHeaders.traceparent;
    if (traceHeaders.tracestate !== undefined) headers.tracestate = traceHeaders.tracestate;
  }
  const request = new Request(url, {
    headers,
    // Never followed: a redirect's target is whatever the downstream says, an internal URL too.
    redirect: "manual",
    signal,
  });
  const response = await spec.fetcher.fetch(request);
  if (signal.aborted) {
    cancelBody(response);
    throw signal.reason;
  }
  return await readAnswer(response, spec, signal);
}

/** What {@linkcode classify} makes of `error`, for an attempt's span. */
function describe(error: unknown): { outcome: BranchResultKind; reason: string } {
  const trace = newTrace();
  classify(trace, error);
  return { outcome: trace.outcome!, reason: trace.reason! };
}

function classify(trace: Trace, error: unknown): void {
  if (
    error instanceof BranchTimeoutError ||
    error instanceof DownstreamError && error.status === 504
  ) {
    trace.outcome = "timeout";
    trace.reason = "timeout";
    return;
  }
  trace.outcome = "error";
  if (error instanceof AnswerError) {
    trace.reason = error.reason;
  } else if (
    error instanceof DownstreamError || isCircuitOpenError(error) ||
    (error as Error)?.name === "BulkheadRejectedError"
  ) {
    // The gateway's own words (a bulkhead's error by name: bulkheads.ts imports this module).
    trace.reason = `error: ${(error as Error).message}`;
  } else {
    // Anything else came from a fetcher (a reset, a refused connection, a parser of the
    // runtime's): its message may quote the downstream or name internal hosts, so only its
    // class is told.
    trace.reason = `error: request failed (${error instanceof Error ? error.name : typeof error})`;
  }
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
      trace.outcome = "skipped";
      trace.reason = "skipped";
      return;
    }
    const timedOut = abandoned.get(index) === "deadline";
    trace.outcome = timedOut ? "timeout" : "aborted";
    trace.reason = timedOut ? "timeout" : "aborted";
    trace.endMs = nowMs;
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
      const branch: BranchReport = { outcome: outcome!, reason, startMs, endMs, deadlineMs };
      if (attempts !== undefined) {
        if (hedge !== undefined) branch.hedged = hedged === true;
        branch.attempts = attempts;
        if (retries !== undefined) branch.retries = retries;
        if (outcome === "ok") branch.winner = winner ?? 1;
      }
      gathered.branches[name] = branch;
      if (outcome === "ok") gathered.data[name] = value;
      else if (required) gathered.failedRequired.push(name);
    },
  );
  if (decidedBy !== undefined) gathered.decidedBy = decidedBy;
  return gathered;
}
