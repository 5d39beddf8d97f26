/**
 * `Supervisor`: restarts a worker whose task crashed it, with backoff; retries the task a few
 * times, then records it failed; stops the whole job on a crash loop. After Erlang/OTP's
 * supervisor (restart intensity: at most `restarts` within `periodMs`) and Akka's
 * `BackoffSupervisor`.
 *
 * @module
 */

import { runWorkers } from "../executor/mod.ts";
import { type Backoff, fullJitter } from "./backoff.ts";
import { CrashLoopError, isTaskCrashedError, TaskCrashedError } from "./errors.ts";
import { type Sleep, sleep as timerSleep } from "./_sleep.ts";

/**
 * What a supervised task function is given. On the first attempt it is the caller's own context
 * (for example `fanOutStream`'s), passed on unchanged to save an allocation per task; a retry
 * after a crash gets a copy with `attempt` set.
 *
 * @example
 * ```ts
 * import type { SupervisedContext } from "./supervisor.ts";
 * const describe = (c: SupervisedContext) => `task ${c.index}, attempt ${c.attempt ?? 1}`;
 * ```
 */
export interface SupervisedContext {
  /** The task's index in its job. */
  readonly index: number;
  /** Aborts when the task must stop (the caller's signal, a crash loop, the hard limit). */
  readonly signal?: AbortSignal;
  /** 2, 3, … on a retry after a crash; absent on the first attempt. */
  readonly attempt?: number;
}

/**
 * Options of {@linkcode Supervisor}; all optional.
 *
 * @example
 * ```ts
 * import type { SupervisorOptions } from "./supervisor.ts";
 * const options: SupervisorOptions = { maxRetries: 2, restarts: 10, periodMs: 10_000 };
 * ```
 */
export interface SupervisorOptions {
  /** Retries of a task that crashed its worker; then it is recorded failed. 2 by default. */
  maxRetries?: number;
  /** Wait before a crashed task's retry `n` (its worker's restart); full jitter 10 ms–1 s by default. */
  backoff?: Backoff;
  /** Crash loop: this many crashes (restarts)… 10 by default. */
  restarts?: number;
  /** …within this many ms stop the job. 10,000 by default. */
  periodMs?: number;
  /** A task running longer than this, in ms, is a crash: its signal aborts and it is abandoned. */
  hardLimitMs?: number;
  /**
   * Which thrown errors are crashes. An error that is not is the task's own outcome and passes
   * through untouched (no retry). Every error by default.
   */
  isCrash?: (error: unknown) => boolean;
  /** Names a task in messages; `task <index>` by default. */
  describe?: (index: number) => string;
  /** The clock of the crash-loop window, in ms; `performance.now` by default. */
  clock?: () => number;
  /** The backoff wait; a timer cut short by the task's signal by default. */
  sleep?: Sleep;
  /** Told each restart after a crash; must not throw. */
  onRestart?: (index: number, crash: unknown, attempt: number) => void;
}

/** The reason given to a task that ran past the hard limit. */
class HardLimitError extends Error {
  constructor(task: string, ms: number) {
    super(`Cannot let ${task} run on as it exceeded the hard limit of ${ms} ms`);
    this.name = "HardLimitError";
  }
}

/**
 * Supervises the tasks of one job. `supervise(work)` returns a task function for `runWorkers`,
 * `fanOut` or `fanOutStream`: when `work` crashes (throws an error `isCrash` accepts, or runs past
 * `hardLimitMs`), the worker is restarted after a `backoff` wait and the task tried again, up to
 * `maxRetries` times; then the task rejects with a {@linkcode TaskCrashedError} holding every
 * crash, which the executor records as that task's failure, and the worker moves on. A task
 * settles exactly once however often it crashed, so counts and checksums over the results see
 * it once.
 *
 * When `restarts` crashes happen within `periodMs` (a crash loop), the supervisor stops the job:
 * `signal` aborts with a {@linkcode CrashLoopError} naming the task whose crash tripped it, the
 * task rejects with that error, and every other supervised task stops at its next crash or
 * wait. Pass `signal` to the executor so that in-flight tasks stop too.
 *
 * The fast path costs one `then` per task: no timer, controller or allocation unless the task
 * crashes or `hardLimitMs` is set.
 *
 * @example
 * ```ts
 * import { fanOutStream } from "../executor/mod.ts";
 * import { Supervisor } from "./supervisor.ts";
 *
 * const supervisor = new Supervisor({ maxRetries: 2, restarts: 10, periodMs: 10_000 });
 * const results = fanOutStream(
 *   [1, 2, 3],
 *   supervisor.supervise(async (n: number) => n * 2),
 *   { limit: 2, signal: supervisor.signal },
 * );
 * for await (const r of results) console.log(r.index, r.ok);
 * ```
 */
