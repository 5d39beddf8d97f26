/**
 * `fanOutStream`: `fanOut` for work-sets that do not fit in memory. Tasks are read lazily from an
 * iterable, async iterable or `ReadableStream`; results leave as a `ReadableStream` that is also
 * async-iterable; a slow consumer stops the source from being read.
 *
 * @module
 */

import { Branch, type BranchContext } from "./_branch.ts";
import { DeadlineTimer } from "./_deadline_timer.ts";
import { branchFailures, sourceThrew } from "./_failures.ts";
import { isThenable, openSource, type Reader, type TaskSource } from "./_source.ts";
import { BranchError, BranchTimeoutError } from "./errors.ts";
import { checkOptions, type FailurePolicy } from "./fan_out_options.ts";

/**
 * One task's outcome, tagged with its input index. A failed task (`ok: false`) carries a
 * {@linkcode BranchError} (a {@linkcode BranchTimeoutError} for a timeout); `aborted` is `true`
 * when the branch did not fail on its own but was cut off by {@linkcode FanOutStream.abort} or the
 * caller's signal — such a task was not completed and may be run again.
 *
 * @example
 * ```ts
 * import type { StreamResult } from "./fan_out_stream.ts";
 * const describe = (r: StreamResult<number>) => r.ok ? `#${r.index} = ${r.value}` : r.error.message;
 * ```
 */
export type StreamResult<R> =
  | { readonly index: number; readonly ok: true; readonly value: R }
  | {
    readonly index: number;
    readonly ok: false;
    readonly error: BranchError;
    readonly aborted: boolean;
  };

export type { TaskSource } from "./_source.ts";

/**
 * Options of {@linkcode fanOutStream}; all optional.
 *
 * @example
 * ```ts
 * import type { FanOutStreamOptions } from "./fan_out_stream.ts";
 * const options: FanOutStreamOptions = { limit: 64, ordered: true, window: 256, timeoutMs: 500 };
 * ```
 */
export interface FanOutStreamOptions {
  /** Most branches in flight at once. 0 or absent means 16 (`DEFAULT_LIMIT`). */
  limit?: number;
  /**
   * `bestEffort` (default): a failure is a result with `ok: false` and the stream goes on.
   * `collectAll`: every task runs, only successes are emitted, and the stream then errors with an
   * `AggregateError` of the failures (kept in memory: `O(failures)`).
   * `failFast`: the first failure aborts every branch, closes the source, and the stream errors
   * with that `BranchError` once the consumer has read what was already queued. In ordered mode
   * too it stops at once: results held behind an unfinished head are dropped.
   */
  policy?: FailurePolicy;
  /** `true` (default): results leave in input order. `false`: in completion order. */
  ordered?: boolean;
  /**
   * Ordered mode: most results held behind an unfinished head; no task starts more than `window`
   * indexes past the head. Default: `4 * limit`. A window near `limit` stalls the whole stream
   * behind every slow task (see `deno task bench:stream`); wider costs one held result each.
   */
  window?: number;
  /** Results the stream buffers for a slow consumer before it stops reading tasks. Default: `limit`. */
  highWaterMark?: number;
  /** Each branch's own time limit in ms; a late branch becomes a `BranchTimeoutError`. */
  timeoutMs?: number;
  /**
   * Aborting it is `stream.abort(signal.reason)`. Already aborted, the stream errors with its
   * reason and reads no task, as `fanOut` rejects.
   */
  signal?: AbortSignal;
}

/**
 * Counters of a running {@linkcode fanOutStream}, for progress displays and tests.
 *
 * @example
 * ```ts
 * import type { FanOutStreamStats } from "./fan_out_stream.ts";
 * const line = (s: FanOutStreamStats) => `${s.inFlight} in flight, peak ${s.peakInFlight}`;
 * ```
 */
export interface FanOutStreamStats {
  /** Tasks read from the source. */
  pulled: number;
  /** Branches running now. */
  inFlight: number;
  /** Most branches running at once so far. */
  peakInFlight: number;
  /** Ordered mode: finished results waiting for the head. */
  held: number;
  /** Most results held at once so far. */
  peakHeld: number;
  /** Results handed to the stream and not yet read by the consumer. */
  queued: number;
  /** Branches that succeeded, failed on their own (errors and timeouts), or were aborted. */
  succeeded: number;
  failed: number;
  aborted: number;
}

