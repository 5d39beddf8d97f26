/**
 * The distributed fan-out's HTTP API: accept a job and send its sub-tasks to a queue (under an
 * admission bound on outstanding sub-tasks), poll or wait for its join's result, cancel it, and
 * send chosen sub-tasks again.
 *
 * @module
 */
import { zValidator } from "@hono/zod-validator";
import { Hono } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import * as z from "zod/mini";
import { type JobBackend, type JobSpec, splitJob } from "../src/jobs/mod.ts";
import { invalidRequest, reportInvalid } from "./product.ts";

/** Most sub-tasks in one job. */
export const MAX_JOB_ITEMS = 1000;
/** Longest wait a client may ask `GET /jobs/:id` for, in ms. */
export const MAX_WAIT_MS = 25_000;
/** How long past its deadline a job's admission lease lives, should its join never release it. */
const LEASE_GRACE_MS = 5_000;

/**
 * Options of {@linkcode createJobsRoute}.
 *
 * @example
 * ```ts
 * import type { JobsRouteOptions } from "./jobs.ts";
 * import type { JobBackend } from "../src/jobs/job_backend.ts";
 * declare const backend: JobBackend;
 * const options: JobsRouteOptions = { backend, newJobId: () => crypto.randomUUID() };
 * ```
 */
export interface JobsRouteOptions {
  /** Admission, joins and queue. */
  backend: JobBackend;
  /** A fresh correlation key; `crypto.randomUUID` by default. */
  newJobId?: () => string;
  /**
   * Whether `POST /jobs` accepts the `faults` testing aid; `false` by default, so that no
   * client of a live deployment can hold admission shut with sub-tasks it never sends.
   */
  allowFaults?: boolean;
  /** When set, every `/jobs` call must send `authorization: Bearer <token>` (else 401). */
  token?: string;
}

const indexList = z.array(z.int().check(z.minimum(0))).check(
  z.maxLength(MAX_JOB_ITEMS),
  z.superRefine((indexes, context) => {
    const seen = new Set<number>();
    indexes.forEach((index, position) => {
      if (seen.has(index)) {
        context.addIssue({
          code: "custom",
          path: [position],
          message: `must name each sub-task once: ${index} is repeated`,
        });
      }
      seen.add(index);
    });
  }),
);