export class Supervisor {
  #maxRetries: number;
  #backoff: Backoff;
  #restarts: number;
  #periodMs: number;
  #hardLimitMs: number | undefined;
  #isCrash: (error: unknown) => boolean;
  #describe: (index: number) => string;
  #clock: () => number;
  #sleep: Sleep;
  #onRestart?: (index: number, crash: unknown, attempt: number) => void;
  #stop = new AbortController();
  /** When the recent crashes happened, oldest first (at most `restarts` kept). */
  #recent: number[] = [];
  #restartCount = 0;
  #gaveUp = 0;

  /** A supervisor with no crash so far. */
  constructor(
    {
      maxRetries = 2,
      backoff = fullJitter(),
      restarts = 10,
      periodMs = 10_000,
      hardLimitMs,
      isCrash = () => true,
      describe = (index) => `task ${index}`,
      clock = () => performance.now(),
      sleep = timerSleep,
      onRestart,
    }: SupervisorOptions = {},
  ) {
    const whole = (name: string, value: number, min: number) => {
      if (!Number.isSafeInteger(value) || value < min) {
        throw new RangeError(
          `Cannot create a Supervisor as '${name}' must be an integer of at least ${min}: current value is ${value}`,
        );
      }
    };
    whole("maxRetries", maxRetries, 0);
    whole("restarts", restarts, 1);
    if (!(periodMs > 0)) {
      throw new RangeError(
        `Cannot create a Supervisor as 'periodMs' must be a positive number: current value is ${periodMs}`,
      );
    }
    if (hardLimitMs !== undefined && !(hardLimitMs > 0 && Number.isFinite(hardLimitMs))) {
      throw new RangeError(
        `Cannot create a Supervisor as 'hardLimitMs' must be a positive finite number: current value is ${hardLimitMs}`,
      );
    }
    this.#maxRetries = maxRetries;
    this.#backoff = backoff;
    this.#restarts = restarts;
    this.#periodMs = periodMs;
    this.#hardLimitMs = hardLimitMs;
    this.#isCrash = isCrash;
    this.#describe = describe;
    this.#clock = clock;
    this.#sleep = sleep;
    this.#onRestart = onRestart;
  }

  /** Aborts with a {@linkcode CrashLoopError} when a crash loop stops the job. */
  get signal(): AbortSignal {
    return this.#stop.signal;
  }

  /** Workers restarted so far (one per crash). */
  get restarts(): number {
    return this.#restartCount;
  }

  /** Tasks given up on (recorded failed) after crashing more than `maxRetries` times. */
  get gaveUp(): number {
    return this.#gaveUp;
  }

