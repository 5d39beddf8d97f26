/**
 * The distributed fan-out end to end on workerd: real Queues (batches, retries, dead-letter
 * queue), real Durable Objects and alarms, as `wrangler dev` runs them locally (miniflare) from
 * the project's own `wrangler.toml`.
 *
 * Why `wrangler dev` rather than miniflare's programmatic API in this process: under Deno's
 * sanitizers, an in-process `Miniflare` leaves undici's module-level connect timer and a
 * MessagePort behind after `dispose()`, so every test would fail as leaking; and `wrangler dev`
 * exercises the queue, dead-letter, retry and migration settings we ship instead of a copy of
 * them. The child process is stopped and awaited in `finally`.
 *
 * No sleeps as synchronisation: the join is polled with bounded counts until what a step waits
 * for is visible, and the steps that need an order (a duplicate after the first report, a
 * delivery after the cancel) send those sub-tasks through `POST /jobs/:id/resend` once the
 * earlier state is observed.
 */
import { assert, assertEquals } from "./_assert.ts";
import { type ServedProcess, startWranglerDev } from "./_servers.ts";
import type { JobView } from "../src/jobs/job_join.ts";

/** Admission bound for this run, small enough to reach in a test. */
const BOUND = 20;
/** Polls of a job before a step gives up. */
const MAX_POLLS = 100;
/** Pause between two polls. */
const POLL_MS = 100;
/** Longest `waitMs` asked of the join when waiting for a job to be over. */
const WAIT_MS = 10_000;
/** Bounded waits in a row before a step gives up on a job being over. */
const MAX_WAITS = 3;

function startWorkers(persistTo: string): Promise<ServedProcess> {
  return startWranglerDev({
    name: "jobs on workerd (wrangler dev)",
    // A fresh store per run: no job, lease or queued message from an earlier run.
    persistTo,
    // The faults testing aid is off by default; these tests use it.
    vars: { MAX_OUTSTANDING_SUBTASKS: String(BOUND), JOBS_FAULTS: "on" },
  });
}