/**
 * The results of {@linkcode fanOutStream}: a `ReadableStream` (pipe it, read it, cancel it) that
 * `for await` iterates directly (`break` cancels it: in-flight branches are aborted, the source
 * closed), plus the two ways of stopping early from the producer side.
 *
 * @example
 * ```ts
 * import { fanOutStream } from "./fan_out_stream.ts";
 * const results = fanOutStream([1, 2, 3], (n) => n * 2);
 * for await (const r of results) if (r.ok) console.log(r.index, r.value);
 * ```
 */
export interface FanOutStream<R> extends ReadableStream<StreamResult<R>> {
  /**
   * Stops reading new tasks (the source is closed), lets every in-flight branch finish, emits
   * their results, then closes the stream: nothing started is lost.
   */
  drain(): void;
  /**
   * Stops reading new tasks, aborts every in-flight branch's signal, emits each of them as an
   * `ok: false, aborted: true` result, then closes the stream. A task whose read from an async
   * source was still pending is dropped.
   */
  abort(reason?: unknown): void;
  /** A snapshot of the counters. */
  readonly stats: FanOutStreamStats;
}

/**
 * Runs `fn(task, { signal, index, deadline })` over every task of `source` with at most `limit`
 * branches in flight and streams the outcomes.
 *
 * Memory is bounded whatever the source's length: tasks read but not yet read back by the consumer
 * (in flight + queued) never exceed `limit + highWaterMark`; in ordered mode up to `window` finished
 * results may also wait behind the oldest unfinished task, and no task starts more than `window`
 * indexes past it. A consumer that stops reading stops the source from being read.
 *
 * Cancelling the stream (`cancel()`, or `break` out of `for await`) aborts every in-flight branch's
 * signal and calls the source's `return()` (a `ReadableStream` source is cancelled); no timer or
 * listener is left behind. {@linkcode FanOutStream.drain} and {@linkcode FanOutStream.abort} stop
 * from the producer side.
 *
 * Caveat: like `fanOut`, a branch that ignores its signal keeps running after it timed out or was
 * aborted; its seat is handed to the next task and its late outcome is ignored.
 *
 * @example
 * ```ts
 * import { fanOutStream } from "./fan_out_stream.ts";
 * async function* ids() {
 *   for (let i = 0; i < 1_000_000; i++) yield `sku-${i}`;
 * }
 * const results = fanOutStream(
 *   ids(),
 *   async (id, { signal }) => (await fetch(`https://example.com/${id}`, { signal })).status,
 *   { limit: 32, timeoutMs: 1000, ordered: false },
 * );
 * for await (const r of results) {
 *   if (!r.ok) console.error(r.index, r.error.message);
 * }
 * ```
 */
export function fanOutStream<T, R>(
  source: TaskSource<T>,
  fn: (task: T, context: BranchContext) => R | PromiseLike<R>,
  options: FanOutStreamOptions = {},
): FanOutStream<R> {
  if (typeof fn !== "function") {
    throw new TypeError(
      `Cannot fan out a stream as 'fn' must be a function: current type is ${typeof fn}`,
    );
  }
  const { limit, policy, ordered, signal, timeoutMs } = checkOptions(options);
  const window = count("window", options.window, 4 * limit);
  const highWaterMark = count("highWaterMark", options.highWaterMark, limit);
  const run = new StreamRun(openSource(source, "Cannot fan out a stream as 'source'"), fn, {
    limit,
    policy,
    ordered,
    window,
    highWaterMark,
    timeoutMs,
    signal,
  });
  return new ResultStream(run);
}

function count(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(
      `Cannot fan out a stream as '${name}' must be a non-negative integer: current value is ${value}`,
    );
  }
  return value;
}

interface Settings {
  limit: number;
  policy: FailurePolicy;
  ordered: boolean;
  window: number;
  highWaterMark: number;
  timeoutMs: number | undefined;
  signal: AbortSignal | undefined;
}

/** A seat for one branch at a time. Replaced, not reused, when its branch is given up on. */
interface Seat<R> {
  readonly position: number;
  readonly branch: Branch;
  busy: boolean;
  abandoned: boolean;
  readonly onValue: (value: R) => void;
  readonly onError: (cause: unknown) => void;
}

type Stop = "drain" | "abort" | "cancel" | "fail";

