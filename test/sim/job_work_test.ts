import { assertEquals, assertThrows } from "../_assert.ts";
import { type JobSpec, splitJob } from "../../src/jobs/mod.ts";
import { simulateWork } from "../../sim/job_work.ts";

const spec: JobSpec = {
  jobId: "job",
  items: ["a", "b", "c", "d"],
  deadlineAt: 1000,
  seed: 7,
  errorRate: 0,
  crash: [1],
  unsent: [3],
};

Deno.test("simulateWork() gives the same outcome for the same message and throws on crash", () => {
  const [first, crashing] = splitJob(spec);
  assertEquals(simulateWork(first), simulateWork({ ...first }));
  assertThrows(() => simulateWork(crashing), /Simulated crash while working on sub-task job:1/);
  const failing = splitJob({ ...spec, errorRate: 1, crash: [] });
  assertEquals(simulateWork(failing[0]), { status: "failed", reason: "simulated failure" });
});
