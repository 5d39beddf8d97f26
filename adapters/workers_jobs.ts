/**
 * The distributed fan-out on Cloudflare: the join and admission Durable Objects (itty-router
 * HTTP APIs over the pure `JobJoin` and `JobAdmission`), the queue consumers, and the
 * `JobBackend` the jobs routes use. Every class here only loads, persists and forwards.
 *
 * Workers' types are not imported: the few platform shapes used are declared locally, as Hono
 * does for its `ExecutionContext`, so that `deno check` needs no Workers type package.
 *
 * @example
 * ```ts
 * // adapters/workers.ts
 * import { handleJobQueue, JobAdmissionObject, JobJoinObject } from "./workers_jobs.ts";
 * export { JobAdmissionObject, JobJoinObject };
 * ```
 *
 * @module
 */
import { AutoRouter, StatusError } from "itty-router";
import {
  type AdmissionOutcome,
  type AdmissionRequest,
  consumeDeadLetters,
  consumeSubTasks,
  JobAdmission,
  type JobBackend,
  JobJoin,
  type JobSpec,
  type JobView,
  type JoinClient,
  type JoinMeta,
  type JoinReport,
  type QueuedMessage,
  type RecordedOutcome,
  type RecordResult,
  type SubTaskMessage,
  type WorkOutcome,
} from "../src/jobs/mod.ts";

/** The queue of sub-tasks, as named in `wrangler.toml`. */
export const SUBTASK_QUEUE = "fanfare-subtasks";
/** Its dead-letter queue. */
export const DEAD_LETTER_QUEUE = "fanfare-subtasks-dlq";
/** Bound on outstanding sub-tasks when `MAX_OUTSTANDING_SUBTASKS` is not set. */
const DEFAULT_MAX_OUTSTANDING = 1000;
/** Most messages in one `sendBatch` (a Queues limit). */
const SEND_BATCH_LIMIT = 100;
/** Most keys in one storage `put` (a Durable Object storage limit). */
const PUT_KEYS_LIMIT = 128;
/** Where the join keeps a sub-task's outcome: this prefix and the sub-task id. */
const OUTCOME_PREFIX = "r:";

/** The part of a Durable Object's storage used here. */
interface DurableObjectStorage {
  get<T>(key: string): Promise<T | undefined>;
  list<T>(options: { prefix: string }): Promise<Map<string, T>>;
  put(entries: Record<string, unknown>): Promise<void>;
  setAlarm(scheduledTime: number): Promise<void>;
  deleteAlarm(): Promise<void>;
}

/** The part of Workers' `DurableObjectState` used here. */
interface DurableObjectState {
  readonly storage: DurableObjectStorage;
  blockConcurrencyWhile<T>(callback: () => Promise<T>): Promise<T>;
}

/** The part of a Durable Object stub used here. */
interface DurableObjectStub {
  fetch(input: string, init?: RequestInit): Promise<Response>;
}

/** The part of a Durable Object namespace binding used here. */
interface DurableObjectNamespace {
  idFromName(name: string): unknown;
  get(id: unknown): DurableObjectStub;
}

/** The part of a queue producer binding used here. */
interface Queue<Body> {
  sendBatch(messages: { body: Body }[]): Promise<void>;
}

/**
 * The part of Workers' `MessageBatch` used here.
 *
 * @example
 * ```ts
 * import type { JobMessageBatch } from "./workers_jobs.ts";
 * const batch: JobMessageBatch = { queue: "fanfare-subtasks", messages: [] };
 * ```
 */
export interface JobMessageBatch {
  readonly queue: string;
  readonly messages: readonly QueuedMessage<SubTaskMessage>[];
}

/**
 * The bindings of the distributed fan-out (see `wrangler.toml`).
 *
 * @example
 * ```ts
 * import type { JobsEnv } from "./workers_jobs.ts";
 * declare const env: JobsEnv;
 * env.MAX_OUTSTANDING_SUBTASKS; // "1000"
 * ```
 */
export interface JobsEnv {
  /** Producer binding of the sub-task queue. */
  SUBTASKS: Queue<SubTaskMessage>;
  /** One join per job, named by the correlation key. */
  JOB_JOIN: DurableObjectNamespace;
  /** The one admission object. */
  JOB_ADMISSION: DurableObjectNamespace;
  /** Bound on outstanding sub-tasks, a positive integer as text. */
  MAX_OUTSTANDING_SUBTASKS?: string;
}