class StreamRun<T, R> {
  #reader: Reader<T>;
  #fn: (task: T, context: BranchContext) => R | PromiseLike<R>;
  #settings: Settings;
  #stream: ReadableStreamDefaultController<StreamResult<R>> | undefined;
  #seats: Seat<R>[] = [];
  #free: Seat<R>[] = [];
  /**
   * Ordered mode: finished results by `index % #ring.length`, waiting for the head. Grown on
   * demand (never past `window + 1`), like the seats, so memory follows what is held and running.
   */
  #ring: (StreamResult<R> | undefined)[] = [];
  #head = 0;
  #pulled = 0;
  #inFlight = 0;
  #held = 0;
  #peakInFlight = 0;
  #peakHeld = 0;
  #succeeded = 0;
  #failed = 0;
  #aborted = 0;
  #failures: BranchError[] = [];
  #pulling = false;
  #pumping = false;
  #exhausted = false;
  #sourceClosed = false;
  #stopped: Stop | undefined;
  #closed = false;
  #pendingError: { error: unknown } | undefined;
  #timer = new DeadlineTimer(() => this.#onTimer());
  #onCallerAbort = () => this.abort(this.#settings.signal!.reason);

  constructor(
    reader: Reader<T>,
    fn: (task: T, context: BranchContext) => R | PromiseLike<R>,
    settings: Settings,
  ) {
    this.#reader = reader;
    this.#fn = fn;
    this.#settings = settings;
  }

  /** The `ReadableStream`'s underlying source. */
  start(controller: ReadableStreamDefaultController<StreamResult<R>>): void {
    this.#stream = controller;
    const signal = this.#settings.signal;
    // Like fanOut (and p-map): a caller who gave up before the start gets the reason, not an
    // empty stream; nothing is read from the source.
    if (signal?.aborted) return this.#fail(signal.reason);
    signal?.addEventListener("abort", this.#onCallerAbort, { once: true });
  }

  pull(): void {
    if (this.#pendingError !== undefined) this.#errorWhenRead();
    else this.#pump();
  }

  cancel(reason: unknown): void {
    if (this.#closed) return;
    this.#stopped = "cancel";
    this.#closed = true;
    this.#stopAll(reason);
  }

  drain(): void {
    if (this.#stopped !== undefined) return;
    this.#stopped = "drain";
    this.#closeSource(undefined);
    this.#finishIfDone();
  }

  abort(reason: unknown = new DOMException("The fan-out was aborted", "AbortError")): void {
    if (this.#stopped !== undefined && this.#stopped !== "drain") return;
    this.#stopped = "abort";
    this.#closeSource(reason);
    for (const seat of this.#seats) {
      if (!seat.busy) continue;
      const index = this.#giveUp(seat, reason);
      this.#aborted++;
      this.#deliver({ index, ok: false, error: new BranchError(index, reason), aborted: true });
    }
    this.#finishIfDone();
  }

  get highWaterMark(): number {
    return this.#settings.highWaterMark;
  }

  get stats(): FanOutStreamStats {
    return {
      pulled: this.#pulled,
      inFlight: this.#inFlight,
      peakInFlight: this.#peakInFlight,
      held: this.#held,
      peakHeld: this.#peakHeld,
      queued: this.#closed ? 0 : this.#queued(),
      succeeded: this.#succeeded,
      failed: this.#failed,
      aborted: this.#aborted,
    };
  }

  #addSeat(): Seat<R> {
    const seat = this.#newSeat(this.#seats.length);
    this.#seats.push(seat);
    return seat;
  }

  #newSeat(position: number): Seat<R> {
    const seat: Seat<R> = {
      position,
      branch: new Branch(),
      busy: false,
      abandoned: false,
      // Bound once per seat, so a task costs no closure.
      onValue: (value) => {
        if (!seat.abandoned) this.#settle(seat, value, undefined);
      },
      onError: (cause) => {
        if (!seat.abandoned) {
          this.#settle(seat, undefined, new BranchError(seat.branch.index, cause));
        }
      },
    };
    return seat;
  }

  #queued(): number {
    return this.#settings.highWaterMark - (this.#stream!.desiredSize ?? 0);
  }

  #canStart(): boolean {
    const { limit, highWaterMark, ordered, window } = this.#settings;
    return this.#stopped === undefined && !this.#pulling && !this.#exhausted &&
      this.#inFlight < limit &&
      // Held results are bounded by the window, not by the consumer's buffer: counting them
      // here would shrink the window to `limit + highWaterMark` and stall behind a straggler.
      this.#inFlight + this.#queued() < limit + highWaterMark &&
      (!ordered || this.#pulled - this.#head <= window);
  }

  /** Starts tasks while the limits allow; re-entered by synchronous completions, hence the flag. */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#canStart()) {
        let step: IteratorResult<T> | PromiseLike<IteratorResult<T>>;
        try {
          step = this.#reader.next();
        } catch (cause) {
          this.#sourceFailed(cause);
          return;
        }
        if (isThenable(step)) {
          this.#pulling = true;
          step.then((result) => this.#onStep(result), (cause) => this.#sourceFailed(cause));
          return;
        }
        this.#take(step);
      }
    } finally {
      this.#pumping = false;
    }
  }

