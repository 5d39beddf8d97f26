/**
 * The spans of one request's branches: one per branch (from the moment the fan-out starts it to
 * the moment the gateway stops waiting for it, as the waterfall draws it) and, under it, one per
 * attempt sent downstream (primary, hedge or retry), whose id the attempt's `traceparent` names.
 *
 * Made only for a request whose span records: `scatterGather` keeps no `BranchSpans` otherwise
 * and sends every downstream the request's own trace headers, so tracing that is off costs no
 * object per branch.
 *
 * @module
 */
import { type Attributes, type Span, SpanStatusCode, trace } from "@opentelemetry/api";
import {
  hrTimeOf,
  type RequestTrace,
  startChildSpan,
  type TraceHeaders,
  traceHeadersOf,
} from "../tracing/mod.ts";
import type { BranchRegistry } from "./branch_registry.ts";
import type { BranchResultKind } from "./gateway_metrics.ts";

/** How an attempt came to be sent. */
export type AttemptKind = "primary" | "hedge" | "retry";

/** What a branch's report says of it, as `scatterGather` keeps it. */
export interface BranchRecord {
  outcome: BranchResultKind | undefined;
  reason: string | undefined;
  startMs: number | undefined;
  endMs: number | undefined;
  deadlineMs: number | undefined;
  attempts: number | undefined;
  hedged: boolean | undefined;
  retries: number | undefined;
  winner: number | undefined;
}

/** Outcome and reason of a failed attempt, in the gateway's own words. */
export type DescribeFailure = (error: unknown) => { outcome: BranchResultKind; reason: string };

/** One attempt's span and the trace headers its downstream call carries. */
export interface AttemptSpan {
  readonly headers: TraceHeaders;
  /** Ends the span when `work` settles; returns `work`'s outcome unchanged. */
  watch<T>(work: Promise<T>, signal: AbortSignal): Promise<T>;
}

/** Attribute names, in one place: `fanfare.*` for the gateway's own, OTel's for HTTP. */
const A = {
  branch: "fanfare.branch",
  required: "fanfare.branch.required",
  outcome: "fanfare.outcome",
  reason: "fanfare.reason",
  deadline: "fanfare.deadline_ms",
  budgetLeft: "fanfare.budget_left_ms",
  permitWait: "fanfare.permit_wait_ms",
  attempts: "fanfare.attempts",
  attempt: "fanfare.attempt",
  attemptKind: "fanfare.attempt.kind",
  hedged: "fanfare.hedged",
  hedgeRole: "fanfare.hedge.role",
  winner: "fanfare.winner",
  retries: "fanfare.retries",
  skipReason: "fanfare.skip_reason",
} as const;

/**
 * The branch and attempt spans of one request.
 *
 * @example
 * ```ts ignore
 * const spans = BranchSpans.of(requestTrace, registry, { origin, describe });
 * spans?.started(0, { budgetLeftMs: 280 });
 * const attempt = spans?.attempt(0, { n: 1, kind: "primary", hedged: false });
 * ```
 */
export class BranchSpans {
  #trace: RequestTrace;
  #registry: BranchRegistry;
  #origin: number;
  #describe: DescribeFailure;
  #branches: (Span | undefined)[];
  /** Per branch: whether an attempt of a hedged call has won. */
  #won: boolean[];

  /** The spans of a request whose span records; `undefined` for any other. */
  static of(
    trace: RequestTrace | undefined,
    registry: BranchRegistry,
    options: { origin: number; describe: DescribeFailure },
  ): BranchSpans | undefined {
    return trace?.recording ? new BranchSpans(trace, registry, options) : undefined;
  }

  private constructor(
    trace: RequestTrace,
    registry: BranchRegistry,
    { origin, describe }: { origin: number; describe: DescribeFailure },
  ) {
    this.#trace = trace;
    this.#registry = registry;
    this.#origin = origin;
    this.#describe = describe;
    this.#branches = new Array(registry.length).fill(undefined);
    this.#won = new Array(registry.length).fill(false);
  }

