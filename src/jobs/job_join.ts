/**
 * The join of a distributed fan-out as a pure state machine: it collects one report per sub-task
 * id (delivery is at-least-once, so a second report of the same id is counted as a duplicate and
 * changes nothing), completes when every sub-task has reported, and at its deadline finalises
 * with what it has, telling the sub-tasks that never reported (lost) from those that reported a
 * failure (failed, including dead-lettered). A cancel only sets a mark that consumers read.
 *
 * No timers and no I/O: every call takes the time as `now`, and the deadline is applied lazily
 * by every call, so a missed alarm costs delay, never a wrong answer.
 *
 * @module
 */
import { subTaskId, subTaskIndex } from "./job.ts";

/**
 * What one sub-task came to, as reported by a consumer: its value, a failure (the work failed,
 * or the queue dead-lettered the message), or skipped because the job was cancelled or over.
 *
 * @example
 * ```ts
 * import type { SubTaskOutcome } from "./job_join.ts";
 * const outcome: SubTaskOutcome = { status: "failed", reason: "dead-lettered" };
 * ```
 */
export type SubTaskOutcome =
  | { status: "ok"; value: unknown }
  | { status: "failed"; reason: string }
  | { status: "skipped"; reason: "cancelled" | "job over" };

/**
 * A consumer's report of one sub-task.
 *
 * @example
 * ```ts
 * import type { JoinReport } from "./job_join.ts";
 * const report: JoinReport = { subTaskId: "job-1:0", outcome: { status: "ok", value: 1 }, attempts: 1 };
 * ```
 */
export interface JoinReport {
  /** Which sub-task. */
  subTaskId: string;
  /** What it came to. */
  outcome: SubTaskOutcome;
  /** The queue's delivery attempt that reported it (1 for the first delivery). */
  attempts: number;
}

/**
 * What {@linkcode JobJoin.record} did with a report: kept it, counted it as a duplicate of an
 * earlier report of the same sub-task, counted it as late (the job was already over), or counted
 * it as unknown (not a sub-task of this job).
 *
 * @example
 * ```ts
 * import type { RecordResult } from "./job_join.ts";
 * const result: RecordResult = "duplicate";
 * ```
 */
export type RecordResult = "recorded" | "duplicate" | "late" | "unknown";

/**
 * Where a job stands: collecting reports, complete (everyone reported), or expired (the
 * deadline came first; the missing sub-tasks are lost).
 *
 * @example
 * ```ts
 * import type { JobStatus } from "./job_join.ts";
 * const status: JobStatus = "expired";
 * ```
 */
export type JobStatus = "running" | "complete" | "expired" | "cancelled";

/**
 * A join's state apart from its recorded outcomes, as plain JSON (for Durable Object storage,
 * next to one entry per recorded sub-task).
 *
 * @example
 * ```ts
 * import { JobJoin } from "./job_join.ts";
 * const meta = JobJoin.start({ jobId: "job-1", total: 2, deadlineAt: 1000 }).meta();
 * ```
 */
export interface JoinMeta {
  version: 1;
  jobId: string;
  total: number;
  deadlineAt: number;
  status: JobStatus;
  cancelled: boolean;
  /** When the job became complete or expired; `null` while running. */
  finishedAt: number | null;
  /** What finished it; `null` while running. */
  finishedBy: FinishedBy | null;
  /** Reports of a sub-task that had already reported. */
  duplicates: number;
  /** Reports that came after the job was over. */
  late: number;
  /** Reports naming no sub-task of this job. */
  unknown: number;
}

/**
 * What finished a job: the last missing report, the deadline's alarm, or the first request
 * after the deadline (when the alarm was late or lost).
 *
 * @example
 * ```ts
 * import type { FinishedBy } from "./job_join.ts";
 * const by: FinishedBy = "alarm";
 * ```
 */
export type FinishedBy = "reports" | "alarm" | "request" | "cancel";

/**
 * A recorded outcome as stored: the outcome and the delivery attempt that reported it.
 *
 * @example
 * ```ts
 * import type { RecordedOutcome } from "./job_join.ts";
 * const recorded: RecordedOutcome = { outcome: { status: "ok", value: 1 }, attempts: 2 };
 * ```
 */
export interface RecordedOutcome {
  outcome: SubTaskOutcome;
  attempts: number;
}

/**
 * One sub-task in a {@linkcode JobView}: its outcome once reported, `lost` when the job expired
 * without it, `pending` while the job runs.
 *
 * @example
 * ```ts
 * import type { SubTaskView } from "./job_join.ts";
 * const lost: SubTaskView = { id: "job-1:3", status: "lost" };
 * ```
 */
