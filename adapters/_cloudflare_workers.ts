/**
 * The little of the `cloudflare:workers` module that fanfare's Durable Object uses, declared
 * for type checking only: `permit_object.ts` imports `cloudflare:workers` with a `@ts-types`
 * directive pointing here, so Deno and JSR read these types while wrangler and workerd resolve
 * the real module. The specifier is not mapped in deno.json, as an import map entry would be
 * rewritten into the published package and point it at this file, which has no runtime value.
 *
 * @example
 * ```ts ignore
 * import { DurableObject } from "cloudflare:workers";
 * export class Counter extends DurableObject {}
 * ```
 *
 * @module
 */

/** The part of Durable Object storage used here. */
export interface DurableObjectStorage {
  get<T>(key: string): Promise<T | undefined>;
  put<T>(key: string, value: T): Promise<void>;
  getAlarm(): Promise<number | null>;
  setAlarm(scheduledTime: number): Promise<void>;
  deleteAlarm(): Promise<void>;
}

/** The part of a Durable Object's state (`this.ctx`) used here. */
export interface DurableObjectState {
  readonly storage: DurableObjectStorage;
  blockConcurrencyWhile<T>(callback: () => Promise<T>): Promise<T>;
}

/**
 * Extends the current request's lifetime until `promise` settles, from anywhere in its code
 * (the module-level form of `ctx.waitUntil`).
 */
export declare function waitUntil(promise: Promise<unknown>): void;

/** Base class of Durable Objects with RPC methods; `ctx` and `env` as the runtime passes them. */
export declare abstract class DurableObject<Env = unknown> {
  protected ctx: DurableObjectState;
  protected env: Env;
  constructor(ctx: DurableObjectState, env: Env);
  fetch?(request: Request): Response | Promise<Response>;
  alarm?(): void | Promise<void>;
}
