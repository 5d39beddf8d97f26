/**
 * The gateway as a Cloudflare Worker.
 *
 * Branches go to the `DOWNSTREAM` service binding when there is one, else to `DOWNSTREAM_URL`
 * over HTTP, else to the simulated downstream inside the Worker (handy under `wrangler dev`).
 * The app is built once per isolate; its metrics are that isolate's alone.
 *
 * Its `queue()` handler consumes the distributed jobs' sub-tasks (see `adapters/workers_jobs.ts`).
 *
 * Workers' types are not imported: `Env` and `ExportedHandler` are declared locally.
 *
 * @example
 * ```sh
 * wrangler dev   # then: curl 'http://127.0.0.1:8787/product/sku-42'
 * ```
 *
 * @module
 */
import { createApp } from "../routes/app.ts";
import { createDownstream } from "../routes/downstream.ts";
import { defaultRegistry } from "../src/branch_registry.ts";
import { type Fetcher, urlFetcher } from "../src/fetcher.ts";
import {
  handleJobQueue,
  JobAdmissionObject,
  JobJoinObject,
  type JobMessageBatch,
  type JobsEnv,
  workersJobBackend,
} from "./workers_jobs.ts";

// The distributed jobs' Durable Objects (bound in wrangler.toml).
export { JobAdmissionObject, JobJoinObject };

/** Bindings this Worker reads; the jobs routes and queue consumer need those of `JobsEnv`. */
interface Env extends Partial<JobsEnv> {
  /** Service binding to the downstream Worker. */
  DOWNSTREAM?: Fetcher;
  /** Base URL of the downstream, when there is no service binding. */
  DOWNSTREAM_URL?: string;
}

/** The part of Workers' `ExportedHandler` used here. */
interface ExportedHandler<E> {
  fetch(request: Request, env: E, ctx: unknown): Response | Promise<Response>;
  queue(batch: JobMessageBatch, env: E, ctx: unknown): Promise<void>;
}

let app: ReturnType<typeof createApp> | undefined;

function appFor(env: Env): ReturnType<typeof createApp> {
  if (app === undefined) {
    const downstream = env.DOWNSTREAM ??
      (env.DOWNSTREAM_URL ? urlFetcher(env.DOWNSTREAM_URL) : createDownstream());
    const jobs = hasJobBindings(env) ? workersJobBackend(env) : undefined;
    app = createApp({ registry: defaultRegistry(downstream), jobs });
  }
  return app;
}

function hasJobBindings(env: Env): env is Env & JobsEnv {
  return env.SUBTASKS !== undefined && env.JOB_JOIN !== undefined &&
    env.JOB_ADMISSION !== undefined;
}

export default {
  fetch(request, env) {
    return appFor(env).fetch(request);
  },
  queue(batch, env) {
    if (!hasJobBindings(env)) {
      throw new TypeError(
        "Cannot consume sub-tasks as the bindings SUBTASKS, JOB_JOIN and JOB_ADMISSION must be set: check wrangler.toml",
      );
    }
    return handleJobQueue(batch, env);
  },
} satisfies ExportedHandler<Env>;
