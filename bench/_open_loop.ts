/**
 * An open-model load generator: request `i` is due at `start + i / rate` whether or not earlier
 * ones have answered, and its latency counts from that intended time, so a stalled generator or
 * event loop shows up in the figures instead of silently lowering the load (no coordinated
 * omission).
 *
 * @module
 */

/** Longest the loop sends requests that are due without yielding to the event loop, in ms. */
const MAX_BURST_MS = 2;

/** What one request answered: its status and its parsed JSON body (undefined when not JSON). */
export interface Reply {
  status: number;
  body: unknown;
}

/** One request as measured. */
export interface Sample {
  /** Intended send time → body fully read, in ms. */
  latencyMs: number;
  /** How late the generator actually sent it, in ms. */
  sendLagMs: number;
  /** HTTP status, or 0 when `send` threw. */
  status: number;
  body: unknown;
  /** Why `send` threw, if it did. */
  error?: string;
}

/** Options of {@linkcode openLoop}. */
export interface OpenLoopOptions {
  /** Requests to send. */
  count: number;
  /** Arrival rate in requests per second. */
  ratePerSecond: number;
  /** Sends request `index`; `signal` aborts after {@linkcode OpenLoopOptions.guardMs}. */
  send(index: number, signal: AbortSignal): Promise<Reply>;
  /** Any request still open this long after it was sent is aborted, so a run always ends. */
  guardMs?: number;
  /** Called after each quarter of the requests has been sent. */
  onProgress?: (sent: number) => void;
}

/**
 * Sends `count` requests at a fixed rate and resolves with every sample, in send order, once
 * all have answered or been aborted by the guard.
 *
 * @example
 * ```ts
 * import { openLoop } from "./_open_loop.ts";
 * const samples = await openLoop({
 *   count: 10,
 *   ratePerSecond: 100,
 *   send: async () => ({ status: 200, body: undefined }),
 * });
 * ```
 */
export async function openLoop(
  { count, ratePerSecond, send, guardMs = 15_000, onProgress }: OpenLoopOptions,
): Promise<Sample[]> {
  if (!Number.isSafeInteger(count) || count < 1) {
    throw new RangeError(
      `Cannot run an open loop as 'count' must be a positive integer: current value is ${count}`,
    );
  }
  if (!(ratePerSecond > 0) || !Number.isFinite(ratePerSecond)) {
    throw new RangeError(
      `Cannot run an open loop as 'ratePerSecond' must be a positive finite number: current value is ${ratePerSecond}`,
    );
  }
  const intervalMs = 1000 / ratePerSecond;
  const quarter = Math.max(1, Math.floor(count / 4));
  const samples = new Array<Sample>(count);
  const pending: Promise<void>[] = [];
  const start = performance.now() + intervalMs;
  let yieldedAt = performance.now();
  for (let index = 0; index < count; index++) {
    const intended = start + index * intervalMs;
    const now = performance.now();
    const waitMs = intended - now;
    // Behind schedule, the loop would otherwise send everything due without ever letting an
    // answer through; yielding now and then keeps it sending at the fixed rate, not in one burst.
    if (waitMs > 0 || now - yieldedAt > MAX_BURST_MS) {
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, waitMs)));
      yieldedAt = performance.now();
    }
    pending.push(
      measure(index, intended, send, guardMs).then((sample) => {
        samples[index] = sample;
      }),
    );
    if ((index + 1) % quarter === 0 || index + 1 === count) onProgress?.(index + 1);
  }
  await Promise.all(pending);
  return samples;
}

async function measure(
  index: number,
  intended: number,
  send: OpenLoopOptions["send"],
  guardMs: number,
): Promise<Sample> {
  const sendLagMs = performance.now() - intended;
  const guard = new AbortController();
  const timer = setTimeout(() => guard.abort(new Error(`no answer within ${guardMs} ms`)), guardMs);
  try {
    const { status, body } = await send(index, guard.signal);
    return { latencyMs: performance.now() - intended, sendLagMs, status, body };
  } catch (error) {
    return {
      latencyMs: performance.now() - intended,
      sendLagMs,
      status: 0,
      body: undefined,
      error: error instanceof Error ? error.message : String(error),
    };
  } finally {
    clearTimeout(timer);
  }
}
