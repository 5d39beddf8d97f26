import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { JobJoin, type JoinReport } from "../../src/jobs/job_join.ts";

function ok(subTaskId: string, value: unknown = subTaskId, attempts = 1): JoinReport {
  return { subTaskId, outcome: { status: "ok", value }, attempts };
}

function startJoin(total = 3, deadlineAt = 1000): JobJoin {
  return JobJoin.start({ jobId: "job", total, deadlineAt });
}

Deno.test("JobJoin.start() rejects a bad job id, total or deadline naming the field", () => {
  assertThrows(() => JobJoin.start({ jobId: "", total: 1, deadlineAt: 1 }), /'jobId'/);
  assertThrows(() => JobJoin.start({ jobId: "j", total: 0, deadlineAt: 1 }), /'total'.*0/);
  assertThrows(
    () => JobJoin.start({ jobId: "j", total: 1, deadlineAt: Infinity }),
    /'deadlineAt'.*Infinity/,
  );
});

Deno.test("JobJoin completes when every sub-task has reported", () => {
  const join = startJoin(2);
  assertEquals(join.record(ok("job:0"), 10), "recorded");
  assertEquals(join.status, "running");
  assertEquals(join.record(ok("job:1"), 20), "recorded");
  assertEquals(join.status, "complete");
  assertEquals([join.view().finishedAt, join.view().finishedBy], [20, "reports"]);
  assertEquals(join.nextWakeAt(), Infinity);
});

Deno.test("JobJoin counts a second report of a sub-task once and keeps the first outcome", () => {
  const join = startJoin(2);
  join.record(ok("job:0", "first"), 10);
  assertEquals(join.record(ok("job:0", "second", 2), 20), "duplicate");
  const view = join.view();
  assertEquals(view.counts, { ok: 1, failed: 0, skipped: 0, lost: 0, pending: 1 });
  assertEquals(view.duplicates, 1);
  assertEquals(view.subTasks[0], { id: "job:0", status: "ok", value: "first", attempts: 1 });
});

Deno.test("JobJoin at its deadline reports missing sub-tasks as lost and failed ones as failed", () => {
  const join = startJoin(3);
  join.record(ok("job:0"), 10);
  join.record({
    subTaskId: "job:1",
    outcome: { status: "failed", reason: "dead-lettered" },
    attempts: 1,
  }, 20);
  assert(!join.advance(999), "not expired before the deadline");
  assert(join.advance(1000, "alarm"), "expired at the deadline");
  const view = join.view();
  assertEquals([view.status, view.finishedBy], ["expired", "alarm"]);
  assertEquals(view.counts, { ok: 1, failed: 1, skipped: 0, lost: 1, pending: 0 });
  assertEquals(view.subTasks.map((s) => s.status), ["ok", "failed", "lost"]);
});

Deno.test("JobJoin applies its deadline lazily on the next report and counts that report late", () => {
  const join = startJoin(2);
  join.record(ok("job:0"), 10);
  assertEquals(join.record(ok("job:1"), 1500), "late");
  const view = join.view();
  assertEquals([view.status, view.finishedAt, view.finishedBy, view.late], [
    "expired",
    1500,
    "request",
    1,
  ]);
  assertEquals(view.counts.lost, 1);
});

Deno.test("JobJoin finalises once: a second advance past the deadline changes nothing", () => {
  const join = startJoin(1);
  assert(join.advance(1000));
  assert(!join.advance(2000, "alarm"), "a repeated alarm finds it expired");
  assertEquals(join.view().finishedAt, 1000);
});

Deno.test("JobJoin counts a report of an id outside the job as unknown", () => {
  const join = startJoin(2);
  assertEquals(join.record(ok("job:2"), 1), "unknown");
  assertEquals(join.record(ok("other:0"), 1), "unknown");
  assertEquals(join.record(ok("job:01"), 1), "unknown");
  assertEquals(join.view().unknown, 3);
});

Deno.test("JobJoin marks a running job cancelled once and a finished job never", () => {
  const running = startJoin(1);
  assert(running.cancel(1));
  assert(!running.cancel(2), "already cancelled");
  assert(running.cancelled);
  const over = startJoin(1);
  over.record(ok("job:0"), 1);
  assert(!over.cancel(2), "complete jobs stay as they are");
  assert(!over.cancelled);
});

Deno.test("JobJoin ends a cancelled job at once: what had not reported is skipped, later reports are late", () => {
  const join = startJoin(2);
  join.record(ok("job:0"), 1);
  join.cancel(2);
  const view = join.view();
  assertEquals([view.status, view.cancelled, view.finishedBy], ["cancelled", true, "cancel"]);
  assertEquals(view.counts, { ok: 1, failed: 0, skipped: 1, lost: 0, pending: 0 });
  assertEquals(view.subTasks[1], {
    id: "job:1",
    attempts: 0,
    status: "skipped",
    reason: "cancelled",
  });
  const late = join.record({
    subTaskId: "job:1",
    outcome: { status: "skipped", reason: "cancelled" },
    attempts: 1,
  }, 3);
  assertEquals([late, join.view().late], ["late", 1]);
});

Deno.test("JobJoin restored from its JSON state answers as before", () => {
  const join = startJoin(3);
  join.record(ok("job:1"), 5);
  join.record(ok("job:1"), 6);
  join.cancel(7);
  const state = JSON.parse(JSON.stringify({ meta: join.meta(), outcomes: join.recorded() }));
  const again = JobJoin.fromState(state.meta, state.outcomes);
  assertEquals(again.view(), join.view());
  assertThrows(() => JobJoin.fromState({ ...state.meta, version: 2 }, []), /'version'.*2/);
});