/** HTTP helpers over the jobs routes served at `base`. */
function jobsClient(base: string) {
  async function post(path: string, body?: unknown): Promise<Response> {
    return await fetch(`${base}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  async function submit(body: unknown): Promise<string> {
    const response = await post("jobs", body);
    const accepted = await response.json();
    assertEquals(response.status, 202, JSON.stringify(accepted));
    return accepted.jobId;
  }

  async function view(jobId: string, waitMs = 0): Promise<JobView> {
    const response = await fetch(`${base}jobs/${jobId}?waitMs=${waitMs}`);
    assertEquals(response.status, 200);
    return await response.json();
  }

  /** Sends sub-tasks of a running job to the queue again. */
  async function resend(jobId: string, subTasks: number[]): Promise<void> {
    const response = await post(`jobs/${jobId}/resend`, { subTasks });
    assertEquals([response.status, await response.json()], [202, { jobId, sent: subTasks.length }]);
  }

  /** Polls the join until `done` holds of its view. */
  async function pollUntil(jobId: string, done: (job: JobView) => boolean): Promise<JobView> {
    let job = await view(jobId);
    for (let poll = 1; !done(job) && poll < MAX_POLLS; poll++) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      job = await view(jobId);
    }
    assert(done(job), `job never reached the awaited state: ${JSON.stringify(job)}`);
    return job;
  }

  /** Waits (long-poll, bounded) until the job is complete or expired. */
  async function untilOver(jobId: string): Promise<JobView> {
    let job = await view(jobId, WAIT_MS);
    for (let wait = 1; job.status === "running" && wait < MAX_WAITS; wait++) {
      job = await view(jobId, WAIT_MS);
    }
    assert(job.status !== "running", `job never finished: ${JSON.stringify(job)}`);
    return job;
  }

  return { post, submit, resend, pollUntil, untilOver };
}

Deno.test("distributed jobs over Queues and Durable Objects on workerd", async (t) => {
  const persistTo = await Deno.makeTempDir({ prefix: "fanfare-jobs-" });
  let served: ServedProcess | undefined;
  try {
    served = await startWorkers(persistTo);
    const base = served.url;
    const { post, submit, resend, pollUntil, untilOver } = jobsClient(base);

    await t.step("a job completes once every sub-task has reported", async () => {
      const items = ["a", "b", "c", "d", "e"];
      const jobId = await submit({ items, seed: 1 });
      const job = await untilOver(jobId);
      assertEquals([job.status, job.finishedBy], ["complete", "reports"]);
      assertEquals(job.counts, { ok: 5, failed: 0, skipped: 0, lost: 0, pending: 0 });
      assertEquals(
        job.subTasks.map((s) => s.status === "ok" && (s.value as { item: string }).item),
        items,
      );
    });

    await t.step(
      "a sub-task whose consumer crashes is retried, dead-lettered and reported failed",
      async () => {
        const jobId = await submit({ items: ["a", "b", "c", "d"], faults: { crash: [1, 3] } });
        const job = await untilOver(jobId);
        assertEquals([job.status, job.finishedBy], ["complete", "reports"]);
        assertEquals(job.counts, { ok: 2, failed: 2, skipped: 0, lost: 0, pending: 0 });
        for (const index of [1, 3]) {
          const subTask = job.subTasks[index];
          assert(subTask.status === "failed" && subTask.reason === "dead-lettered");
          // max_retries = 2 in wrangler.toml: three deliveries, then the dead-letter queue.
          assert(
            served!.output().includes(`Sub-task ${jobId}:${index} crashed on attempt 3`),
            `no third attempt of ${jobId}:${index} in the output`,
          );
        }
      },
    );

    await t.step(
      "a sub-task that never arrives is reported lost by the deadline's alarm",
      async () => {
        const jobId = await submit({
          items: ["a", "b", "c"],
          deadlineMs: 3000,
          faults: { unsent: [2] },
        });
        const job = await untilOver(jobId);
        assertEquals([job.status, job.finishedBy], ["expired", "alarm"]);
        assertEquals(job.counts, { ok: 2, failed: 0, skipped: 0, lost: 1, pending: 0 });
        assertEquals(job.subTasks[2], { id: `${jobId}:2`, status: "lost" });
      },
    );

    await t.step("a sub-task delivered twice is counted once", async () => {
      const jobId = await submit({ items: ["a", "b", "c"], faults: { unsent: [2] } });
      const first = await pollUntil(jobId, (job) => job.counts.ok === 2);
      await resend(jobId, [0]);
      const duplicated = await pollUntil(jobId, (job) => job.duplicates === 1);
      assertEquals(duplicated.subTasks[0], first.subTasks[0]);
      assertEquals(duplicated.counts.ok, 2);
      await resend(jobId, [2]);
      const job = await untilOver(jobId);
      assertEquals([job.status, job.duplicates], ["complete", 1]);
      assertEquals(job.counts, { ok: 3, failed: 0, skipped: 0, lost: 0, pending: 0 });
    });

    await t.step("a cancel ends the job at once and skips what had not reported", async () => {
      const jobId = await submit({
        items: ["a", "b", "c", "d", "e", "f"],
        faults: { unsent: [3, 4, 5] },
      });
      await pollUntil(jobId, (job) => job.counts.ok === 3);
      const cancelled = await post(`jobs/${jobId}/cancel`);
      assertEquals(cancelled.status, 202);
      const job: JobView = await cancelled.json();
      assertEquals([job.status, job.cancelled, job.finishedBy], ["cancelled", true, "cancel"]);
      assertEquals(job.counts, { ok: 3, failed: 0, skipped: 3, lost: 0, pending: 0 });
      const resent = await post(`jobs/${jobId}/resend`, { subTasks: [3] });
      assertEquals(resent.status, 409);
      await resent.body?.cancel();
    });

    await t.step("a bad job is a 400 naming each field, an unknown job a 404", async () => {
      const response = await post("jobs", { items: [], deadlineMs: 5, faults: { crash: [1] } });
      assertEquals(response.status, 400);
      const body = await response.json();
      assertEquals(body.fields.map((f: { field: string }) => f.field).sort(), [
        "deadlineMs",
        "faults.crash.0",
        "items",
      ]);
      const unknown = await fetch(`${base}jobs/no-such-job`);
      assertEquals(unknown.status, 404);
      await unknown.body?.cancel();
    });

    await t.step(
      "a job past the bound on outstanding sub-tasks is refused with 503 and Retry-After",
      async () => {
        const items = Array.from({ length: 15 }, (_, index) => `item-${index}`);
        // One sub-task held back keeps the job, and its 15 sub-tasks, outstanding.
        const held = await submit({ items, faults: { unsent: [14] } });
        const refused = await post("jobs", { items: items.slice(0, 6) });
        assertEquals(refused.status, 503);
        assert(Number(refused.headers.get("retry-after")) >= 1, "a Retry-After in seconds");
        const body = await refused.json();
        assertEquals([body.outstanding, body.bound], [15, BOUND]);
        const tooLarge = await post("jobs", { items: [...items, ...items] });
        assertEquals(tooLarge.status, 400);
        assertEquals((await tooLarge.json()).fields[0].field, "items");
        // A cancel gives the job's room back at once.
        await post(`jobs/${held}/cancel`).then((r) => r.body?.cancel());
        await submit({ items: items.slice(0, 6) });
      },
    );
  } finally {
    await served?.stop();
    await Deno.remove(persistTo, { recursive: true });
  }
});