const jobSchema = z.strictObject({
  items: z.array(
    z.string().check(z.regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1 to 64 of A-Z a-z 0-9 _ -")),
  ).check(z.minLength(1), z.maxLength(MAX_JOB_ITEMS)),
  deadlineMs: z._default(z.int().check(z.minimum(100), z.maximum(300_000)), 30_000),
  seed: z._default(z.int(), 0),
  errorRate: z._default(z.number().check(z.minimum(0), z.maximum(1)), 0),
  faults: z._default(
    z.strictObject({ crash: z._default(indexList, []), unsent: z._default(indexList, []) }),
    { crash: [], unsent: [] },
  ),
}).check(z.superRefine(({ items, faults }, context) => {
  for (const kind of ["crash", "unsent"] as const) {
    faults[kind].forEach((index, position) => {
      if (index >= items.length) {
        context.addIssue({
          code: "custom",
          path: ["faults", kind, position],
          message: `must be a sub-task index below ${items.length}: current value is ${index}`,
        });
      }
    });
  }
}));

const idSchema = z.object({
  id: z.string().check(z.regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1 to 64 of A-Z a-z 0-9 _ -")),
});
const waitSchema = z.object({
  waitMs: z._default(
    z.pipe(
      z.pipe(
        z.string().check(z.regex(/^\d+$/, "must be a whole number of ms")),
        z.transform(Number),
      ),
      z.number().check(z.maximum(MAX_WAIT_MS)),
    ),
    0,
  ),
});
const resendSchema = z.strictObject({ subTasks: indexList.check(z.minLength(1)) });

/**
 * Creates the jobs routes:
 *
 * - `POST /jobs` `{ items, deadlineMs?, seed?, errorRate?, faults?: { crash?, unsent? } }` →
 *   202 `{ jobId, total, sent, deadlineAt }` with `Location`; 503 with `Retry-After` when the
 *   job's sub-tasks do not fit under the bound on outstanding sub-tasks; 400 naming the field
 *   (also when the job alone is larger than the bound). `faults` is a testing aid, refused
 *   unless `allowFaults`: `crash` makes the consumer throw on those sub-tasks, `unsent` keeps
 *   the producer from sending them.
 * - `GET /jobs/:id?waitMs=` → 200 with the join's view, after waiting up to `waitMs` (at most
 *   {@linkcode MAX_WAIT_MS}) for the job to be over.
 * - `POST /jobs/:id/cancel` → 202 with the view: the job is over (`cancelled`), its room under
 *   the bound is given back, and consumers skip the sub-tasks they get from now on.
 * - `POST /jobs/:id/resend` `{ subTasks: [index…] }` (each index once) → 202 `{ sent }`: sends
 *   those sub-tasks again (the join counts each once), as admission allows: they take room
 *   under the bound until the job is over (503 with `Retry-After` when there is none); 409 when
 *   the job is over.
 *
 * Indexes in `faults` and `subTasks` must be distinct. With `token`, every route needs it.
 *
 * @example
 * ```ts
 * import { createJobsRoute } from "./jobs.ts";
 * import type { JobBackend } from "../src/jobs/job_backend.ts";
 * declare const backend: JobBackend;
 *
 * const jobs = createJobsRoute({ backend });
 * const accepted = await jobs.request("/jobs", {
 *   method: "POST",
 *   body: JSON.stringify({ items: ["a", "b", "c"], deadlineMs: 10_000 }),
 *   headers: { "content-type": "application/json" },
 * });
 * ```
 */
export function createJobsRoute(
  { backend, newJobId = () => crypto.randomUUID(), allowFaults = false, token }: JobsRouteOptions,
): Hono {
  const app = new Hono();
  if (token !== undefined) {
    app.use("/jobs", bearerAuth({ token })).use("/jobs/*", bearerAuth({ token }));
  }
  return app
    .post("/jobs", zValidator("json", jobSchema, reportInvalid), async function acceptJob(c) {
      const body = c.req.valid("json");
      if (!allowFaults && body.faults.crash.length + body.faults.unsent.length > 0) {
        return invalidRequest(c, [{
          field: "faults",
          message: "must be absent: fault injection is off on this deployment",
        }]);
      }
      const jobId = newJobId();
      const admission = await backend.admit({
        jobId,
        subTasks: body.items.length,
        ttlMs: body.deadlineMs + LEASE_GRACE_MS,
      });
      if (admission.kind === "too large") {
        return invalidRequest(c, [{
          field: "items",
          message:
            `must hold at most ${admission.bound} sub-tasks (the bound on outstanding sub-tasks): current count is ${body.items.length}`,
        }]);
      }
      if (admission.kind === "refused") {
        c.header("Retry-After", String(Math.ceil(admission.retryAfterMs / 1000)));
        return c.json({
          error: "overloaded",
          message:
            `Cannot accept a job of ${body.items.length} sub-tasks as at most ${admission.bound} may be outstanding: ${admission.outstanding} are`,
          outstanding: admission.outstanding,
          bound: admission.bound,
        }, 503);
      }
      const spec: JobSpec = {
        jobId,
        items: body.items,
        deadlineAt: Date.now() + body.deadlineMs,
        seed: body.seed,
        errorRate: body.errorRate,
        crash: body.faults.crash,
        unsent: body.faults.unsent,
      };
      const messages = splitJob(spec);
      try {
        await backend.start(spec, admission.leaseId);
        await backend.send(messages);
      } catch (error) {
        // Sub-tasks already sent run on; the join's deadline accounts for the rest as lost.
        await backend.release(admission.leaseId);
        throw error;
      }
      c.header("Location", `/jobs/${jobId}`);
      return c.json(
        { jobId, total: spec.items.length, sent: messages.length, deadlineAt: spec.deadlineAt },
        202,
      );
    })
    .get(
      "/jobs/:id",
      zValidator("param", idSchema, reportInvalid),
      zValidator("query", waitSchema, reportInvalid),
      async function showJob(c) {
        const view = await backend.view(c.req.valid("param").id, c.req.valid("query").waitMs);
        return view === undefined ? unknownJob(c.req.valid("param").id) : Response.json(view);
      },
    )
    .post(
      "/jobs/:id/cancel",
      zValidator("param", idSchema, reportInvalid),
      async function cancelJob(c) {
        const view = await backend.cancel(c.req.valid("param").id);
        return view === undefined
          ? unknownJob(c.req.valid("param").id)
          : Response.json(view, { status: 202 });
      },
    )
    .post(
      "/jobs/:id/resend",
      zValidator("param", idSchema, reportInvalid),
      zValidator("json", resendSchema, reportInvalid),
      async function resendSubTasks(c) {
        const { id } = c.req.valid("param");
        const { subTasks } = c.req.valid("json");
        const spec = await backend.spec(id);
        if (spec === undefined) return unknownJob(id);
        const outOfRange = subTasks.findIndex((index) => index >= spec.items.length);
        if (outOfRange !== -1) {
          return invalidRequest(c, [{
            field: `subTasks.${outOfRange}`,
            message: `must be a sub-task index below ${spec.items.length}: current value is ${
              subTasks[outOfRange]
            }`,
          }]);
        }
        const view = await backend.view(id, 0);
        if (view?.status !== "running") {
          return c.json({
            error: "job over",
            message:
              `Cannot resend sub-tasks of job ${id} as it must be running: it is ${view?.status}`,
          }, 409);
        }
        const admission = await backend.admit({
          jobId: id,
          subTasks: subTasks.length,
          ttlMs: Math.max(0, spec.deadlineAt - Date.now()) + LEASE_GRACE_MS,
        });
        if (admission.kind !== "admitted") {
          const retryAfterMs = admission.kind === "refused" ? admission.retryAfterMs : 1000;
          c.header("Retry-After", String(Math.ceil(retryAfterMs / 1000)));
          return c.json({
            error: "overloaded",
            message:
              `Cannot resend ${subTasks.length} sub-tasks as at most ${admission.bound} may be outstanding`,
            bound: admission.bound,
          }, 503);
        }
        await backend.send(splitJob(spec, subTasks));
        return c.json({ jobId: id, sent: subTasks.length }, 202);
      },
    );
}

function unknownJob(id: string): Response {
  return Response.json({ error: "not found", message: `No job '${id}'` }, { status: 404 });
}
