import { assertEquals } from "../_assert.ts";
import { splitJob, type SubTaskMessage } from "../../src/jobs/job.ts";
import {
  consumeDeadLetters,
  consumeSubTasks,
  type JoinClient,
  type QueuedMessage,
} from "../../src/jobs/job_consumer.ts";
import { JobJoin } from "../../src/jobs/job_join.ts";
import { simulateWork } from "../../sim/job_work.ts";

/** A message that remembers whether it was acked or retried. */
function message(body: SubTaskMessage, attempts = 1) {
  const fate: string[] = [];
  const queued: QueuedMessage<SubTaskMessage> = {
    body,
    attempts,
    ack: () => fate.push("ack"),
    retry: () => fate.push("retry"),
  };
  return { queued, fate };
}

/** A join client over a real JobJoin in this process. */
function joinOf(join: JobJoin, { unreachable = false } = {}): JoinClient {
  return {
    state: () => {
      if (unreachable) return Promise.reject(new Error("unreachable"));
      return Promise.resolve({ status: join.status, cancelled: join.cancelled });
    },
    report: (_jobId, reports) => Promise.resolve(reports.map((r) => join.record(r, 0))),
  };
}

const spec = {
  jobId: "job",
  items: ["a", "b", "c"],
  deadlineAt: 1000,
  seed: 1,
  errorRate: 0,
  crash: [1],
  unsent: [],
};

Deno.test("consumeSubTasks() acks what reached the join and retries the sub-task that crashed", async () => {
  const join = JobJoin.start({ jobId: "job", total: 3, deadlineAt: 1000 });
  const messages = splitJob(spec).map((body) => message(body));
  const summary = await consumeSubTasks(messages.map((m) => m.queued), {
    join: joinOf(join),
    work: simulateWork,
  });
  assertEquals(messages.map((m) => m.fate), [["ack"], ["retry"], ["ack"]]);
  assertEquals(summary, { reported: 2, skipped: 0, crashed: 1, retried: 1, dropped: 0 });
  assertEquals(join.view().counts, { ok: 2, failed: 0, skipped: 0, lost: 0, pending: 1 });
});

Deno.test("consumeSubTasks() skips the work of a cancelled job and reports the sub-tasks skipped", async () => {
  const join = JobJoin.start({ jobId: "job", total: 3, deadlineAt: 1000 });
  join.cancel(0);
  const messages = splitJob(spec).map((body) => message(body));
  await consumeSubTasks(messages.map((m) => m.queued), { join: joinOf(join), work: simulateWork });
  assertEquals(messages.map((m) => m.fate), [["ack"], ["ack"], ["ack"]]);
  assertEquals(join.view().counts.skipped, 3);
});

Deno.test("consumeSubTasks() retries every message of a job whose join it cannot reach", async () => {
  const join = JobJoin.start({ jobId: "job", total: 3, deadlineAt: 1000 });
  const messages = splitJob(spec).map((body) => message(body));
  const summary = await consumeSubTasks(messages.map((m) => m.queued), {
    join: joinOf(join, { unreachable: true }),
    work: simulateWork,
  });
  assertEquals(messages.map((m) => m.fate), [["retry"], ["retry"], ["retry"]]);
  assertEquals(summary.retried, 3);
});

Deno.test("consumeDeadLetters() reports each dead letter to its join as failed", async () => {
  const join = JobJoin.start({ jobId: "job", total: 3, deadlineAt: 1000 });
  const dead = message(splitJob(spec)[1], 1);
  await consumeDeadLetters([dead.queued], { join: joinOf(join) });
  assertEquals(dead.fate, ["ack"]);
  assertEquals(join.view().subTasks[1], {
    id: "job:1",
    status: "failed",
    reason: "dead-lettered",
    attempts: 1,
  });
});
