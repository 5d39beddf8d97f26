/**
 * The fetchers of a config's downstreams: what the runtime provides by name (a service binding,
 * an in-process app), else an HTTP fetcher for the downstream's `url`.
 *
 * @module
 */
import { type Fetcher, urlFetcher } from "../gateway/mod.ts";
import { type AggregateConfig, DEFAULT_DOWNSTREAM } from "./config.ts";
import { compileEndpoint, type Endpoint } from "./endpoint.ts";

/**
 * Fetchers for every downstream `config` declares (and `default`): `provided[name]` when given,
 * else `urlFetcher(url)`. Throws a `RangeError` naming a downstream that has neither.
 *
 * @example
 * ```ts
 * import { configFetchers } from "./downstreams.ts";
 * const fetchers = configFetchers({
 *   downstreams: { users: { url: "https://users.example/" } },
 *   endpoints: [],
 * }, { default: { fetch: () => new Response("{}") } });
 * ```
 */
export function configFetchers(
  config: AggregateConfig,
  provided: Readonly<Record<string, Fetcher>> = {},
): Record<string, Fetcher> {
  const fetchers: Record<string, Fetcher> = { ...provided };
  const declared = { [DEFAULT_DOWNSTREAM]: {}, ...config.downstreams } as Record<
    string,
    { url?: string }
  >;
  for (const [name, { url }] of Object.entries(declared)) {
    if (fetchers[name] !== undefined) continue;
    if (url !== undefined) fetchers[name] = urlFetcher(url);
  }
  return fetchers;
}

/**
 * Every endpoint of `config` compiled, its downstreams' fetchers from {@linkcode configFetchers}.
 *
 * @example
 * ```ts
 * import { compileConfig } from "./downstreams.ts";
 * const endpoints = compileConfig({
 *   endpoints: [{ name: "o", route: "/o/:id", branches: {
 *     order: { path: "/orders/{params.id}", timeoutMs: 200 },
 *   } }],
 * }, { default: { fetch: () => Response.json({}) } });
 * ```
 */
export function compileConfig(
  config: AggregateConfig,
  provided: Readonly<Record<string, Fetcher>> = {},
): Endpoint[] {
  const downstreams = configFetchers(config, provided);
  return config.endpoints.map((endpoint) => compileEndpoint(endpoint, { downstreams }));
}
