/**
 * The one shape every downstream takes: a Workers `Fetcher`.
 *
 * A Workers service binding, an in-process Hono app (it has `.fetch`) and
 * {@linkcode urlFetcher} (real HTTP through the global `fetch`) all satisfy it, so the gateway
 * never knows which it talks to.
 *
 * @module
 */

/**
 * Something that answers a `Request` with a `Response`: the Workers `Fetcher` shape, declared
 * locally so that `src/` needs no Workers types (and widened to accept a synchronous answer).
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import type { Fetcher } from "./fetcher.ts";
 *
 * const inProcess: Fetcher = new Hono().get("/ping", (c) => c.text("pong"));
 * const response = await inProcess.fetch(new Request("http://downstream.internal/ping"));
 * ```
 */
export interface Fetcher {
  /**
   * Answers `request`; aborting `request.signal` should abort the work behind it. A plain
   * `Response` is allowed because Hono's `app.fetch` may return one synchronously.
   */
  fetch(request: Request): Response | Promise<Response>;
  /**
   * `true` when every answer's body is already in this process's memory, as an app in the same
   * process answers (see {@linkcode inProcessFetcher}): the gateway then reads a body whole and
   * holds it to its size cap afterwards, instead of reading it as a stream chunk by chunk. Absent
   * (the default) for anything that may stream, a service binding or HTTP included.
   */
  readonly inMemory?: boolean;
  /**
   * Where this fetcher sends, as `scheme://host[/prefix]`: the gateway then names it in the URLs
   * of the requests it builds, and the fetcher sends them on as they are. Absent (the default),
   * requests name `http://downstream.internal` and the fetcher resolves them itself, as an
   * in-process app or a service binding does.
   */
  readonly origin?: string;
}

/**
 * A {@linkcode Fetcher} for an app in this process (a Hono app, or anything with its `fetch`):
 * its answers are read whole and then held to the branch's size cap, which on Deno costs a
 * fifth of reading them as streams. Use it only for code whose bodies are built in memory; an
 * app that streams a body from elsewhere (a proxy) must stay a plain `Fetcher`.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { defaultRegistry, inProcessFetcher } from "./mod.ts";
 *
 * const downstream = new Hono().get("/:branch/:id", (c) => c.json({ value: 42 }));
 * const registry = defaultRegistry(inProcessFetcher(downstream));
 * ```
 */
export function inProcessFetcher(app: Fetcher): Fetcher {
  return {
    fetch: function fetchInProcess(request: Request) {
      return app.fetch(request);
    },
    inMemory: true,
  };
}

/** Options of {@linkcode urlFetcher}. */
export interface UrlFetcherOptions {
  /**
   * The `fetch` to send with, called as `fetch(request)` or `fetch(url, init)` as the global one
   * is; the global one by default (tests pass a fake).
   */
  fetch?: (input: string | Request, init?: RequestInit) => Response | Promise<Response>;
}

/**
 * A {@linkcode Fetcher} that sends each request over HTTP to `baseUrl`: the request's path and
 * query are resolved against it (a path prefix in `baseUrl` is kept), while method, headers
 * and signal go along unchanged. Its `origin` is `baseUrl`, so the gateway builds its requests
 * there already, and those go to `fetch` as they are.
 *
 * @example
 * ```ts
 * import { urlFetcher } from "./fetcher.ts";
 *
 * const downstream = urlFetcher("http://127.0.0.1:8788/");
 * // Sent as GET http://127.0.0.1:8788/price/sku-42
 * const response = await downstream.fetch(new Request("http://downstream.internal/price/sku-42"));
 * ```
 */
export function urlFetcher(
  baseUrl: string | URL,
  { fetch: send = (input, init) => fetch(input, init) }: UrlFetcherOptions = {},
): Fetcher {
  const base = new URL(baseUrl);
  if (base.protocol !== "http:" && base.protocol !== "https:") {
    throw new TypeError(
      `Cannot create a URL fetcher as 'baseUrl' must be an http(s) URL: current value is ${base}`,
    );
  }
  // "http://host/api" + "/price/1" must give "http://host/api/price/1", not "http://host/price/1".
  const root = base.origin + base.pathname.replace(/\/+$/, "");
  return {
    origin: root,
    fetch: function fetchOverHttp(request: Request): Response | Promise<Response> {
      const url = request.url;
      // Built under `origin` already: sent as it is. `fetch(request)` copies it cheaply; a
      // `Request` rebuilt from its parts costs Deno twice as much (its headers go through WebIDL).
      if (url.startsWith(root) && url[root.length] === "/") return send(request);
      // The path and query of an absolute URL start at the first "/" after "scheme://host".
      const path = url.indexOf("/", url.indexOf("//") + 2);
      const init: RequestInit = {
        method: request.method,
        headers: request.headers,
        redirect: request.redirect,
        signal: request.signal,
      };
      if (request.body !== null) {
        init.body = request.body;
        (init as { duplex?: string }).duplex = "half";
      }
      return send(root + (path === -1 ? "/" : url.slice(path)), init);
    },
  };
}
