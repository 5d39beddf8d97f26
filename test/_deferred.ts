/**
 * Controlled promises for tests: time moves only when a test resolves one by hand.
 *
 * @module
 */

/** A promise with its settle functions exposed. */
export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
}

/** A fresh pending {@linkcode Deferred}. */
export function deferred<T = void>(): Deferred<T> {
  const { promise, resolve, reject } = Promise.withResolvers<T>();
  return { promise, resolve, reject };
}

/** Lets every already-queued microtask (and those they queue, `ticks` deep) run. */
export async function flush(ticks = 20): Promise<void> {
  for (let i = 0; i < ticks; i++) await Promise.resolve();
}

/** Counts branches in flight and remembers the most seen at once (p-limit style). */
export class InFlight {
  now = 0;
  max = 0;
  started = 0;

  enter(): void {
    this.now++;
    this.started++;
    if (this.now > this.max) this.max = this.now;
  }

  leave(): void {
    this.now--;
  }
}

/** Resolves with what `promise` rejected with; rejects if it fulfilled instead. */
export function rejectionOf(promise: PromiseLike<unknown>): Promise<unknown> {
  return Promise.resolve(promise).then(
    (value) => {
      throw new Error(`expected a rejection, got a fulfilment with ${Deno.inspect(value)}`);
    },
    (reason) => reason,
  );
}
