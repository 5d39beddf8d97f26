/**
 * The simulated downstream, served by `Deno.serve`, with each branch's behaviour scripted by the
 * product id so that an HTTP client of the *gateway* can choose it.
 *
 * The conformance suite names each scenario in the id, which the gateway forwards unchanged, and
 * this script turns it into the downstream's own query parameters before the request reaches
 * `createDownstream()`. (The gateway's `fault.<branch>` query reaches it too; its `fail=1`
 * survives, but its `latencyMs` is replaced by the id's script.)
 *
 * | id token          | effect on the branch's call                   |
 * |-------------------|-----------------------------------------------|
 * | `fail_<branch>`   | `fail=1`: the branch answers 500              |
 * | `slow_<branch>`   | `latencyMs=60000`: only a cut can end it      |
 * | `slow_all`        | `latencyMs=60000` on every branch             |
 * | `slow1_<branch>`  | `latencyMs=60000` on its first call only: a   |
 * |                   | hedge or retry (`attempt` ≥ 1) answers at once |
 * | (anything else)   | `latencyMs=0`: no random latency, no tail     |
 *
 * Tokens are separated by `-`, e.g. `case1-fail_reviews`. `GET /stats` and `POST /stats/reset` (and `GET /calls`)
 * are the downstream's own.
 *
 * @example
 * ```sh
 * deno run --unstable-no-legacy-abort --allow-net test/_scripted_downstream.ts --port 18788
 * ```
 *
 * @module
 */
import { createDownstream } from "../sim/downstream.ts";
import { serveUntilSignal } from "../adapters/_until_signal.ts";

/** Long enough that a branch given it can only end by being cut. */
const FOREVER_MS = "60000";

const portFlag = Deno.args.indexOf("--port");
const portText = portFlag === -1 ? "0" : Deno.args[portFlag + 1];
const port = Number(portText);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  throw new RangeError(
    `Cannot serve the scripted downstream as '--port' must be an integer in [0, 65535]: current value is ${portText}`,
  );
}

const app = createDownstream({ tailEvery: 0 });

/** Adds the query parameters the id's tokens ask for to a `/:branch/:id` call. */
function script(request: Request): Request {
  const url = new URL(request.url);
  const [, branch, id] = url.pathname.split("/");
  if (branch === undefined || id === undefined || branch === "stats") return request;
  const tokens = decodeURIComponent(id).split("-");
  const retried = Number(url.searchParams.get("attempt") ?? "0") >= 1;
  const slow = tokens.includes("slow_all") || tokens.includes(`slow_${branch}`) ||
    (tokens.includes(`slow1_${branch}`) && !retried);
  url.searchParams.set("latencyMs", slow ? FOREVER_MS : "0");
  if (tokens.includes(`fail_${branch}`)) url.searchParams.set("fail", "1");
  // Passing the request as init keeps its headers and, above all, its abort signal.
  return new Request(url, request);
}

const server = Deno.serve({
  hostname: "127.0.0.1",
  port,
  onListen: ({ hostname, port }) =>
    console.log(`scripted downstream listening on http://${hostname}:${port}/`),
}, function serveScripted(request) {
  return app.fetch(script(request));
});

await serveUntilSignal([server]);