  #onStep(step: IteratorResult<T>): void {
    this.#pulling = false;
    // A task read after an abort or cancel was never started: drop it. After a drain it was
    // already taken from the source, so it runs.
    if (this.#stopped !== undefined && this.#stopped !== "drain") return;
    this.#take(step);
    this.#pump();
    this.#finishIfDone();
  }

  #take(step: IteratorResult<T>): void {
    let done: boolean | undefined;
    try {
      // A `next()` that returns no object throws on this read.
      done = step.done;
    } catch (cause) {
      this.#sourceFailed(cause);
      return;
    }
    if (done) {
      this.#exhausted = true;
      this.#sourceClosed = true;
      this.#finishIfDone();
      return;
    }
    const index = this.#pulled++;
    // `#canStart` keeps the seats within `limit`.
    const seat = this.#free.pop() ?? this.#addSeat();
    const timeoutMs = this.#settings.timeoutMs;
    let deadline = Infinity;
    let now = 0;
    if (timeoutMs !== undefined) {
      now = performance.now();
      deadline = now + timeoutMs;
      // Deadlines grow with start time, so only an idle timer needs arming.
      this.#timer.armBy(deadline);
    }
    seat.branch.begin(index, now, deadline);
    seat.busy = true;
    if (++this.#inFlight > this.#peakInFlight) this.#peakInFlight = this.#inFlight;
    let outcome: R | PromiseLike<R>;
    try {
      outcome = this.#fn(step.value, seat.branch);
    } catch (cause) {
      seat.onError(cause);
      return;
    }
    if (outcome instanceof Promise) outcome.then(seat.onValue, seat.onError);
    // Any other thenable goes through a promise, whose then() may throw or settle twice.
    else if (isThenable(outcome)) Promise.resolve(outcome).then(seat.onValue, seat.onError);
    else seat.onValue(outcome);
  }

