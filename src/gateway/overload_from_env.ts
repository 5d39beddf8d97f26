/**
 * `overloadFromEnv`: the overload protection a gateway runs with — the inbound adaptive limit
 * and the per-downstream bulkheads — read from its environment the same way by every adapter.
 *
 * @module
 */
import { AdaptiveLimiter, type AdaptiveLimiterOptions } from "../limits/mod.ts";
import { Bulkheads } from "./bulkheads.ts";

/**
 * The inbound limiter and the bulkheads, each absent when switched off, and how long an optional
 * branch waits for a ceiling permit when `OPTIONAL_WAIT_MS` says (else the gateway's default).
 *
 * @example
 * ```ts
 * import type { OverloadProtection } from "./overload_from_env.ts";
 * const none: OverloadProtection = {};
 * ```
 */
export interface OverloadProtection {
  admission?: AdaptiveLimiter;
  bulkheads?: Bulkheads;
  /** For `createApp`'s `optionalWaitMs` (see `GatherOptions.optionalWaitMs`). */
  optionalWaitMs?: number;
}

/**
 * Reads, from `env` (every variable optional; both protections are on by default):
 *
 * | variable                  | meaning                                               | default    |
 * | ------------------------- | ----------------------------------------------------- | ---------- |
 * | `ADMISSION`               | `adaptive` or `off`: the inbound limit                | `adaptive` |
 * | `ADMISSION_INITIAL_LIMIT` | requests in flight before anything is learned         | 64         |
 * | `ADMISSION_MAX_LIMIT`     | the ceiling of the learned limit (see below)          | 128        |
 * | `ADMISSION_MAX_QUEUE`     | requests that may wait (0: none)                      | 64         |
 * | `ADMISSION_MAX_LAG_MS`    | event-loop lag that backs the limit off (0: not read) | 25         |
 * | `BULKHEADS`               | `adaptive` or `off`: one limit per downstream         | `adaptive` |
 * | `BULKHEAD_MAX_LIMIT`      | ceiling of each downstream's limit (its start, too)   | 64         |
 * | `BULKHEAD_MAX_QUEUE`      | calls that may wait per downstream (0: none)          | 8          |
 * | `OPTIONAL_WAIT_MS`        | ms an optional branch waits for a ceiling permit      | 10         |
 *
 * The limit's ceiling is twice the 64-permit global ceiling `npm start` runs with: beyond about
 * that many requests in flight, the ones admitted wait for a permit instead of running, so a
 * higher ceiling only moves the queue from the 503s into admitted requests' latency. In
 * `exp:overload-steps` at 4× capacity, 128 read 80, 90 and 84 % of capacity and an admitted p99
 * of 315–346 ms where 200 read 83, 72 and 76 % and 396–406 ms (see the README's overload
 * account). A gateway with a larger ceiling, or slower downstreams, should raise it.
 *
 * The limit starts at 64 (the ceiling's size, half the limit's own ceiling), not at Netflix's 20:
 * a gateway that starts under its usual load should not turn requests away while it learns. At
 * 20 (`ADMISSION_INITIAL_LIMIT = "20"` in `wrangler.toml`, then `deno task bench:workers
 * --workerd`), the Worker at 32 keep-alive connections turned 7 % of its first 8 s away, and none
 * after.
 *
 * `handOffMs`, when given, goes to every limiter (see `AdaptiveLimiterOptions`): their waiters
 * are then settled only from their own callers' turns, as Workers need. `watchLag: false`
 * leaves the event loop unwatched whatever `ADMISSION_MAX_LAG_MS` says (Workers again: their
 * timers do not run between a request's events).
 *
 * A bad value — not a whole number, negative, a zero limit, an unknown mode — throws a
 * `RangeError` naming the variable, so a gateway fails at startup instead of running with a
 * silent default.
 *
 * @example
 * ```ts
 * import { overloadFromEnv } from "./overload_from_env.ts";
 * const { admission, bulkheads } = overloadFromEnv({ ADMISSION_MAX_LIMIT: "100" });
 * overloadFromEnv({ ADMISSION: "off", BULKHEADS: "off" }); // {}
 * overloadFromEnv({ ADMISSION: "off", BULKHEADS: "off", OPTIONAL_WAIT_MS: "50" }); // { optionalWaitMs: 50 }
 * ```
 */
export function overloadFromEnv(
  env: Record<string, string | undefined>,
  { handOffMs, watchLag = true }: Pick<AdaptiveLimiterOptions, "handOffMs"> & {
    watchLag?: boolean;
  } = {},
): OverloadProtection {
  const mode = (name: string): boolean => {
    const value = env[name];
    if (value === undefined || value === "" || value === "adaptive") return true;
    if (value === "off") return false;
    throw new RangeError(
      `Cannot configure overload protection as '${name}' must be 'adaptive' or 'off': current value is ${
        JSON.stringify(value)
      }`,
    );
  };
  const count = (name: string, fallback: number, min: 0 | 1): number => {
    const value = env[name];
    if (value === undefined || value === "") return fallback;
    const parsed = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(parsed) || parsed < min) {
      throw new RangeError(
        `Cannot configure overload protection as '${name}' must be a whole number${
          min === 1 ? " of at least 1" : ""
        }: current value is ${JSON.stringify(value)}`,
      );
    }
    return parsed;
  };
  const protection: OverloadProtection = {};
  if (mode("ADMISSION")) {
    const maxLimit = count("ADMISSION_MAX_LIMIT", 128, 1);
    const initialLimit = count("ADMISSION_INITIAL_LIMIT", Math.min(64, maxLimit), 1);
    if (initialLimit > maxLimit) {
      throw new RangeError(
        `Cannot configure overload protection as 'ADMISSION_INITIAL_LIMIT' must not exceed 'ADMISSION_MAX_LIMIT' (${maxLimit}): current value is ${initialLimit}`,
      );
    }
    const maxLagMs = count("ADMISSION_MAX_LAG_MS", 25, 0);
    protection.admission = new AdaptiveLimiter({
      initialLimit,
      maxLimit,
      maxQueue: count("ADMISSION_MAX_QUEUE", 64, 0),
      handOffMs,
      maxLagMs: watchLag && maxLagMs > 0 ? maxLagMs : undefined,
    });
  }
  if (mode("BULKHEADS")) {
    protection.bulkheads = new Bulkheads({
      maxLimit: count("BULKHEAD_MAX_LIMIT", 64, 1),
      maxQueue: count("BULKHEAD_MAX_QUEUE", 8, 0),
      handOffMs,
    });
  }
  // Only when set: the library's default (`OPTIONAL_WAIT_MS`) stays the one default.
  if (env.OPTIONAL_WAIT_MS) protection.optionalWaitMs = count("OPTIONAL_WAIT_MS", 0, 0);
  return protection;
}
