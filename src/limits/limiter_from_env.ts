/**
 * `limiterFromEnv`: the limiter a Deno or Bun gateway runs with, chosen by its environment, so
 * that both adapters read the same variables the same way.
 *
 * @module
 */
import { BlockLeasingLimiter } from "./block_leasing_limiter.ts";
import type { Limiter } from "./limiter.ts";
import { LocalLimiter } from "./local_limiter.ts";
import { httpPermitService } from "./permit_service.ts";

/**
 * Reads, from `env`:
 *
 * - `LIMITER_URL` and `LIMITER_SECRET`: lease blocks from a deployed permit object's HTTP API
 *   (e.g. `https://gateway.example.com/limiter/`), so a fleet shares one global ceiling;
 *   `LIMITER_BLOCK_SIZE` (default 8) and `LIMITER_SAFE_SHARE` (default 0) tune it.
 * - else `LIMITER_CAPACITY`: a ceiling in this process; `LIMITER_MAX_WAITERS` bounds its queue.
 * - else no limiter (`undefined`): only the per-request limit applies.
 *
 * A value that is not a positive integer throws a `RangeError` naming the variable.
 *
 * @example
 * ```ts
 * import { limiterFromEnv } from "./limiter_from_env.ts";
 * const limiter = limiterFromEnv({ LIMITER_CAPACITY: "64" }); // a LocalLimiter of 64
 * ```
 */
export function limiterFromEnv(env: Record<string, string | undefined>): Limiter | undefined {
  const count = (name: string, fallback?: number): number | undefined => {
    const value = env[name];
    if (value === undefined || value === "") return fallback;
    const parsed = Number(value);
    if (!Number.isSafeInteger(parsed) || parsed < 0) {
      throw new RangeError(
        `Cannot configure the limiter as '${name}' must be a whole number: current value is ${
          JSON.stringify(value)
        }`,
      );
    }
    return parsed;
  };
  if (env.LIMITER_URL) {
    if (!env.LIMITER_SECRET) {
      throw new RangeError(
        "Cannot configure the limiter as 'LIMITER_SECRET' must be set with 'LIMITER_URL': current value is empty",
      );
    }
    const service = httpPermitService(env.LIMITER_URL, { secret: env.LIMITER_SECRET });
    return new BlockLeasingLimiter(service, {
      blockSize: count("LIMITER_BLOCK_SIZE", 8)!,
      safeShare: count("LIMITER_SAFE_SHARE", 0)!,
      ttlMs: 30_000,
      holder: `process-${crypto.randomUUID()}`,
    });
  }
  const capacity = count("LIMITER_CAPACITY");
  if (capacity === undefined) return undefined;
  return new LocalLimiter({ capacity, maxWaiters: count("LIMITER_MAX_WAITERS") });
}
