/**
 * The gateway as a Cloudflare Worker.
 *
 * Branches go to the `DOWNSTREAM` service binding when there is one, else to `DOWNSTREAM_URL`
 * over HTTP, else to the simulated downstream inside the Worker (handy under `wrangler dev`).
 * The app is built once per isolate; its metrics are that isolate's alone.
 *
 * With a `LIMITER` Durable Object binding, every branch takes a permit from the global ceiling
 * (`PermitObject`) through a per-isolate `BlockLeasingLimiter` (blocks of `LIMITER_BLOCK_SIZE`
 * permits, default 8; `LIMITER_SAFE_SHARE` permits, default 0, while the object is unreachable),
 * and `/limiter/*` is the object's HTTP API for Deno and Bun fleets.
 *
 * Overload protection is per isolate, read from `ADMISSION*` and `BULKHEAD*` vars (see
 * `overloadFromEnv`; on by default): an inbound adaptive limit and one bulkhead per downstream,
 * with the same queues as on Deno and Bun, their waiters settled in their own requests' turns.
 *
 * Its `queue()` handler consumes the distributed jobs' sub-tasks (see `adapters/workers_jobs.ts`).
 *
 * With `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, the isolate
 * loads the OpenTelemetry SDK on its first request and registers it globally; after every
 * request its spans are sent with `fetch`, handed to `waitUntil` so the answer does not wait for
 * them. `HEDGE=optional-reads` hedges the optional reads, as on Deno and Bun.
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
import { waitUntil } from "cloudflare:workers";
import { trace } from "@opentelemetry/api";
import { createApp } from "../routes/app.ts";
import { createDownstream } from "../sim/downstream.ts";
import { simulateWork } from "../sim/job_work.ts";
import {
  defaultRegistry,
  type Fetcher,
  hedgeOptionalReads,
  overloadFromEnv,
  urlFetcher,
} from "../src/gateway/mod.ts";
import { BlockLeasingLimiter, type PermitService } from "../src/limits/mod.ts";
import { compileConfig, compileProduct, parseConfig } from "../src/aggregate/mod.ts";
// Bundled into the Worker by wrangler: the same endpoints as on Deno and Bun.
import config from "../fanfare.config.json" with { type: "json" };
import { LIMITER_PATH, PermitObject, type PermitObjectEnv } from "./permit_object.ts";
import { type Tracing, type TracingEnv, tracingFromEnv } from "./_tracing_from_env.ts";
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
// The global concurrency ceiling (bound as LIMITER in wrangler.toml).
export { PermitObject };

/** The part of a Durable Object namespace binding used for the limiter: RPC stubs and fetch. */
interface PermitObjectNamespace {
  idFromName(name: string): unknown;
  get(id: unknown): PermitService & Fetcher;
}