export type SubTaskView =
  | ({ id: string; attempts: number } & SubTaskOutcome)
  | { id: string; status: "lost" | "pending" };

/**
 * The answer a client polls for: status, counts and every sub-task.
 *
 * @example
 * ```ts
 * import { JobJoin } from "./job_join.ts";
 * const view = JobJoin.start({ jobId: "job-1", total: 2, deadlineAt: 1000 }).view();
 * view.counts; // { ok: 0, failed: 0, skipped: 0, lost: 0, pending: 2 }
 * ```
 */
export interface JobView {
  jobId: string;
  status: JobStatus;
  cancelled: boolean;
  total: number;
  deadlineAt: number;
  finishedAt: number | null;
  finishedBy: FinishedBy | null;
  counts: { ok: number; failed: number; skipped: number; lost: number; pending: number };
  duplicates: number;
  late: number;
  unknown: number;
  subTasks: SubTaskView[];
}

/**
 * Options of {@linkcode JobJoin.start}.
 *
 * @example
 * ```ts
 * import type { JobJoinOptions } from "./job_join.ts";
 * const options: JobJoinOptions = { jobId: "job-1", total: 8, deadlineAt: Date.now() + 30_000 };
 * ```
 */
export interface JobJoinOptions {
  /** The correlation key. */
  jobId: string;
  /** How many sub-tasks the job has: ids `<jobId>:0 … <jobId>:<total - 1>`. */
  total: number;
  /** When the join finalises with what it has. */
  deadlineAt: number;
}

/**
 * The join of one job. Idempotent per sub-task id: the first report of a sub-task is its
 * outcome, later ones are only counted. Complete once every sub-task reported; expired at the
 * deadline otherwise, with the missing ones lost. Once over, nothing changes but the counts of
 * late reports.
 *
 * @example
 * ```ts
 * import { JobJoin } from "./job_join.ts";
 *
 * const join = JobJoin.start({ jobId: "job-1", total: 2, deadlineAt: 1000 });
 * join.record({ subTaskId: "job-1:0", outcome: { status: "ok", value: 1 }, attempts: 1 }, 10);
 * join.record({ subTaskId: "job-1:0", outcome: { status: "ok", value: 1 }, attempts: 2 }, 20); // "duplicate"
 * join.advance(1000); // true: expired, job-1:1 lost
 * join.view().counts; // { ok: 1, failed: 0, skipped: 0, lost: 1, pending: 0 }
 * ```
 */
export class JobJoin {
  #meta: JoinMeta;
  #outcomes: Map<string, RecordedOutcome>;

  private constructor(meta: JoinMeta, outcomes: Map<string, RecordedOutcome>) {
    this.#meta = meta;
    this.#outcomes = outcomes;
  }

  /** A running join with nothing reported. */
  static start({ jobId, total, deadlineAt }: JobJoinOptions): JobJoin {
    if (typeof jobId !== "string" || jobId === "") {
      throw new TypeError(
        `Cannot start a join as 'jobId' must be a non-empty string: current value is ${
          JSON.stringify(jobId)
        }`,
      );
    }
    if (!Number.isSafeInteger(total) || total < 1) {
      throw new RangeError(
        `Cannot start a join as 'total' must be a positive integer: current value is ${total}`,
      );
    }
    if (!Number.isFinite(deadlineAt)) {
      throw new RangeError(
        `Cannot start a join as 'deadlineAt' must be a finite time: current value is ${deadlineAt}`,
      );
    }
    return new JobJoin({
      version: 1,
      jobId,
      total,
      deadlineAt,
      status: "running",
      cancelled: false,
      finishedAt: null,
      finishedBy: null,
      duplicates: 0,
      late: 0,
      unknown: 0,
    }, new Map());
  }

  /**
   * Rebuilds a join from {@linkcode JobJoin.meta} and its recorded outcomes by sub-task id.
   *
   * @example
   * ```ts
   * import { JobJoin } from "./job_join.ts";
   * const join = JobJoin.start({ jobId: "job-1", total: 1, deadlineAt: 1000 });
   * const again = JobJoin.fromState(join.meta(), join.recorded());
   * ```
   */
  static fromState(
    meta: JoinMeta,
    outcomes: Iterable<[string, RecordedOutcome]>,
  ): JobJoin {
    if (meta?.version !== 1) {
      throw new TypeError(
        `Cannot restore a join as 'version' must be 1: current value is ${meta?.version}`,
      );
    }
    return new JobJoin({ ...meta }, new Map(outcomes));
  }

