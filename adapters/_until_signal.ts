/**
 * Keeps Deno servers up until SIGINT or SIGTERM, then drains them: in-flight requests finish,
 * new connections are refused, and the returned promise resolves once every server has closed.
 *
 * @example
 * ```ts
 * import { serveUntilSignal } from "./_until_signal.ts";
 * const server = Deno.serve({ hostname: "127.0.0.1", port: 0 }, () => new Response("hi"));
 * await serveUntilSignal([server]);
 * ```
 *
 * @module
 */

/** The part of a server {@linkcode serveUntilSignal} needs (`Deno.HttpServer` has it). */
export interface DrainableServer {
  readonly finished: Promise<void>;
  shutdown(): Promise<void>;
}

/** Resolves when every server has finished, after a SIGINT or SIGTERM asked them to drain. */
export async function serveUntilSignal(servers: readonly DrainableServer[]): Promise<void> {
  const shutdown = () => {
    Deno.removeSignalListener("SIGINT", shutdown);
    Deno.removeSignalListener("SIGTERM", shutdown);
    for (const server of servers) server.shutdown();
  };
  Deno.addSignalListener("SIGINT", shutdown);
  Deno.addSignalListener("SIGTERM", shutdown);
  await Promise.all(servers.map((server) => server.finished));
}