/**
 * The join of one job, keyed by its correlation key: records reports once per sub-task id,
 * completes when all have reported, and finalises at the deadline from an alarm — or from
 * whichever request comes first after it, since a local runtime may drop a scheduled alarm when
 * it restarts. When the job is over it wakes waiting clients and releases the job's admission.
 *
 * HTTP API (internal): `POST /start {spec, leaseId}`, `GET /view?waitMs=`, `GET /state`,
 * `GET /spec`, `POST /report {reports}`, `POST /cancel`.
 *
 * @example
 * ```ts
 * import { JobJoinObject } from "./workers_jobs.ts";
 * export { JobJoinObject }; // bound as JOB_JOIN in wrangler.toml
 * ```
 */
export class JobJoinObject {
  #state: DurableObjectState;
  #env: JobsEnv;
  #join: JobJoin | undefined;
  #spec: JobSpec | undefined;
  #leaseId: string | undefined;
  #waiters = new Set<() => void>();
  #router = AutoRouter()
    .post("/start", async (request) => {
      const { spec, leaseId } = await request.json() as { spec: JobSpec; leaseId: string };
      return await this.#start(spec, leaseId);
    })
    .get("/view", async (request) => {
      const waitMs = Number(new URL(request.url).searchParams.get("waitMs") ?? 0);
      return await this.#view(waitMs);
    })
    .get("/state", async () => {
      const join = await this.#current();
      return { status: join.status, cancelled: join.cancelled };
    })
    .get("/spec", async () => {
      await this.#current();
      return this.#spec;
    })
    .post("/report", async (request) => {
      const { reports } = await request.json() as { reports: JoinReport[] };
      return { results: await this.#report(reports) };
    })
    .post("/cancel", async () => {
      const join = await this.#current();
      // A cancelled job is over: its room under the bound goes back, its waiters wake.
      if (join.cancel(Date.now())) await this.#finished([]);
      return join.view();
    });

  /** Loads the join, if the job was started, before the first request. */
  constructor(state: DurableObjectState, env: JobsEnv) {
    this.#state = state;
    this.#env = env;
    state.blockConcurrencyWhile(async () => {
      const meta = await state.storage.get<JoinMeta>("meta");
      if (meta === undefined) return;
      const outcomes = await state.storage.list<RecordedOutcome>({ prefix: OUTCOME_PREFIX });
      this.#join = JobJoin.fromState(
        meta,
        [...outcomes].map(([key, recorded]) => [key.slice(OUTCOME_PREFIX.length), recorded]),
      );
      this.#spec = await state.storage.get<JobSpec>("spec");
      this.#leaseId = await state.storage.get<string>("leaseId");
    });
  }

  /** Serves the internal HTTP API. */
  fetch(request: Request): Promise<Response> {
    return this.#router.fetch(request);
  }

  /** The deadline: finalises the job with what it has. Idempotent (alarms may repeat). */
  async alarm(): Promise<void> {
    const join = this.#join;
    if (join === undefined) return;
    if (join.advance(Date.now(), "alarm")) await this.#finished([]);
    else if (join.status === "running") await this.#state.storage.setAlarm(join.nextWakeAt());
  }

  async #start(spec: JobSpec, leaseId: string): Promise<JobView> {
    if (this.#join !== undefined) return (await this.#current()).view();
    const join = JobJoin.start({
      jobId: spec.jobId,
      total: spec.items.length,
      deadlineAt: spec.deadlineAt,
    });
    this.#join = join;
    this.#spec = spec;
    this.#leaseId = leaseId;
    await this.#state.storage.put({ meta: join.meta(), spec, leaseId });
    await this.#state.storage.setAlarm(spec.deadlineAt);
    return join.view();
  }

