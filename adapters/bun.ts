/**
 * Serves the gateway with `Bun.serve` on 127.0.0.1: the same behaviour as `adapters/deno.ts`
 * (`PORT`, `DOWNSTREAM_URL`, `DOWNSTREAM_PORT`, `OTEL_EXPORTER_OTLP_ENDPOINT`, clean stop on
 * SIGINT/SIGTERM).
 *
 * Bun's types are not installed: the little of `Bun` and `process` used here is declared locally,
 * so `deno check` type-checks this file too.
 *
 * @example
 * ```sh
 * bun run adapters/bun.ts
 * ```
 *
 * @module
 */
import { createApp } from "../routes/app.ts";
import { createDownstream } from "../sim/downstream.ts";
import {
  defaultRegistry,
  hedgeOptionalReads,
  overloadFromEnv,
  urlFetcher,
} from "../src/gateway/mod.ts";
import { limiterFromEnv } from "../src/limits/mod.ts";
import { trace } from "@opentelemetry/api";
import { tracingFromEnv } from "./_tracing_from_env.ts";
import { compileConfig, compileProduct, parseConfig } from "../src/aggregate/mod.ts";
import config from "../fanfare.config.json" with { type: "json" };

/** The part of Bun's server used here. */
interface BunServer {
  readonly url: URL;
  readonly port: number;
  stop(closeActiveConnections?: boolean): Promise<void>;
}

/** The part of Bun's global used here. */
declare const Bun: {
  serve(options: {
    hostname: string;
    port: number;
    fetch(request: Request): Response | Promise<Response>;
  }): BunServer;
};

/** The part of Node's `process` (which Bun provides) used here. */
const { process } = globalThis as unknown as {
  process: {
    env: Record<string, string | undefined>;
    once(signal: "SIGINT" | "SIGTERM", listener: () => void): void;
    off(signal: "SIGINT" | "SIGTERM", listener: () => void): void;
  };
};

// ADMISSION* and BULKHEAD* (see overloadFromEnv): read first, so a bad value stops the start.
const overload = overloadFromEnv(process.env);
// OTEL_EXPORTER_OTLP_ENDPOINT: spans to an OTLP/HTTP collector; the SDK is loaded only then.
const tracing = await tracingFromEnv(process.env);
if (tracing !== undefined) trace.setGlobalTracerProvider(tracing.provider);
const servers: BunServer[] = [];
let baseUrl = process.env.DOWNSTREAM_URL;
if (baseUrl === undefined) {
  const downstream = Bun.serve({
    hostname: "127.0.0.1",
    port: Number(process.env.DOWNSTREAM_PORT ?? 8788),
    fetch: createDownstream().fetch,
  });
  servers.push(downstream);
  baseUrl = `http://127.0.0.1:${downstream.port}/`;
  console.log(`downstream listening on ${downstream.url}`);
}

// LIMITER_CAPACITY (one process) or LIMITER_URL + LIMITER_SECRET (a fleet): a global ceiling.
// HEDGE=optional-reads hedges reviews, recommendations and shipping on the ceiling's spare permits.
const hedge = process.env.HEDGE === "optional-reads" ? hedgeOptionalReads() : {};
// Bun's fetch inflates a compressed body on its one HTTP thread, stalling every other branch's
// call while a gzip bomb inflates; the gateway asks for identity and takes what comes as sent.
const downstream = urlFetcher(baseUrl, {
  fetch: (url, init) => fetch(url, { ...init, decompress: false } as RequestInit),
});
// The aggregation endpoints of fanfare.config.json, on the same downstream; a bad config stops
// the start with every problem named.
const parsed = parseConfig(config, "fanfare.config.json");
const endpoints = compileConfig(parsed, { default: downstream });
const app = createApp({
  // The product page as the config declares it; the built-in five when it declares none.
  registry: compileProduct(parsed, { default: downstream }, { hedge }) ??
    defaultRegistry(downstream, { hedge }),
  endpoints,
  limiter: limiterFromEnv(process.env),
  ...overload,
});
const gateway = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 8787),
  fetch: app.fetch,
});
servers.push(gateway);
console.log(`gateway listening on ${gateway.url} (downstream ${baseUrl})`);

const shutdown = () => {
  process.off("SIGINT", shutdown);
  process.off("SIGTERM", shutdown);
  // Let in-flight requests finish, as Deno's shutdown() does.
  const stopped = servers.map((server) => server.stop(false));
  // Spans of the last requests go out once they have been answered.
  Promise.all(stopped).then(() => tracing?.shutdown()).catch((error) => console.error(error));
};
process.once("SIGINT", shutdown);
process.once("SIGTERM", shutdown);
