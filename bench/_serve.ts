/**
 * One process of the gateway benchmark's loopback runs, served by `Deno.serve` on 127.0.0.1:
 * either the simulated downstream with the benchmark's seed, or the gateway app of one scenario
 * calling that downstream over HTTP. SIGINT or SIGTERM drains and exits.
 *
 * @example
 * ```sh
 * deno run --unstable-no-legacy-abort --allow-net=127.0.0.1 bench/_serve.ts downstream 18788
 * deno run --unstable-no-legacy-abort --allow-net=127.0.0.1 bench/_serve.ts \
 *   gateway 18787 straggler http://127.0.0.1:18788/
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
import { LocalLimiter } from "../src/limits/mod.ts";
import { DOWNSTREAM_OPTIONS, scenarioById } from "./_gateway_scenarios.ts";
import { serveUntilSignal } from "../adapters/_until_signal.ts";
import { LISTEN_BACKLOG } from "../adapters/_resilient_serve.ts";
import { OVERLOAD_VARIABLES } from "./_processes.ts";
import { HAND_WRITTEN_LIMIT, limitedNaiveGateway } from "./_overhead_apps.ts";

const [role, portText, scenarioId, downstreamUrl, protection = "none"] = Deno.args;
const port = Number(portText);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  throw new RangeError(
    `Cannot serve as the port must be an integer in [1, 65535]: current value is ${portText}`,
  );
}

let handler: (request: Request) => Response | Promise<Response>;
if (role === "downstream") {
  handler = createDownstream(DOWNSTREAM_OPTIONS).fetch;
} else if (role === "gateway" && downstreamUrl !== undefined && protection === "hand-written") {
  handler = limitedNaiveGateway(
    { fetch: (request) => fetch(request) },
    downstreamUrl.replace(/\/$/, ""),
    HAND_WRITTEN_LIMIT,
  ).fetch;
} else if (role === "gateway" && downstreamUrl !== undefined) {
  handler = createApp(gatewayOptions(scenarioId, downstreamUrl, protection)).fetch;
} else {
  throw new TypeError(
    `Cannot serve as the arguments must be 'downstream <port>' or 'gateway <port> <scenario> <downstream url> [none|static|adaptive|hand-written]': current value is ${
      JSON.stringify(Deno.args)
    }`,
  );
}

// The gateway's backlog as the Deno adapter sets it (the downstream's too: it is harmless there).
const server = Deno.serve(
  { hostname: "127.0.0.1", port, onListen: () => {}, tcpBacklog: LISTEN_BACKLOG },
  handler,
);
await serveUntilSignal([server]);

/**
 * The gateway's options for one protection of the fanfare app (the fourth, `hand-written`, is not
 * fanfare: `limitedNaiveGateway` of `bench/_overhead_apps.ts`, which ignores the scenario): `none` (no limiter at all), `static` (what
 * `npm start` ran before overload protection: a 64-permit global ceiling and hedged optional
 * reads) or `adaptive` (the same plus the inbound adaptive limit and the bulkheads, as
 * `npm start` runs now).
 */
function gatewayOptions(scenarioId: string, url: string, protection: string) {
  const scenario = scenarioById(scenarioId);
  if (protection === "none") return { registry: scenario.registry(urlFetcher(url)) };
  if (protection !== "static" && protection !== "adaptive") {
    throw new RangeError(
      `Cannot serve as the protection must be 'none', 'static' or 'adaptive': current value is ${protection}`,
    );
  }
  const registry = defaultRegistry(urlFetcher(url), {
    timeoutMs: scenario.timeoutsMs,
    hedge: hedgeOptionalReads(),
  });
  const limiter = new LocalLimiter({ capacity: 64 });
  return protection === "static"
    ? { registry, limiter }
    // As `npm start` reads its environment, so that an experiment can try other settings.
    : {
      registry,
      limiter,
      ...overloadFromEnv(
        Object.fromEntries(OVERLOAD_VARIABLES.map((name) => [name, Deno.env.get(name)])),
      ),
    };
}
