/**
 * `mergeStreams`: several async sources read as one stream, by priority or by weight, with
 * backpressure to each source and one cancellation that closes them all.
 *
 * @module
 */

import { type Picker, priorityPicker, weightedPicker } from "./_pickers.ts";

/**
 * What `mergeStreams` reads: an async iterable (for example a `fanOutStream`) or a
 * `ReadableStream`.
 *
 * @example
 * ```ts
 * import type { MergeSource } from "./merge_streams.ts";
 * async function* ticks() { yield 1; yield 2; }
 * const source: MergeSource<number> = ticks();
 * ```
 */
export type MergeSource<T> = AsyncIterable<T> | ReadableStream<T>;

/**
 * One merged item and the index of the source it came from.
 *
 * @example
 * ```ts
 * import type { Merged } from "./merge_streams.ts";
 * const item: Merged<string> = { source: 0, value: "price" };
 * ```
 */
export interface Merged<T> {
  /** Index of the source in the array given to `mergeStreams`. */
  readonly source: number;
  /** The item. */
  readonly value: T;
}

/**
 * Options of {@linkcode mergeStreams}: `priority` or `weights` (not both), one number per source;
 * with neither, every source weighs 1 (round robin).
 *
 * @example
 * ```ts
 * import type { MergeOptions } from "./merge_streams.ts";
 * const urgentFirst: MergeOptions = { priority: [2, 1, 0], agingBound: 8 };
 * const fair: MergeOptions = { weights: [3, 1] };
 * ```
 */
export interface MergeOptions {
  /** Per source; a higher number is served first whenever it has an item ready. */
  priority?: readonly number[];
  /**
   * Priority mode: how many times a ready item may be passed over before it is served ahead of
   * fresher ones; 16 by default. A ready item waits at most `agingBound + sources − 1` items.
   */
  agingBound?: number;
  /** Per source, positive: each ready source is served in proportion to its weight. */
  weights?: readonly number[];
  /** Aborting it errors the merged stream with its reason and closes every source. */
  signal?: AbortSignal;
}

/**
 * The merged stream: a `ReadableStream` that `for await` iterates directly (`break` cancels it,
 * which closes every source).
 *
 * @example
 * ```ts
 * import { mergeStreams } from "./merge_streams.ts";
 * async function* from(...items: string[]) { yield* items; }
 * for await (const { source, value } of mergeStreams([from("a"), from("b")])) console.log(source, value);
 * ```
 */
export type MergedStream<T> = ReadableStream<Merged<T>>;

/**
 * Reads `sources` as one stream of `{ source, value }`, choosing among the sources that have an
 * item ready: by `priority` (highest first, with aging so that a low-priority source is never
 * starved: see `agingBound`), or by `weights` (smooth weighted round robin: while every source
 * has items ready, source `i` gets `w_i / W` of them, its count within 2 of that share).
 *
 * Backpressure: nothing is read until the consumer asks, and then each source is read at most
 * one item ahead (the item it offers for the next choice), so a slow consumer stops every source.
 * Each source's own order is kept; no item is dropped or repeated. The stream closes when every
 * source has ended.
 *
 * Cancellation: cancelling the merged stream (or `break` in `for await`), aborting `signal`, or
 * an error from one source closes every source still open (`cancel()` on a `ReadableStream`,
 * `return()` on an iterator) without waiting for them; a source error then errors the merged
 * stream. An async generator that is blocked in an `await` runs its `finally` only when that
 * await settles — pass sources that watch a signal (as `fanOutStream` does) to stop at once.
 *
 * @example
 * ```ts
 * import { fanOutStream } from "../executor/mod.ts";
 * import { mergeStreams } from "./merge_streams.ts";
 *
 * const urgent = fanOutStream([1, 2], async (n) => n * 10);
 * const bulk = fanOutStream([3, 4, 5], async (n) => n * 10);
 * for await (const { source, value } of mergeStreams([urgent, bulk], { priority: [1, 0] })) {
 *   console.log(source, value.ok && value.value);
 * }
 * ```
 */
export function mergeStreams<T>(
  sources: readonly MergeSource<T>[],
  { priority, weights, agingBound = 16, signal }: MergeOptions = {},
): MergedStream<T> {
  const picker = pickerOf(sources, { priority, weights, agingBound });
  const merge = new Merge(sources.map(openSource), picker);
  const stream = new ReadableStream<Merged<T>>({
    start: (controller) => {
      if (signal === undefined) return;
      if (signal.aborted) return merge.abort(controller, signal.reason);
      merge.onAbort = () => merge.abort(controller, signal.reason);
      signal.addEventListener("abort", merge.onAbort, { once: true });
      merge.dispose = () => signal.removeEventListener("abort", merge.onAbort!);
    },
    pull: (controller) => merge.pull(controller),
    cancel: (reason) => merge.close(reason),
  }, { highWaterMark: 0 });
  return stream as MergedStream<T>;
}