  async #report(reports: JoinReport[]): Promise<RecordResult[]> {
    const join = await this.#current();
    const wasRunning = join.status === "running";
    const now = Date.now();
    const recorded: string[] = [];
    const results = reports.map((report) => {
      const result = join.record(report, now);
      if (result === "recorded") recorded.push(report.subTaskId);
      return result;
    });
    if (wasRunning && join.status !== "running") await this.#finished(recorded);
    else await this.#persist(recorded);
    return results;
  }

  async #view(waitMs: number): Promise<JobView> {
    let join = await this.#current();
    if (join.status === "running" && waitMs > 0) {
      await this.#waitUntilOver(waitMs);
      join = await this.#current();
    }
    return join.view();
  }

  /** Resolves when the job is over or after `waitMs`, whichever is first. */
  async #waitUntilOver(waitMs: number): Promise<void> {
    let wake!: () => void;
    const over = new Promise<void>((resolve) => wake = resolve);
    this.#waiters.add(wake);
    const timer = setTimeout(wake, waitMs);
    try {
      await over;
    } finally {
      clearTimeout(timer);
      this.#waiters.delete(wake);
    }
  }

  /** The join with the deadline applied: reads finalise a job whose alarm never came. */
  async #current(): Promise<JobJoin> {
    const join = this.#join;
    if (join === undefined) throw new StatusError(404, "No such job");
    if (join.advance(Date.now())) await this.#finished([]);
    return join;
  }

  async #persist(recorded: string[]): Promise<void> {
    const join = this.#join!;
    const entries: Record<string, unknown> = { meta: join.meta() };
    for (const id of recorded) entries[OUTCOME_PREFIX + id] = join.outcome(id);
    const keys = Object.keys(entries);
    for (let start = 0; start < keys.length; start += PUT_KEYS_LIMIT) {
      const chunk = keys.slice(start, start + PUT_KEYS_LIMIT);
      await this.#state.storage.put(Object.fromEntries(chunk.map((key) => [key, entries[key]])));
    }
  }

  async #finished(recorded: string[]): Promise<void> {
    await this.#persist(recorded);
    await this.#state.storage.deleteAlarm();
    // Room first, then the clients: a client told "over" may at once submit its next job.
    // Every lease held by the job's id goes: its own and those its resends took.
    if (this.#join !== undefined) {
      try {
        await call(admissionStub(this.#env), "POST", "release-holder", {
          holder: this.#join.jobId,
        });
      } catch (error) {
        // The lease expires by itself shortly after the job's deadline.
        console.error(`Cannot release the admission of job ${this.#join?.jobId}:`, error);
      }
    }
    for (const wake of this.#waiters) wake();
  }
}

/**
 * The one admission object: the bound on outstanding sub-tasks across all jobs (backpressure).
 * One request per job, not per sub-task, so a single object is not on the hot path.
 *
 * HTTP API (internal): `POST /admit {jobId, subTasks, ttlMs}`, `POST /release {leaseId}`,
 * `POST /release-holder {holder}` (every lease of one job), `GET /stats`.
 *
 * @example
 * ```ts
 * import { JobAdmissionObject } from "./workers_jobs.ts";
 * export { JobAdmissionObject }; // bound as JOB_ADMISSION in wrangler.toml
 * ```
 */
export class JobAdmissionObject {
  #state: DurableObjectState;
  #admission: JobAdmission;
  #router = AutoRouter()
    .post("/admit", async (request) => {
      const outcome = this.#admission.admit(await request.json() as AdmissionRequest, Date.now());
      await this.#persist();
      return outcome;
    })
    .post("/release", async (request) => {
      const { leaseId } = await request.json() as { leaseId: string };
      const released = this.#admission.release(leaseId, Date.now());
      await this.#persist();
      return { released };
    })
    .post("/release-holder", async (request) => {
      const { holder } = await request.json() as { holder: string };
      const released = this.#admission.releaseHolder(holder, Date.now());
      await this.#persist();
      return { released };
    })
    .get("/stats", () => ({
      outstanding: this.#admission.outstanding(Date.now()),
      bound: this.#admission.bound,
    }));

  /** Loads the admission state before the first request, with the configured bound. */
  constructor(state: DurableObjectState, env: JobsEnv) {
    this.#state = state;
    const bound = maxOutstanding(env);
    this.#admission = new JobAdmission({ bound });
    state.blockConcurrencyWhile(async () => {
      const stored = await state.storage.get<ReturnType<JobAdmission["toState"]>>("ledger");
      if (stored !== undefined) this.#admission = JobAdmission.fromState(stored, { bound });
    });
  }

  /** Serves the internal HTTP API. */
  fetch(request: Request): Promise<Response> {
    return this.#router.fetch(request);
  }

  #persist(): Promise<void> {
    return this.#state.storage.put({ ledger: this.#admission.toState() });
  }
}

/**
 * The queue handler: sub-tasks from the work queue, each done by `work`, and dead letters from its
 * dead-letter queue.
 *
 * @example
 * ```ts
 * import { handleJobQueue, type JobMessageBatch, type JobsEnv } from "./workers_jobs.ts";
 * export default {
 *   queue: (batch: JobMessageBatch, env: JobsEnv) =>
 *     handleJobQueue(batch, env, { work: (message) => ({ status: "ok", value: message.item }) }),
 * };
 * ```
 */
