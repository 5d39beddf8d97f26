/**
 * fanfare's Durable Objects for Cloudflare Workers: `PermitObject`, the global concurrency
 * ceiling that `BlockLeasingLimiter`s lease permits from. Export it from your Worker's entry
 * and bind it in `wrangler.toml`.
 *
 * @example
 * ```ts ignore
 * // src/index.ts of your Worker
 * export { PermitObject } from "@fanfare/fanfare/workers";
 * ```
 *
 * @module
 */

export {
  LIMITER_PATH,
  PermitObject,
  type PermitObjectEnv,
  type PermitObjectStats,
} from "./permit_object.ts";