/** Bindings this Worker reads; the jobs routes and queue consumer need those of `JobsEnv`. */
interface Env extends Partial<JobsEnv>, PermitObjectEnv, TracingEnv {
  /** The global ceiling; without it branches take no permit. */
  LIMITER?: PermitObjectNamespace;
  /** Permits per block an isolate leases from the ceiling; 8 when unset. */
  LIMITER_BLOCK_SIZE?: string;
  /** Permits an isolate may use while the ceiling is unreachable; 0 (fail closed) when unset. */
  LIMITER_SAFE_SHARE?: string;
  /**
   * Lease lifetime of a block in ms; 30000 when unset. It bounds how long a block stays lost
   * when its isolate vanishes, or when a give-back started after a response never runs.
   */
  LIMITER_TTL_MS?: string;
  /** Service binding to the downstream Worker. */
  DOWNSTREAM?: Fetcher;
  /** Base URL of the downstream, when there is no service binding. */
  DOWNSTREAM_URL?: string;
  /** Overload protection per isolate (see `overloadFromEnv`): `adaptive` (default) or `off`. */
  ADMISSION?: string;
  ADMISSION_INITIAL_LIMIT?: string;
  ADMISSION_MAX_LIMIT?: string;
  ADMISSION_MAX_QUEUE?: string;
  BULKHEADS?: string;
  BULKHEAD_MAX_LIMIT?: string;
  BULKHEAD_MAX_QUEUE?: string;
  /** `"on"` lets `POST /jobs` take the `faults` testing aid; off otherwise (as in wrangler.toml). */
  JOBS_FAULTS?: string;
  /** When set (a secret), `/jobs` needs `authorization: Bearer <JOBS_TOKEN>`. */
  JOBS_TOKEN?: string;
  /** `optional-reads` hedges reviews, recommendations and shipping; no hedging otherwise. */
  HEDGE?: string;
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
    const jobs = hasJobBindings(env)
      ? {
        backend: workersJobBackend(env),
        allowFaults: env.JOBS_FAULTS === "on",
        token: env.JOBS_TOKEN || undefined,
      }
      : undefined;
    const limiter = env.LIMITER && new BlockLeasingLimiter(limiterService(env.LIMITER), {
      blockSize: Number(env.LIMITER_BLOCK_SIZE ?? 8),
      safeShare: Number(env.LIMITER_SAFE_SHARE ?? 0),
      ttlMs: Number(env.LIMITER_TTL_MS ?? 30_000),
      // The blocks are the isolate's, but every call to the object runs in whichever request
      // happened to start it; the runtime drops such work once that request has answered unless
      // it is handed to waitUntil.
      keepAlive: waitUntil,
      // A branch that waits for a permit is settled only from its own request's turns (a timer
      // of its own every ms): settled from another request's release, it was seen running in
      // that request's context, where its signals throw "Cannot perform I/O on behalf of a
      // different request", or cancelled as hung with the permits granted to it.
      handOffMs: 1,
      // Idle blocks go back at once: lingering 100 ms (kept alive the same way) measured more
      // skipped branches under the 32-connection load (bench:workers).
      lingerMs: 0,
      holder: `isolate-${crypto.randomUUID()}`,
    });
    // Per isolate: the inbound limit and the bulkheads guard this isolate's own event loop;
    // the PermitObject's ceiling stays the global bound. Their queues wait in their own
    // requests' turns (handOffMs), like the block pool's: a waiter woken from another
    // request's release could resume in that request or be cancelled as hung.
    const overload = overloadFromEnv({
      ADMISSION: env.ADMISSION,
      ADMISSION_INITIAL_LIMIT: env.ADMISSION_INITIAL_LIMIT,
      ADMISSION_MAX_LIMIT: env.ADMISSION_MAX_LIMIT,
      ADMISSION_MAX_QUEUE: env.ADMISSION_MAX_QUEUE,
      BULKHEADS: env.BULKHEADS,
      BULKHEAD_MAX_LIMIT: env.BULKHEAD_MAX_LIMIT,
      BULKHEAD_MAX_QUEUE: env.BULKHEAD_MAX_QUEUE,
    }, { handOffMs: 1, watchLag: false });
    const hedge = env.HEDGE === "optional-reads" ? hedgeOptionalReads() : {};
    const parsed = parseConfig(config, "fanfare.config.json");
    const endpoints = compileConfig(parsed, { default: downstream });
    app = createApp({
      // The product page as the config declares it; the built-in five when it declares none.
      registry: compileProduct(parsed, { default: downstream }, { hedge }) ??
        defaultRegistry(downstream, { hedge }),
      endpoints,
      jobs,
      limiter,
      // A permit here may wait on a round trip to the PermitObject for a block, which is no sign
      // of a saturated ceiling: optional branches keep their whole deadline to get one.
      optionalWaitMs: Infinity,
      ...overload,
    });
  }
  return app;
}

/** The one global object's RPC methods; a fresh stub per call, so no request owns it. */
function limiterService(namespace: PermitObjectNamespace): PermitService {
  const stub = () => namespace.get(namespace.idFromName("global"));
  return {
    acquire: (request) => stub().acquire(request),
    release: (leaseId) => stub().release(leaseId),
    renew: (leaseId, ttlMs) => stub().renew(leaseId, ttlMs),
    stats: () => stub().stats(),
  };
}

let tracing: Promise<Tracing | undefined> | undefined;

/**
 * The isolate's tracing, set up on its first request (the SDK is imported then, not before) and
 * registered as the global provider, which the gateway's default tracer follows.
 */
function tracingFor(env: Env): Promise<Tracing | undefined> {
  tracing ??= tracingFromEnv(env).then((setup) => {
    if (setup !== undefined) trace.setGlobalTracerProvider(setup.provider);
    return setup;
  });
  return tracing;
}

/** Serves `request` traced, then sends its spans within the request's `waitUntil`. */
async function fetchTraced(request: Request, env: Env): Promise<Response> {
  const setup = await tracingFor(env);
  try {
    return await appFor(env).fetch(request);
  } finally {
    if (setup !== undefined) waitUntil(setup.flush());
  }
}

function hasJobBindings(env: Env): env is Env & JobsEnv {
  return env.SUBTASKS !== undefined && env.JOB_JOIN !== undefined &&
    env.JOB_ADMISSION !== undefined;
}

export default {
  fetch(request, env) {
    if (env.LIMITER !== undefined && new URL(request.url).pathname.startsWith(`${LIMITER_PATH}/`)) {
      return env.LIMITER.get(env.LIMITER.idFromName("global")).fetch(request);
    }
    if (env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) {
      return fetchTraced(request, env);
    }
    return appFor(env).fetch(request);
  },
  queue(batch, env) {
    if (!hasJobBindings(env)) {
      throw new TypeError(
        "Cannot consume sub-tasks as the bindings SUBTASKS, JOB_JOIN and JOB_ADMISSION must be set: check wrangler.toml",
      );
    }
    return handleJobQueue(batch, env, { work: simulateWork });
  },
} satisfies ExportedHandler<Env>;
