/**
 * The gateway as a Cloudflare Worker.
 *
 * Branches go to the `DOWNSTREAM` service binding when there is one, else to `DOWNSTREAM_URL`
 * over HTTP, else to the simulated downstream inside the Worker (handy under `wrangler dev`).
 * The app is built once per isolate; its metrics are that isolate's alone.
 *
 * Workers' types are not imported: `Env` and `ExportedHandler` are declared locally.
 *
 * @example
 * ```sh
 * wrangler dev   # then: curl 'http://127.0.0.1:8787/product/sku-42'
 * ```
 *
 * @module
 */
import { createApp } from "../routes/app.ts";
import { createDownstream } from "../routes/downstream.ts";
import { defaultRegistry } from "../src/branch_registry.ts";
import { type Fetcher, urlFetcher } from "../src/fetcher.ts";

/** Bindings this Worker reads. */
interface Env {
  /** Service binding to the downstream Worker. */
  DOWNSTREAM?: Fetcher;
  /** Base URL of the downstream, when there is no service binding. */
  DOWNSTREAM_URL?: string;
}

/** The part of Workers' `ExportedHandler` used here. */
interface ExportedHandler<E> {
  fetch(request: Request, env: E, ctx: unknown): Response | Promise<Response>;
}

let app: ReturnType<typeof createApp> | undefined;

function appFor(env: Env): ReturnType<typeof createApp> {
  if (app === undefined) {
    const downstream = env.DOWNSTREAM ??
      (env.DOWNSTREAM_URL ? urlFetcher(env.DOWNSTREAM_URL) : createDownstream());
    app = createApp({ registry: defaultRegistry(downstream) });
  }
  return app;
}

export default {
  fetch(request, env) {
    return appFor(env).fetch(request);
  },
} satisfies ExportedHandler<Env>;
