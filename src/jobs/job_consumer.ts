/**
 * The queue consumers of the distributed fan-out, over structural types (the shape of Workers'
 * `Message` and of a join client), so they run and test anywhere. Each message is acked or
 * retried explicitly: acked once its report reached the join, retried when the work crashed or
 * the join could not be reached (the queue then redelivers it, and after its last retry moves
 * it to the dead-letter queue).
 *
 * @module
 */
import type { SubTaskMessage, WorkOutcome } from "./job.ts";
import type { JobStatus, JoinReport, RecordResult } from "./job_join.ts";

/**
 * The part of a queue message a consumer uses (Workers' `Message<Body>`).
 *
 * @example
 * ```ts
 * import type { QueuedMessage } from "./job_consumer.ts";
 * const message: QueuedMessage<string> = { body: "x", attempts: 1, ack() {}, retry() {} };
 * ```
 */
export interface QueuedMessage<Body> {
  readonly body: Body;
  /** Delivery attempt, 1 for the first. */
  readonly attempts: number;
  ack(): void;
  retry(): void;
}

/**
 * How consumers reach the join of a job (the Durable Object keyed by the correlation key).
 *
 * @example
 * ```ts
 * import type { JoinClient } from "./job_consumer.ts";
 * const join: JoinClient = {
 *   state: async () => ({ status: "running", cancelled: false }),
 *   report: async (_jobId, reports) => reports.map(() => "recorded"),
 * };
 * ```
 */
export interface JoinClient {
  /** The job's status and cancel mark; `undefined` when there is no such job. */
  state(jobId: string): Promise<{ status: JobStatus; cancelled: boolean } | undefined>;
  /** Records reports of one job's sub-tasks; one result per report, in order. */
  report(jobId: string, reports: JoinReport[]): Promise<RecordResult[]>;
}

/**
 * What a batch came to, message by message, for logs and tests.
 *
 * @example
 * ```ts
 * import type { ConsumeSummary } from "./job_consumer.ts";
 * const summary: ConsumeSummary = { reported: 3, skipped: 1, crashed: 0, retried: 0, dropped: 0 };
 * ```
 */
export interface ConsumeSummary {
  /** Messages whose outcome reached the join (skipped ones included). */
  reported: number;
  /** Of those, sub-tasks not worked on because the job was cancelled. */
  skipped: number;
  /** Messages whose work threw. */
  crashed: number;
  /** Messages handed back to the queue (crashed, or the join was unreachable). */
  retried: number;
  /** Messages acked unreported: their job is over or unknown. */
  dropped: number;
}

/**
 * Options of {@linkcode consumeSubTasks}.
 *
 * @example
 * ```ts
 * import type { ConsumeOptions } from "./job_consumer.ts";
 * const options: Partial<ConsumeOptions> = { work: () => ({ status: "failed", reason: "no" }) };
 * ```
 */
export interface ConsumeOptions {
  /** The join client. */
  join: JoinClient;
  /** The work of one sub-task. A throw is a crash. */
  work: (message: SubTaskMessage) => WorkOutcome;
}

/**
 * Processes a batch of sub-task messages: per job, reads the cancel mark once, works on each
 * message (or skips it when cancelled), reports the outcomes to the join in one call, then acks
 * what was reported and retries what crashed.
 *
 * @example
 * ```ts
 * import { consumeSubTasks } from "./job_consumer.ts";
 *
 * const reports: unknown[] = [];
 * const summary = await consumeSubTasks([{
 *   body: { jobId: "j", subTaskId: "j:0", index: 0, item: "a", seed: 1, errorRate: 0, crash: false },
 *   attempts: 1, ack() {}, retry() {},
 * }], {
 *   join: {
 *     state: async () => ({ status: "running", cancelled: false }),
 *     report: async (_jobId, batch) => (reports.push(...batch), batch.map(() => "recorded")),
 *   },
 *   work: (message) => ({ status: "ok", value: { item: message.item, score: 1 } }),
 * });
 * summary.reported; // 1
 * ```
 */
