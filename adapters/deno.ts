/**
 * Serves the gateway with `Deno.serve` on 127.0.0.1.
 *
 * `PORT` (default 8787) is the gateway's port. With `DOWNSTREAM_URL` set, branches go there over
 * HTTP; without it, this process also serves the simulated downstream on `DOWNSTREAM_PORT`
 * (default 8788) and the gateway calls it over HTTP. SIGINT or SIGTERM drains and exits. When
 * the process runs out of file descriptors the gateway logs it and serves again
 * (`_resilient_serve.ts`); Deno.serve itself offers no idle timeout or connection cap. With
 * `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans go to that collector (see `_tracing_from_env.ts`) and
 * are flushed before the process exits.
 *
 * @example
 * ```sh
 * deno run --allow-net --allow-env adapters/deno.ts
 * curl 'http://127.0.0.1:8787/product/sku-42?policy=bestEffort&budget=500'
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
import { compileConfig, compileProduct, parseConfig } from "../src/aggregate/mod.ts";
import config from "../fanfare.config.json" with { type: "json" };
import { serveResilient } from "./_resilient_serve.ts";
import { trace } from "@opentelemetry/api";
import { tracingFromEnv } from "./_tracing_from_env.ts";
import { type DrainableServer, serveUntilSignal } from "./_until_signal.ts";

const port = Number(Deno.env.get("PORT") ?? 8787);
// ADMISSION* and BULKHEAD* (see overloadFromEnv): read first, so a bad value stops the start.
const overload = overloadFromEnv(Deno.env.toObject());
// OTEL_EXPORTER_OTLP_ENDPOINT: spans to an OTLP/HTTP collector; the SDK is loaded only then.
const tracing = await tracingFromEnv(Deno.env.toObject());
if (tracing !== undefined) trace.setGlobalTracerProvider(tracing.provider);
const downstreamUrl = Deno.env.get("DOWNSTREAM_URL");
const servers: DrainableServer[] = [];

let baseUrl = downstreamUrl;
if (baseUrl === undefined) {
  const downstream = Deno.serve({
    hostname: "127.0.0.1",
    port: Number(Deno.env.get("DOWNSTREAM_PORT") ?? 8788),
    onListen: ({ hostname, port }) =>
      console.log(`downstream listening on http://${hostname}:${port}/`),
  }, createDownstream().fetch);
  servers.push(downstream);
  baseUrl = `http://127.0.0.1:${downstream.addr.port}/`;
}

// LIMITER_CAPACITY (one process) or LIMITER_URL + LIMITER_SECRET (a fleet): a global ceiling.
// HEDGE=optional-reads hedges reviews, recommendations and shipping on the ceiling's spare permits.
const hedge = Deno.env.get("HEDGE") === "optional-reads" ? hedgeOptionalReads() : {};
const downstream = urlFetcher(baseUrl);
// The aggregation endpoints of fanfare.config.json, on the same downstream; a bad config stops
// the start with every problem named.
const parsed = parseConfig(config, "fanfare.config.json");
const endpoints = compileConfig(parsed, { default: downstream });
const app = createApp({
  // The product page as the config declares it; the built-in five when it declares none.
  registry: compileProduct(parsed, { default: downstream }, { hedge }) ??
    defaultRegistry(downstream, { hedge }),
  endpoints,
  limiter: limiterFromEnv(Deno.env.toObject()),
  ...overload,
});
// Out of file descriptors, Deno.serve closes its listener for good: this one serves again.
servers.push(serveResilient({
  hostname: "127.0.0.1",
  port,
  onListen: ({ hostname, port }) =>
    console.log(`gateway listening on http://${hostname}:${port}/ (downstream ${baseUrl})`),
}, app.fetch));

await serveUntilSignal(servers);
await tracing?.shutdown();
