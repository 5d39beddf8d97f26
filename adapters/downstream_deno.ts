/**
 * Serves the simulated downstream with `Deno.serve` on 127.0.0.1.
 *
 * The port comes from `--port <n>` (or `--port=<n>`), else `PORT`, else 8788. SIGINT or SIGTERM
 * drains in-flight requests and exits.
 *
 * Deno 2.9 still aborts `request.signal` after a *successful* response too, and warns about it
 * once; `--unstable-no-legacy-abort` makes the signal mean "client went away" only. The downstream
 * removes its abort listener before answering, so its counters are right either way.
 *
 * @example
 * ```sh
 * deno run --unstable-no-legacy-abort --allow-net --allow-env=PORT \
 *   adapters/downstream_deno.ts --port 8788
 * ```
 *
 * @module
 */
import { createDownstream } from "../sim/downstream.ts";
import { serveUntilSignal } from "./_until_signal.ts";

const portFlag = Deno.args.findIndex((arg) => arg === "--port" || arg.startsWith("--port="));
const portText = portFlag === -1
  ? Deno.env.get("PORT") ?? "8788"
  : Deno.args[portFlag].split("=")[1] ?? Deno.args[portFlag + 1];
const port = Number(portText);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  throw new RangeError(
    `Cannot serve the downstream as the port must be an integer in [0, 65535]: current value is ${portText}`,
  );
}

const app = createDownstream();
const server = Deno.serve({
  hostname: "127.0.0.1",
  port,
  onListen: ({ hostname, port }) =>
    console.log(`downstream listening on http://${hostname}:${port}/`),
}, app.fetch);

await serveUntilSignal([server]);