export async function handleJobQueue(
  batch: JobMessageBatch,
  env: JobsEnv,
  { work }: JobQueueOptions,
): Promise<void> {
  const join = joinClient(env);
  switch (batch.queue) {
    case SUBTASK_QUEUE:
      await consumeSubTasks(batch.messages, { join, work });
      return;
    case DEAD_LETTER_QUEUE:
      await consumeDeadLetters(batch.messages, { join });
      return;
    default:
      throw new RangeError(
        `Cannot consume queue '${batch.queue}' as it must be ${SUBTASK_QUEUE} or ${DEAD_LETTER_QUEUE}`,
      );
  }
}

/**
 * Options of {@linkcode handleJobQueue}.
 *
 * @example
 * ```ts
 * import type { JobQueueOptions } from "./workers_jobs.ts";
 * const options: JobQueueOptions = { work: (message) => ({ status: "ok", value: message.item }) };
 * ```
 */
export interface JobQueueOptions {
  /** The work of one sub-task; a throw is a crash (the message is retried, then dead-lettered). */
  work: (message: SubTaskMessage) => WorkOutcome;
}

/**
 * The jobs routes' backend over this Worker's bindings.
 *
 * @example
 * ```ts
 * import { createJobsRoute } from "../routes/jobs.ts";
 * import { workersJobBackend, type JobsEnv } from "./workers_jobs.ts";
 * declare const env: JobsEnv;
 * const jobs = createJobsRoute({ backend: workersJobBackend(env) });
 * ```
 */
export function workersJobBackend(env: JobsEnv): JobBackend {
  return {
    async admit(request) {
      return await call<AdmissionOutcome>(admissionStub(env), "POST", "admit", request);
    },
    async release(leaseId) {
      await call(admissionStub(env), "POST", "release", { leaseId });
    },
    async start(spec, leaseId) {
      return await call<JobView>(joinStub(env, spec.jobId), "POST", "start", { spec, leaseId });
    },
    async send(messages) {
      for (let start = 0; start < messages.length; start += SEND_BATCH_LIMIT) {
        const chunk = messages.slice(start, start + SEND_BATCH_LIMIT);
        await env.SUBTASKS.sendBatch(chunk.map((body) => ({ body })));
      }
    },
    view(jobId, waitMs) {
      return callUnlessUnknown<JobView>(joinStub(env, jobId), "GET", `view?waitMs=${waitMs}`);
    },
    cancel(jobId) {
      return callUnlessUnknown<JobView>(joinStub(env, jobId), "POST", "cancel");
    },
    spec(jobId) {
      return callUnlessUnknown<JobSpec>(joinStub(env, jobId), "GET", "spec");
    },
  };
}

function joinClient(env: JobsEnv): JoinClient {
  return {
    state(jobId) {
      return callUnlessUnknown(joinStub(env, jobId), "GET", "state");
    },
    async report(jobId, reports) {
      const body = await call<{ results: RecordResult[] }>(
        joinStub(env, jobId),
        "POST",
        "report",
        { reports },
      );
      return body.results;
    },
  };
}

function joinStub(env: JobsEnv, jobId: string): DurableObjectStub {
  return env.JOB_JOIN.get(env.JOB_JOIN.idFromName(jobId));
}

function admissionStub(env: JobsEnv): DurableObjectStub {
  return env.JOB_ADMISSION.get(env.JOB_ADMISSION.idFromName("admission"));
}

function maxOutstanding(env: JobsEnv): number {
  const text = env.MAX_OUTSTANDING_SUBTASKS;
  if (text === undefined || text === "") return DEFAULT_MAX_OUTSTANDING;
  const bound = Number(text);
  if (!Number.isSafeInteger(bound) || bound < 1) {
    throw new RangeError(
      `Cannot configure admission as 'MAX_OUTSTANDING_SUBTASKS' must be a positive integer: current value is ${text}`,
    );
  }
  return bound;
}

async function callUnlessUnknown<T>(
  stub: DurableObjectStub,
  method: string,
  path: string,
): Promise<T | undefined> {
  const response = await stub.fetch(`https://object/${path}`, { method });
  if (response.status === 404) {
    await response.body?.cancel();
    return undefined;
  }
  return await readJson<T>(response, path);
}

async function call<T>(
  stub: DurableObjectStub,
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  const response = await stub.fetch(`https://object/${path}`, {
    method,
    body: body === undefined ? undefined : JSON.stringify(body),
    headers: { "content-type": "application/json" },
  });
  return await readJson<T>(response, path);
}

async function readJson<T>(response: Response, path: string): Promise<T> {
  if (!response.ok) {
    throw new Error(
      `Cannot ${path} as the Durable Object must answer 2xx: it answered ${response.status} ${await response
        .text()}`,
    );
  }
  return await response.json() as T;
}