  #settle(seat: Seat<R>, value: R | undefined, error: BranchError | undefined): void {
    const index = seat.branch.index;
    seat.busy = false;
    this.#inFlight--;
    this.#free.push(seat);
    if (error === undefined) {
      this.#succeeded++;
      this.#deliver({ index, ok: true, value: value as R });
    } else {
      this.#failed++;
      this.#deliver({ index, ok: false, error, aborted: false });
    }
    this.#pump();
    this.#finishIfDone();
  }

  /** Puts a result in order (or not), then hands what is ready to the stream. */
  #deliver(result: StreamResult<R>): void {
    if (this.#closed || this.#stopped === "fail") return;
    // A failFast failure ends the run at once, even behind an unfinished head.
    if (!result.ok && !result.aborted && this.#settings.policy === "failFast") {
      return this.#fail(result.error);
    }
    if (!this.#settings.ordered) return this.#emit(result);
    if (result.index !== this.#head) return this.#hold(result);
    this.#emit(result);
    this.#head++;
    if (this.#held === 0) return;
    const ring = this.#ring;
    let next: StreamResult<R> | undefined;
    while ((next = ring[this.#head % ring.length]) !== undefined) {
      ring[this.#head % ring.length] = undefined;
      this.#held--;
      this.#emit(next);
      this.#head++;
    }
  }

  /** Keeps a result that finished ahead of the head, growing the ring when it does not fit. */
  #hold(result: StreamResult<R>): void {
    const offset = result.index - this.#head;
    if (offset >= this.#ring.length) this.#growRing(offset);
    this.#ring[result.index % this.#ring.length] = result;
    if (++this.#held > this.#peakHeld) this.#peakHeld = this.#held;
  }

  /** Re-lays the ring to hold `offset` places past the head: doubling, capped at `window + 1`. */
  #growRing(offset: number): void {
    const old = this.#ring;
    const size = Math.min(this.#settings.window + 1, Math.max(16, 2 * old.length, offset + 1));
    const ring: (StreamResult<R> | undefined)[] = new Array(size).fill(undefined);
    for (let i = this.#head; i < this.#head + old.length; i++) {
      const held = old[i % old.length];
      if (held !== undefined) ring[i % size] = held;
    }
    this.#ring = ring;
  }

  /** Hands a result to the stream; collectAll keeps its failures for the end instead. */
  #emit(result: StreamResult<R>): void {
    if (result.ok || result.aborted || this.#settings.policy === "bestEffort") {
      this.#stream!.enqueue(result);
    } else this.#failures.push(result.error);
  }

  #fail(error: unknown): void {
    if (this.#closed || this.#stopped === "fail") return;
    this.#stopped = "fail";
    this.#stopAll(error);
    this.#pendingError = { error };
    this.#errorWhenRead();
  }

  /** Aborts every running branch, drops the results held for ordering, and lets go of all. */
  #stopAll(reason: unknown): void {
    for (const seat of this.#seats) {
      if (!seat.busy) continue;
      this.#giveUp(seat, reason);
      this.#aborted++;
    }
    this.#ring = [];
    this.#held = 0;
    this.#release(reason);
  }

  #sourceFailed(cause: unknown): void {
    this.#pulling = false;
    this.#sourceClosed = true;
    if (this.#closed) return;
    this.#fail(sourceThrew("the stream fan-out as its task source", cause));
  }

  /** Errors the stream once the consumer has read what was queued before the failure. */
  #errorWhenRead(): void {
    if (this.#closed || this.#queued() > 0) return;
    this.#closed = true;
    this.#stream!.error(this.#pendingError!.error);
  }

  #finishIfDone(): void {
    if (this.#closed || this.#pendingError || this.#inFlight > 0 || this.#held > 0) return;
    const stopped = this.#stopped;
    if (!this.#exhausted && stopped !== "drain" && stopped !== "abort") return;
    // A drain waits for a read already under way, since its task was taken from the source.
    if (this.#pulling && stopped !== "abort") return;
    this.#release(undefined);
    if (this.#settings.policy === "collectAll" && this.#failures.length > 0) {
      const failures = this.#failures;
      this.#failures = [];
      this.#pendingError = {
        error: branchFailures(failures, this.#succeeded + failures.length),
      };
      return this.#errorWhenRead();
    }
    this.#closed = true;
    this.#stream!.close();
  }

  /** Gives up on a running branch: aborts its signal and hands its seat to a fresh one. */
  #giveUp(seat: Seat<R>, reason: unknown): number {
    seat.abandoned = true;
    seat.busy = false;
    seat.branch.abort(reason);
    const fresh = this.#newSeat(seat.position);
    this.#seats[seat.position] = fresh;
    this.#free.push(fresh);
    this.#inFlight--;
    return seat.branch.index;
  }

  #onTimer(): void {
    const now = performance.now();
    let next = Infinity;
    for (const seat of this.#seats) {
      if (!seat.busy) continue;
      const { index, deadline } = seat.branch;
      if (deadline <= now) {
        const error = new BranchTimeoutError(index, this.#settings.timeoutMs!);
        this.#giveUp(seat, error);
        this.#failed++;
        this.#deliver({ index, ok: false, error, aborted: false });
        if (this.#closed || this.#stopped === "fail") return;
      } else if (deadline < next) next = deadline;
    }
    this.#timer.armBy(next);
    this.#pump();
    this.#finishIfDone();
  }

  /** Frees every timer and listener and closes the source; nothing of the run stays pending. */
  #release(reason: unknown): void {
    this.#timer.clear();
    this.#settings.signal?.removeEventListener("abort", this.#onCallerAbort);
    this.#closeSource(reason);
  }

  #closeSource(reason: unknown): void {
    if (this.#sourceClosed) return;
    this.#sourceClosed = true;
    this.#reader.close(reason);
  }
}

/** The stream handed to the caller: the run is its underlying source. */
class ResultStream<R> extends ReadableStream<StreamResult<R>> implements FanOutStream<R> {
  #run: StreamRun<unknown, R>;

  // deno-lint-ignore no-explicit-any
  constructor(run: StreamRun<any, R>) {
    super(
      {
        start: (controller) => run.start(controller),
        pull: () => run.pull(),
        cancel: (reason) => run.cancel(reason),
      },
      { highWaterMark: run.highWaterMark },
    );
    this.#run = run;
  }

  drain(): void {
    this.#run.drain();
  }

  abort(reason?: unknown): void {
    this.#run.abort(reason);
  }

  get stats(): FanOutStreamStats {
    return this.#run.stats;
  }
}
