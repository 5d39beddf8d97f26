import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { type AdmissionOutcome, JobAdmission } from "../../src/jobs/job_admission.ts";

function leaseOf(outcome: AdmissionOutcome): string {
  assert(outcome.kind === "admitted", `expected admission, got ${JSON.stringify(outcome)}`);
  return outcome.leaseId;
}

Deno.test("JobAdmission rejects a bound that is not a positive integer", () => {
  assertThrows(() => new JobAdmission({ bound: 0 }), /'bound'.*0/);
  assertThrows(() => new JobAdmission({ bound: 2.5 }), /'bound'.*2.5/);
});

Deno.test("JobAdmission admits jobs while their sub-tasks fit under the bound", () => {
  const admission = new JobAdmission({ bound: 10 });
  leaseOf(admission.admit({ jobId: "a", subTasks: 6, ttlMs: 1000 }, 0));
  leaseOf(admission.admit({ jobId: "b", subTasks: 4, ttlMs: 1000 }, 0));
  assertEquals(admission.outstanding(0), 10);
});

Deno.test("JobAdmission refuses a job past the bound and says when room is sure to come back", () => {
  const admission = new JobAdmission({ bound: 10 });
  leaseOf(admission.admit({ jobId: "a", subTasks: 8, ttlMs: 5000 }, 0));
  assertEquals(admission.admit({ jobId: "b", subTasks: 3, ttlMs: 5000 }, 1000), {
    kind: "refused",
    outstanding: 8,
    bound: 10,
    retryAfterMs: 4000,
  });
});

Deno.test("JobAdmission tells a job larger than the bound that it can never fit", () => {
  const admission = new JobAdmission({ bound: 10 });
  assertEquals(admission.admit({ jobId: "a", subTasks: 11, ttlMs: 1 }, 0), {
    kind: "too large",
    bound: 10,
  });
});

Deno.test("JobAdmission gives room back on release, once", () => {
  const admission = new JobAdmission({ bound: 10 });
  const lease = leaseOf(admission.admit({ jobId: "a", subTasks: 10, ttlMs: 5000 }, 0));
  assert(admission.release(lease, 1));
  assert(!admission.release(lease, 2), "a second release changes nothing");
  leaseOf(admission.admit({ jobId: "b", subTasks: 10, ttlMs: 5000 }, 3));
});

Deno.test("JobAdmission reclaims the room of a job never released once its lease expires", () => {
  const admission = new JobAdmission({ bound: 10 });
  leaseOf(admission.admit({ jobId: "a", subTasks: 10, ttlMs: 5000 }, 0));
  assertEquals(admission.outstanding(4999), 10);
  assertEquals(admission.outstanding(5000), 0);
});

Deno.test("JobAdmission restored from its JSON state keeps outstanding leases under a new bound", () => {
  const admission = new JobAdmission({ bound: 10 });
  leaseOf(admission.admit({ jobId: "a", subTasks: 8, ttlMs: 5000 }, 0));
  const again = JobAdmission.fromState(JSON.parse(JSON.stringify(admission.toState())), {
    bound: 12,
  });
  assertEquals([again.bound, again.outstanding(1)], [12, 8]);
  leaseOf(again.admit({ jobId: "b", subTasks: 4, ttlMs: 5000 }, 1));
});