export async function consumeSubTasks(
  messages: readonly QueuedMessage<SubTaskMessage>[],
  { join, work }: ConsumeOptions,
): Promise<ConsumeSummary> {
  const summary: ConsumeSummary = { reported: 0, skipped: 0, crashed: 0, retried: 0, dropped: 0 };
  for (const [jobId, group] of byJob(messages)) {
    let state;
    try {
      state = await join.state(jobId);
    } catch (error) {
      console.error(`Cannot read the cancel mark of job ${jobId}; retrying its messages:`, error);
      retryAll(group, summary);
      continue;
    }
    if (state === undefined || state.status !== "running") {
      // Nobody will read an outcome of a job that is over or unknown.
      for (const message of group) message.ack();
      summary.dropped += group.length;
      continue;
    }
    const reported: QueuedMessage<SubTaskMessage>[] = [];
    const reports: JoinReport[] = [];
    for (const message of group) {
      const { subTaskId } = message.body;
      if (state.cancelled) {
        reports.push({
          subTaskId,
          outcome: { status: "skipped", reason: "cancelled" },
          attempts: message.attempts,
        });
        reported.push(message);
        summary.skipped++;
        continue;
      }
      try {
        reports.push({ subTaskId, outcome: work(message.body), attempts: message.attempts });
        reported.push(message);
      } catch (error) {
        console.error(`Sub-task ${subTaskId} crashed on attempt ${message.attempts}:`, error);
        message.retry();
        summary.crashed++;
        summary.retried++;
      }
    }
    await reportThenAck(join, jobId, reports, reported, summary);
  }
  return summary;
}

/**
 * Processes a batch from the dead-letter queue: reports each sub-task as failed
 * (`"dead-lettered"`) to its join, then acks it.
 *
 * @example
 * ```ts
 * import { consumeDeadLetters } from "./job_consumer.ts";
 * import type { JoinClient } from "./job_consumer.ts";
 *
 * declare const join: JoinClient;
 * await consumeDeadLetters([], { join });
 * ```
 */
export async function consumeDeadLetters(
  messages: readonly QueuedMessage<SubTaskMessage>[],
  { join }: { join: JoinClient },
): Promise<ConsumeSummary> {
  const summary: ConsumeSummary = { reported: 0, skipped: 0, crashed: 0, retried: 0, dropped: 0 };
  for (const [jobId, group] of byJob(messages)) {
    const reports = group.map((message): JoinReport => ({
      subTaskId: message.body.subTaskId,
      outcome: { status: "failed", reason: "dead-lettered" },
      attempts: message.attempts,
    }));
    await reportThenAck(join, jobId, reports, group, summary);
  }
  return summary;
}

async function reportThenAck(
  join: JoinClient,
  jobId: string,
  reports: JoinReport[],
  messages: QueuedMessage<SubTaskMessage>[],
  summary: ConsumeSummary,
): Promise<void> {
  if (reports.length === 0) return;
  try {
    await join.report(jobId, reports);
  } catch (error) {
    console.error(`Cannot report to the join of job ${jobId}; retrying its messages:`, error);
    retryAll(messages, summary);
    return;
  }
  for (const message of messages) message.ack();
  summary.reported += messages.length;
}

function retryAll(messages: QueuedMessage<SubTaskMessage>[], summary: ConsumeSummary): void {
  for (const message of messages) message.retry();
  summary.retried += messages.length;
}

function byJob(
  messages: readonly QueuedMessage<SubTaskMessage>[],
): Map<string, QueuedMessage<SubTaskMessage>[]> {
  const groups = new Map<string, QueuedMessage<SubTaskMessage>[]>();
  for (const message of messages) {
    const group = groups.get(message.body.jobId);
    if (group === undefined) groups.set(message.body.jobId, [message]);
    else group.push(message);
  }
  return groups;
}
