/**
 * Task sources of both executors: an iterable, async iterable or `ReadableStream`, opened as one
 * reader. A plain iterable also hands out its iterator, for `fanOut`'s synchronous fast path.
 *
 * @example
 * ```ts
 * import { openSource } from "./_source.ts";
 * const reader = openSource([1, 2], "Cannot fan out as 'tasks'");
 * reader.next(); // { value: 1, done: false }
 * reader.close(undefined);
 * ```
 *
 * @module
 */

import { ignore } from "./_abort.ts";

/**
 * Where the executors read tasks from: read one task at a time, never ahead of demand.
 *
 * @example
 * ```ts
 * import type { TaskSource } from "./_source.ts";
 * const source: TaskSource<number> = [1, 2, 3];
 * ```
 */
export type TaskSource<T> = Iterable<T> | AsyncIterable<T> | ReadableStream<T>;

/** One task read at a time; `close` releases the source (`return()` or `cancel()`). */
export interface Reader<T> {
  next(): IteratorResult<T> | PromiseLike<IteratorResult<T>>;
  close(reason: unknown): void;
  /** The iterator of a plain (synchronous) iterable, whose `next()` never returns a promise. */
  readonly sync?: Iterator<T>;
}

/**
 * Opens `source`, preferring a `ReadableStream`'s reader, then an async iterator, then a sync
 * one; anything else throws a `TypeError` that starts with `what` (e.g. "Cannot fan out as
 * 'tasks'").
 */
export function openSource<T>(source: TaskSource<T>, what: string): Reader<T> {
  const candidate = source as Partial<ReadableStream<T> & AsyncIterable<T> & Iterable<T>> | null;
  if (typeof candidate?.getReader === "function") {
    const reader = candidate.getReader();
    return {
      next: () => reader.read() as Promise<IteratorResult<T>>,
      close: (reason) => void reader.cancel(reason).catch(ignore),
    };
  }
  const openAsync = candidate?.[Symbol.asyncIterator];
  const open = (openAsync ?? candidate?.[Symbol.iterator]) as
    | ((this: unknown) => Iterator<T> | AsyncIterator<T>)
    | undefined;
  if (typeof open !== "function") {
    throw new TypeError(
      `${what} must be an iterable, async iterable or ReadableStream: current type is ${
        source === null ? "null" : typeof source
      }`,
    );
  }
  const iterator = open.call(source);
  return {
    next: () => iterator.next(),
    close() {
      // The source is being abandoned: an error while closing it changes no outcome.
      try {
        const closing = iterator.return?.();
        if (isThenable(closing)) closing.then(undefined, ignore);
      } catch {
        // See above.
      }
    },
    sync: openAsync === undefined ? iterator as Iterator<T> : undefined,
  };
}

/** Whether `value` has a `then` method. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === "function";
}
