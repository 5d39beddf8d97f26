/**
 * The jobs routes against hostile clients, over an in-memory backend: the faults testing aid is
 * off unless turned on, an index may not repeat, a resend asks admission, a cancel gives the
 * room back, and a token, when set, is required.
 *
 * @module
 */
import { createJobsRoute } from "../routes/jobs.ts";
import { assertEquals } from "./_assert.ts";
import { memoryJobBackend } from "./_memory_jobs.ts";

const post = (body: unknown, headers: Record<string, string> = {}) => ({
  method: "POST",
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(body),
});

async function submit(app: ReturnType<typeof createJobsRoute>, body: unknown) {
  const response = await app.request("/jobs", post(body));
  return { status: response.status, body: await response.json() };
}

Deno.test("the faults testing aid is refused unless the deployment turns it on", async () => {
  const { backend, sent } = memoryJobBackend({ bound: 1000 });
  const app = createJobsRoute({ backend });
  const refused = await submit(app, { items: ["a", "b"], faults: { unsent: [0, 1] } });
  assertEquals(refused.status, 400);
  assertEquals(refused.body.fields[0].field, "faults");
  assertEquals(sent.length, 0);
  const allowed = createJobsRoute({ backend, allowFaults: true });
  assertEquals((await submit(allowed, { items: ["a", "b"], faults: { unsent: [1] } })).status, 202);
});

Deno.test("a repeated sub-task index is a 400 in faults and in a resend", async () => {
  const { backend, sent } = memoryJobBackend({ bound: 1000 });
  const app = createJobsRoute({ backend, allowFaults: true });
  const repeated = await submit(app, { items: ["a", "b"], faults: { crash: [1, 1] } });
  assertEquals([repeated.status, repeated.body.fields[0].field], [400, "faults.crash.1"]);
  const { body: job } = await submit(app, { items: ["a", "b"] });
  const resend = await app.request(`/jobs/${job.jobId}/resend`, post({ subTasks: [0, 0, 0] }));
  assertEquals(resend.status, 400);
  assertEquals((await resend.json()).fields.map((f: { field: string }) => f.field), [
    "subTasks.1",
    "subTasks.2",
  ]);
  assertEquals(sent.length, 2);
});

Deno.test("a resend takes room under the bound and is refused with 503 when there is none", async () => {
  const { backend, sent, admission } = memoryJobBackend({ bound: 10 });
  const app = createJobsRoute({ backend });
  const { body: job } = await submit(app, { items: ["a", "b", "c", "d", "e", "f"] });
  const fits = await app.request(`/jobs/${job.jobId}/resend`, post({ subTasks: [0, 1, 2] }));
  assertEquals(fits.status, 202);
  assertEquals(admission.outstanding(Date.now()), 9);
  const refused = await app.request(`/jobs/${job.jobId}/resend`, post({ subTasks: [3, 4] }));
  assertEquals(refused.status, 503);
  assertEquals(refused.headers.get("retry-after") !== null, true);
  await refused.body?.cancel();
  assertEquals(sent.length, 6 + 3);
});

Deno.test("a cancel ends the job and gives back its room and its resends'", async () => {
  const { backend, admission } = memoryJobBackend({ bound: 10 });
  const app = createJobsRoute({ backend });
  const { body: job } = await submit(app, { items: ["a", "b", "c", "d", "e", "f"] });
  await (await app.request(`/jobs/${job.jobId}/resend`, post({ subTasks: [0] }))).body?.cancel();
  assertEquals((await submit(app, { items: ["a", "b", "c", "d"] })).status, 503);
  const cancelled = await app.request(`/jobs/${job.jobId}/cancel`, { method: "POST" });
  const view = await cancelled.json();
  assertEquals([cancelled.status, view.status, view.counts.skipped], [202, "cancelled", 6]);
  assertEquals(admission.outstanding(Date.now()), 0);
  assertEquals((await submit(app, { items: ["a", "b", "c", "d"] })).status, 202);
});

Deno.test("with a token, every jobs route needs it", async () => {
  const { backend } = memoryJobBackend({ bound: 10 });
  const app = createJobsRoute({ backend, token: "s3cret-token" });
  assertEquals((await app.request("/jobs", post({ items: ["a"] }))).status, 401);
  assertEquals((await app.request("/jobs/x")).status, 401);
  const ok = await app.request(
    "/jobs",
    post({ items: ["a"] }, { authorization: "Bearer s3cret-token" }),
  );
  assertEquals(ok.status, 202);
  await ok.body?.cancel();
});