function pickerOf(
  sources: readonly unknown[],
  { priority, weights, agingBound }: Pick<MergeOptions, "priority" | "weights" | "agingBound">,
): Picker {
  if (!Array.isArray(sources)) {
    throw new TypeError(
      `Cannot merge streams as 'sources' must be an array: current type is ${typeof sources}`,
    );
  }
  if (priority !== undefined && weights !== undefined) {
    throw new TypeError("Cannot merge streams with both 'priority' and 'weights': pick one");
  }
  const perSource = (name: string, values: readonly number[], ok: (v: number) => boolean) => {
    if (!Array.isArray(values) || values.length !== sources.length || !values.every(ok)) {
      throw new RangeError(
        `Cannot merge streams as '${name}' must hold one ${
          name === "weights" ? "positive finite" : "finite"
        } number per source (${sources.length}): current value is ${JSON.stringify(values)}`,
      );
    }
  };
  if (priority !== undefined) {
    perSource("priority", priority, Number.isFinite);
    if (!Number.isSafeInteger(agingBound) || agingBound! < 1) {
      throw new RangeError(
        `Cannot merge streams as 'agingBound' must be a positive integer: current value is ${agingBound}`,
      );
    }
    return priorityPicker(priority, agingBound!);
  }
  const w = weights ?? sources.map(() => 1);
  perSource("weights", w, (v) => v > 0 && Number.isFinite(v));
  return weightedPicker(w);
}

/** One source as the merge reads it. */
interface Source<T> {
  next(): Promise<IteratorResult<T>>;
  close(reason: unknown): void;
}

function openSource<T>(source: MergeSource<T>, index: number): Source<T> {
  const candidate = source as Partial<ReadableStream<T> & AsyncIterable<T>> | null;
  if (typeof candidate?.getReader === "function") {
    const reader = candidate.getReader();
    return {
      next: () => reader.read() as Promise<IteratorResult<T>>,
      close: (reason) => void reader.cancel(reason).catch(() => {}),
    };
  }
  if (typeof candidate?.[Symbol.asyncIterator] !== "function") {
    throw new TypeError(
      `Cannot merge streams as source ${index} must be an async iterable or ReadableStream: current type is ${
        source === null ? "null" : typeof source
      }`,
    );
  }
  const iterator = candidate[Symbol.asyncIterator]!();
  return {
    next: () => Promise.resolve(iterator.next()),
    close() {
      // The source is being abandoned: an error while closing it changes no outcome.
      try {
        Promise.resolve(iterator.return?.()).catch(() => {});
      } catch {
        // See above.
      }
    },
  };
}

/** The merge's state: one offered item or one read in flight per open source. */
class Merge<T> {
  #sources: Source<T>[];
  #picker: Picker;
  #heads: ({ value: T } | undefined)[];
  #reading: boolean[];
  #ended: boolean[];
  #ready: boolean[];
  #wake: (() => void) | undefined;
  #failure: { error: unknown } | undefined;
  #closed = false;
  onAbort: (() => void) | undefined;
  dispose: () => void = () => {};

  constructor(sources: Source<T>[], picker: Picker) {
    this.#sources = sources;
    this.#picker = picker;
    this.#heads = sources.map(() => undefined);
    this.#reading = sources.map(() => false);
    this.#ended = sources.map(() => false);
    this.#ready = sources.map(() => false);
  }

  async pull(controller: ReadableStreamDefaultController<Merged<T>>): Promise<void> {
    for (;;) {
      if (this.#closed) return;
      if (this.#failure !== undefined) {
        this.#finish(this.#failure.error);
        controller.error(this.#failure.error);
        return;
      }
      for (let i = 0; i < this.#sources.length; i++) {
        if (!this.#ended[i] && !this.#reading[i] && this.#heads[i] === undefined) this.#read(i);
      }
      if (this.#ready.some(Boolean)) {
        const i = this.#picker(this.#ready);
        const { value } = this.#heads[i]!;
        this.#heads[i] = undefined;
        this.#ready[i] = false;
        // Read its next item now, so that it can be ready when the consumer asks again: a
        // source read only on demand would always lose the choice to one already waiting.
        this.#read(i);
        controller.enqueue({ source: i, value });
        return;
      }
      if (this.#ended.every(Boolean)) {
        this.#finish(undefined);
        controller.close();
        return;
      }
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
  }

  #read(i: number): void {
    this.#reading[i] = true;
    this.#sources[i].next().then(
      (step) => {
        this.#reading[i] = false;
        if (step.done) this.#ended[i] = true;
        else {
          this.#heads[i] = { value: step.value };
          this.#ready[i] = true;
        }
        this.#signal();
      },
      (error) => {
        this.#reading[i] = false;
        this.#ended[i] = true;
        this.#failure ??= { error };
        this.#signal();
      },
    );
  }

  #signal(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  abort(controller: ReadableStreamDefaultController<Merged<T>>, reason: unknown): void {
    if (this.#closed) return;
    this.close(reason);
    controller.error(reason);
  }

  /** Closes every source still open; items they offered are dropped with them. */
  close(reason: unknown): void {
    this.#finish(reason);
    this.#signal();
  }

  #finish(reason: unknown): void {
    if (this.#closed) return;
    this.#closed = true;
    this.dispose();
    for (let i = 0; i < this.#sources.length; i++) {
      if (!this.#ended[i]) this.#sources[i].close(reason);
      this.#ended[i] = true;
    }
    this.#heads.fill(undefined);
    this.#ready.fill(false);
  }
}
