import { assertEquals, assertThrows } from "../_assert.ts";
import { type JobSpec, splitJob, subTaskId, subTaskIndex } from "../../src/jobs/job.ts";

const spec: JobSpec = {
  jobId: "job",
  items: ["a", "b", "c", "d"],
  deadlineAt: 1000,
  seed: 7,
  errorRate: 0,
  crash: [1],
  unsent: [3],
};

Deno.test("subTaskIndex() reads back the ids subTaskId() makes and nothing else", () => {
  assertEquals(subTaskIndex("job", 4, subTaskId("job", 3)), 3);
  assertEquals(subTaskIndex("job", 4, "job:4"), undefined);
  assertEquals(subTaskIndex("job", 4, "job:-1"), undefined);
  assertEquals(subTaskIndex("job", 4, "jo:1"), undefined);
});

Deno.test("splitJob() makes one message per item carrying the correlation key and sub-task id", () => {
  const messages = splitJob(spec);
  assertEquals(messages.map((m) => [m.jobId, m.subTaskId, m.item, m.crash]), [
    ["job", "job:0", "a", false],
    ["job", "job:1", "b", true],
    ["job", "job:2", "c", false],
  ]);
});

Deno.test("splitJob() with chosen indexes sends those, held back or not, and rejects others", () => {
  assertEquals(splitJob(spec, [3, 0]).map((m) => m.subTaskId), ["job:3", "job:0"]);
  assertThrows(() => splitJob(spec, [4]), /index must be from 0 to 3: current value is 4/);
});