  /** Branch `index` was started by the fan-out, with `budgetLeftMs` of the request's budget. */
  started(index: number, { budgetLeftMs }: { budgetLeftMs: number }): void {
    const { name, required } = this.#registry[index];
    this.#branches[index] = startChildSpan(this.#trace, name, {
      attributes: {
        [A.branch]: name,
        [A.required]: required,
        [A.budgetLeft]: microseconds(budgetLeftMs),
      },
    });
  }

  /** Branch `index` got its permit of the global ceiling after `waitMs`. */
  permitted(index: number, waitMs: number): void {
    const span = this.#branches[index];
    if (span === undefined) return;
    const wait = microseconds(waitMs);
    span.setAttribute(A.permitWait, wait);
    span.addEvent("permit granted", { [A.permitWait]: wait }, hrTimeOf(performance.now()));
  }

  /**
   * Starts the span of attempt `n` of branch `index`: its downstream call carries the returned
   * headers, and {@linkcode AttemptSpan.watch} ends it with the attempt's outcome, and, for a
   * hedged call, its role: the first attempt to succeed is the `winner`, and those cut when it
   * won are `loser-aborted`.
   */
  attempt(
    index: number,
    { n, kind, hedged }: { n: number; kind: AttemptKind; hedged: boolean },
  ): AttemptSpan {
    const parent = this.#branches[index];
    const name = `${this.#registry[index].name} attempt ${n}`;
    const span = this.#trace.tracer.startSpan(name, {
      attributes: { [A.branch]: this.#registry[index].name, [A.attempt]: n, [A.attemptKind]: kind },
      startTime: hrTimeOf(performance.now()),
    }, parent === undefined ? this.#trace.context : trace.setSpan(this.#trace.context, parent));
    const won = this.#won;
    const describe = this.#describe;
    return {
      headers: traceHeadersOf(span),
      watch<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
        return work.then((value) => {
          if (hedged) {
            span.setAttribute(A.hedgeRole, won[index] ? "loser-aborted" : "winner");
            won[index] = true;
          }
          span.setAttribute(A.outcome, "ok");
          span.end(hrTimeOf(performance.now()));
          return value;
        }, (error) => {
          if (signal.aborted) {
            const lost = hedged && won[index];
            const timedOut = !lost && describe(signal.reason).outcome === "timeout";
            if (lost) span.setAttribute(A.hedgeRole, "loser-aborted");
            endCut(span, timedOut, lost ? "another attempt won" : undefined);
          } else {
            const { outcome, reason } = describe(error);
            if (hedged) span.setAttribute(A.hedgeRole, "failed");
            span.setAttributes({ [A.outcome]: outcome, [A.reason]: reason });
            const now = hrTimeOf(performance.now());
            if (outcome === "timeout") span.addEvent("timeout", undefined, now);
            span.setStatus({ code: SpanStatusCode.ERROR, message: reason });
            span.end(now);
          }
          throw error;
        });
      },
    };
  }

  /**
   * Ends every branch span with what the report says of its branch; a branch the fan-out never
   * started gets a span too, with its skip reason. Times are those of the report (ms since
   * `origin`), so the spans and the waterfall agree.
   */
  finish(records: readonly BranchRecord[]): void {
    const now = performance.now();
    const nowTime = hrTimeOf(now);
    records.forEach((record, index) => {
      const span = this.#branches[index] ?? this.#skippedSpan(index, now);
      if (span === undefined) return;
      const attributes: Attributes = { [A.outcome]: record.outcome };
      if (record.reason !== undefined) attributes[A.reason] = record.reason;
      if (record.deadlineMs !== undefined) attributes[A.deadline] = microseconds(record.deadlineMs);
      if (record.attempts !== undefined) attributes[A.attempts] = record.attempts;
      if (record.hedged !== undefined) attributes[A.hedged] = record.hedged;
      if (record.retries !== undefined) attributes[A.retries] = record.retries;
      if (record.winner !== undefined) attributes[A.winner] = record.winner;
      span.setAttributes(attributes);
      const endTime = record.endMs === undefined ? nowTime : hrTimeOf(this.#origin + record.endMs);
      switch (record.outcome) {
        case "skipped":
          span.setAttribute(A.skipReason, record.reason ?? "skipped");
          span.addEvent("skipped", { [A.reason]: record.reason ?? "skipped" }, endTime);
          break;
        case "aborted":
          span.addEvent("cancelled", { [A.reason]: record.reason ?? "aborted" }, endTime);
          break;
        case "timeout":
          span.addEvent("timeout", { [A.deadline]: microseconds(record.deadlineMs ?? 0) }, endTime);
          span.setStatus({ code: SpanStatusCode.ERROR, message: "timeout" });
          break;
        case "error":
        case "circuit-open":
          span.setStatus({ code: SpanStatusCode.ERROR, message: record.reason ?? record.outcome });
          break;
      }
      span.end(endTime);
    });
  }

  #skippedSpan(index: number, now: number): Span | undefined {
    const { name, required } = this.#registry[index];
    return startChildSpan(this.#trace, name, {
      attributes: { [A.branch]: name, [A.required]: required },
      startTime: now,
    });
  }
}

/** Ends an attempt cut by a signal: a timeout is an error, any other cut a cancellation. */
function endCut(span: Span, timedOut: boolean, why: string | undefined): void {
  const now = hrTimeOf(performance.now());
  if (timedOut) {
    span.setAttributes({ [A.outcome]: "timeout", [A.reason]: "timeout" });
    span.addEvent("timeout", undefined, now);
    span.setStatus({ code: SpanStatusCode.ERROR, message: "timeout" });
  } else {
    span.setAttributes({ [A.outcome]: "aborted", [A.reason]: why ?? "aborted" });
    span.addEvent("cancelled", { [A.reason]: why ?? "aborted" }, now);
  }
  span.end(now);
}

/** ms rounded to the µs, as the answer's timings are. */
function microseconds(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