  /** Wraps `work` so that its crashes are supervised; see the class. */
  supervise<T, R, C extends SupervisedContext>(
    work: (task: T, context: C) => R | PromiseLike<R>,
  ): (task: T, context: C) => Promise<R> {
    return (task, context) => {
      const retry = (error: unknown) => this.#crashed(work, task, context, error, []);
      try {
        return Promise.resolve(this.#attempt(work, task, context)).then(undefined, retry);
      } catch (error) {
        return retry(error);
      }
    };
  }

  #attempt<T, R, C extends SupervisedContext>(
    work: (task: T, context: C) => R | PromiseLike<R>,
    task: T,
    context: C,
  ): R | PromiseLike<R> {
    if (this.#hardLimitMs === undefined) return work(task, context);
    return this.#withHardLimit(work, task, context, this.#hardLimitMs);
  }

  async #withHardLimit<T, R, C extends SupervisedContext>(
    work: (task: T, context: C) => R | PromiseLike<R>,
    task: T,
    context: C,
    ms: number,
  ): Promise<R> {
    const controller = new AbortController();
    const parent = context.signal;
    const onParentAbort = () => controller.abort(parent!.reason);
    if (parent?.aborted) onParentAbort();
    else parent?.addEventListener("abort", onParentAbort, { once: true });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const overrun = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new HardLimitError(this.#describe(context.index), ms);
        controller.abort(error);
        reject(error);
      }, ms);
    });
    try {
      return await Promise.race([work(task, { ...context, signal: controller.signal }), overrun]);
    } finally {
      clearTimeout(timer);
      parent?.removeEventListener("abort", onParentAbort);
    }
  }

  async #crashed<T, R, C extends SupervisedContext>(
    work: (task: T, context: C) => R | PromiseLike<R>,
    task: T,
    context: C,
    error: unknown,
    crashes: unknown[],
  ): Promise<R> {
    for (;;) {
      const signal = context.signal;
      if (signal?.aborted || this.#stop.signal.aborted) {
        throw this.#stop.signal.aborted ? this.#stop.signal.reason : signal!.reason;
      }
      if (!(error instanceof HardLimitError) && !this.#isCrash(error)) throw error;
      crashes.push(error);
      this.#restartCount++;
      this.#noteCrash(context.index, error);
      if (crashes.length > this.#maxRetries) {
        this.#gaveUp++;
        throw new TaskCrashedError(this.#describe(context.index), crashes);
      }
      const attempt = crashes.length + 1;
      this.#onRestart?.(context.index, error, attempt);
      await this.#sleep(this.#backoff(crashes.length), signal);
      if (this.#stop.signal.aborted) throw this.#stop.signal.reason;
      try {
        return await this.#attempt(work, task, { ...context, attempt });
      } catch (next) {
        error = next;
      }
    }
  }

  /** Counts a crash in the window; at `restarts` of them within `periodMs`, stops the job. */
  #noteCrash(index: number, error: unknown): void {
    const now = this.#clock();
    this.#recent.push(now);
    while (this.#recent.length > 0 && this.#recent[0] <= now - this.#periodMs) this.#recent.shift();
    if (this.#recent.length < this.#restarts) return;
    const loop = new CrashLoopError({
      task: this.#describe(index),
      restarts: this.#recent.length,
      periodMs: this.#periodMs,
      cause: error,
    });
    this.#stop.abort(loop);
    throw loop;
  }
}

/**
 * Options of {@linkcode runSupervised}: `runWorkers`' plus the {@linkcode Supervisor}'s.
 *
 * @example
 * ```ts
 * import type { RunSupervisedOptions } from "./supervisor.ts";
 * const options: RunSupervisedOptions = { workers: 8, maxRetries: 2, onFailed: (i, e) => console.error(i, e) };
 * ```
 */
export interface RunSupervisedOptions extends SupervisorOptions {
  /** How many workers pull from the iterator at once (a positive integer). */
  workers: number;
  /** Workers stop pulling when it aborts; the call then rejects with `signal.reason`. */
  signal?: AbortSignal;
  /**
   * Told of a task given up on after its crashes (a {@linkcode TaskCrashedError}); record it as
   * failed here. Without it, such a task stops the pool like any error of `runWorkers`.
   */
  onFailed?: (index: number, error: TaskCrashedError) => void;
}

/**
 * `runWorkers` under a {@linkcode Supervisor}: a task that crashes its worker is retried after a
 * backoff, a task that keeps crashing is handed to `onFailed` and the worker goes on, and a crash
 * loop rejects the whole run with a {@linkcode CrashLoopError} naming the task. `work` gets the
 * task and a {@linkcode SupervisedContext} whose `signal` aborts on the caller's abort or a crash
 * loop.
 *
 * @example
 * ```ts
 * import { runSupervised } from "./supervisor.ts";
 *
 * const failed: number[] = [];
 * await runSupervised([1, 2, 3], {
 *   workers: 2,
 *   maxRetries: 1,
 *   onFailed: (index) => failed.push(index),
 * }, async (n, { attempt }) => {
 *   if (n === 2 && attempt === undefined) throw new Error("worker crashed");
 * });
 * failed; // []: task 1 crashed once and its retry succeeded
 * ```
 */
export async function runSupervised<T>(
  tasks: Iterable<T>,
  { workers, signal, onFailed, ...options }: RunSupervisedOptions,
  work: (task: T, context: SupervisedContext) => unknown,
): Promise<void> {
  const supervisor = new Supervisor(options);
  const stop = signal === undefined
    ? supervisor.signal
    : AbortSignal.any([signal, supervisor.signal]);
  const supervised = supervisor.supervise(work);
  await runWorkers(tasks, { workers, signal: stop }, async (task, index) => {
    try {
      await supervised(task, { index, signal: stop });
    } catch (error) {
      if (onFailed === undefined || !isTaskCrashedError(error)) throw error;
      onFailed(index, error);
    }
  });
}
