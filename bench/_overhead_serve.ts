/**
 * One process of the overhead benchmark's loopback runs, on Deno or Bun: the trivial downstream,
 * one of the gateways calling it over HTTP, or one of the refusers of `bench:refusal`. Listens on a free port of 127.0.0.1 and prints
 * `{"port":N}` as its first line of output; runs until killed.
 *
 * @example
 * ```sh
 * deno run -A --unstable-no-legacy-abort bench/_overhead_serve.ts downstream
 * bun bench/_overhead_serve.ts fanfare-defaults http://127.0.0.1:40123
 * deno run -A --unstable-no-legacy-abort bench/_overhead_serve.ts refuse-fanfare
 * ```
 *
 * @module
 */
import process from "node:process";
import { urlFetcher } from "../src/gateway/mod.ts";
import {
  gatewayById,
  type GatewayId,
  GATEWAYS,
  refuserById,
  type RefuserId,
  REFUSERS,
  trivialDownstream,
} from "./_overhead_apps.ts";

type Handler = (request: Request) => Response | Promise<Response>;

/** The part of Bun's global used here (Bun's types are not installed). */
interface BunGlobal {
  serve(options: { hostname: string; port: number; fetch: Handler }): { port: number };
}

const [role, downstreamUrl] = process.argv.slice(2);

function handlerFor(role: string | undefined): Handler {
  if (role === "downstream") return trivialDownstream().fetch;
  if (REFUSERS.includes(role as RefuserId)) return refuserById(role as RefuserId).fetch;
  if (GATEWAYS.includes(role as GatewayId) && downstreamUrl !== undefined) {
    const base = downstreamUrl.replace(/\/+$/, "");
    const downstream = role === "naive" || role === "equivalent"
      ? { fetch: (request: Request) => fetch(request) }
      : urlFetcher(downstreamUrl);
    return gatewayById(role as GatewayId, downstream, base).fetch;
  }
  throw new TypeError(
    `Cannot serve as the arguments must be 'downstream', '<${REFUSERS.join("|")}>' or '<${
      GATEWAYS.join("|")
    }> <downstream url>': current value is ${JSON.stringify(process.argv.slice(2))}`,
  );
}

const handler = handlerFor(role);
const bun = (globalThis as { Bun?: BunGlobal }).Bun;
let port: number;
if (bun !== undefined) {
  port = bun.serve({ hostname: "127.0.0.1", port: 0, fetch: handler }).port;
} else {
  port = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler).addr.port;
}
console.log(JSON.stringify({ port }));