  /** The correlation key. */
  get jobId(): string {
    return this.#meta.jobId;
  }

  /** Running, complete or expired, as of the last call. */
  get status(): JobStatus {
    return this.#meta.status;
  }

  /** Whether a cancel was asked for. */
  get cancelled(): boolean {
    return this.#meta.cancelled;
  }

  /**
   * Records a report unless its sub-task reported before (`"duplicate"`), the job is over
   * (`"late"`), or the id is not one of the job's (`"unknown"`). The last report that was
   * missing completes the job.
   */
  record(report: JoinReport, now: number): RecordResult {
    this.advance(now);
    const meta = this.#meta;
    if (subTaskIndex(meta.jobId, meta.total, report.subTaskId) === undefined) {
      meta.unknown++;
      return "unknown";
    }
    if (meta.status !== "running") {
      meta.late++;
      return "late";
    }
    if (this.#outcomes.has(report.subTaskId)) {
      meta.duplicates++;
      return "duplicate";
    }
    this.#outcomes.set(report.subTaskId, { outcome: report.outcome, attempts: report.attempts });
    if (this.#outcomes.size === meta.total) this.#finish("complete", now, "reports");
    return "recorded";
  }

  /**
   * Cancels the job: it is over at once (status `cancelled`), the sub-tasks that had not
   * reported count as skipped, consumers skip what they are delivered from now on, and later
   * reports are late. Returns whether it was running; a job that is over stays as it was.
   */
  cancel(now: number): boolean {
    this.advance(now);
    if (this.#meta.status !== "running") return false;
    this.#meta.cancelled = true;
    this.#finish("cancelled", now, "cancel");
    return true;
  }

  /**
   * Applies the passage of time; returns whether the job expired just now. `by` says who
   * noticed: the deadline's alarm or (the default) any other request.
   */
  advance(now: number, by: "alarm" | "request" = "request"): boolean {
    if (Number.isNaN(now)) {
      throw new RangeError("Cannot use the join as 'now' must be a time: current value is NaN");
    }
    if (this.#meta.status !== "running" || now < this.#meta.deadlineAt) return false;
    this.#finish("expired", now, by);
    return true;
  }

  /** When the join has something to do by itself (its deadline), or `Infinity` once over. */
  nextWakeAt(): number {
    return this.#meta.status === "running" ? this.#meta.deadlineAt : Infinity;
  }

  /** The state to persist apart from the outcomes; see {@linkcode JoinMeta}. */
  meta(): JoinMeta {
    return { ...this.#meta };
  }

  /** The recorded outcome of sub-task `id`, if it reported. */
  outcome(id: string): RecordedOutcome | undefined {
    return this.#outcomes.get(id);
  }

  /** Every recorded outcome by sub-task id, in the order they were recorded. */
  recorded(): [string, RecordedOutcome][] {
    return [...this.#outcomes];
  }

  /** The client's view: status, counts, and each sub-task in index order. */
  view(): JobView {
    const meta = this.#meta;
    const counts = { ok: 0, failed: 0, skipped: 0, lost: 0, pending: 0 };
    const subTasks: SubTaskView[] = [];
    for (let index = 0; index < meta.total; index++) {
      const id = subTaskId(meta.jobId, index);
      const recorded = this.#outcomes.get(id);
      if (recorded === undefined && meta.status === "cancelled") {
        counts.skipped++;
        subTasks.push({ id, attempts: 0, status: "skipped", reason: "cancelled" });
      } else if (recorded === undefined) {
        const status = meta.status === "expired" ? "lost" : "pending";
        counts[status]++;
        subTasks.push({ id, status });
      } else {
        counts[recorded.outcome.status]++;
        subTasks.push({ id, attempts: recorded.attempts, ...recorded.outcome });
      }
    }
    return {
      jobId: meta.jobId,
      status: meta.status,
      cancelled: meta.cancelled,
      total: meta.total,
      deadlineAt: meta.deadlineAt,
      finishedAt: meta.finishedAt,
      finishedBy: meta.finishedBy,
      counts,
      duplicates: meta.duplicates,
      late: meta.late,
      unknown: meta.unknown,
      subTasks,
    };
  }

  #finish(status: Exclude<JobStatus, "running">, now: number, by: FinishedBy): void {
    this.#meta.status = status;
    this.#meta.finishedAt = now;
    this.#meta.finishedBy = by;
  }
}
