/**
 * `Deno.serve` that outlives its listener. When accepting a connection fails (`EMFILE`: the
 * process is out of file descriptors), Deno 2.9 ends the server: its `finished` rejects and the
 * port is closed. This serves again on the same address after a pause that doubles up to 2 s,
 * logging each failure, until {@linkcode ResilientServer.shutdown} is called.
 *
 * What it cannot do: Deno.serve has no header-read timeout, idle timeout or connection cap, so a
 * slow client holds its descriptor until it leaves (see docs/security.md for what to put in
 * front). While the listener is down (at most 2 s at a time) new connections are refused.
 *
 * @example
 * ```ts
 * import { serveResilient } from "./_resilient_serve.ts";
 * const server = serveResilient({ hostname: "127.0.0.1", port: 0 }, () => new Response("hi"));
 * await server.shutdown();
 * ```
 *
 * @module
 */

/**
 * The listen backlog of the gateway's port: connections the kernel holds until the server accepts
 * them (Linux caps it at `net.core.somaxconn`, 4096 by default since 5.4). Deno's default of 511
 * overflows when an overload opens more connections at once than a busy thread accepts: the
 * kernel drops the surplus connections' SYNs, and each client sends again only after its 1 s
 * retransmission timeout, so a 503 that should take milliseconds takes a second.
 *
 * @example
 * ```ts
 * import { LISTEN_BACKLOG } from "./_resilient_serve.ts";
 * Deno.serve({ port: 0, tcpBacklog: LISTEN_BACKLOG }, () => new Response("hi"));
 * ```
 */
export const LISTEN_BACKLOG = 4096;

/** First pause before serving again, in ms. */
const FIRST_PAUSE_MS = 50;
/** Longest pause before serving again, in ms. */
const MAX_PAUSE_MS = 2000;

/** What {@linkcode serveResilient} returns: the shape of `Deno.HttpServer` this project uses. */
export interface ResilientServer {
  /** The address it listens on (the port stays the same across restarts). */
  readonly addr: Deno.NetAddr;
  /** Resolves once {@linkcode ResilientServer.shutdown} has drained every server. */
  readonly finished: Promise<void>;
  /** Stops listening, lets in-flight requests finish, and resolves when they have. */
  shutdown(): Promise<void>;
}

/** Options of {@linkcode serveResilient}. */
export interface ResilientServeOptions {
  hostname: string;
  port: number;
  onListen?: (addr: Deno.NetAddr) => void;
  /** Where failures are told; `console.error` by default. */
  log?: (message: string) => void;
}

/**
 * Serves `handler` on `hostname:port` and serves again whenever the listener dies.
 *
 * @example
 * ```ts
 * import { serveResilient } from "./_resilient_serve.ts";
 * const server = serveResilient({ hostname: "127.0.0.1", port: 8787 }, (r) => new Response(r.url));
 * ```
 */
export function serveResilient(
  { hostname, port, onListen, log = console.error }: ResilientServeOptions,
  handler: Deno.ServeHandler<Deno.NetAddr>,
): ResilientServer {
  let stopping = false;
  let pauseMs = FIRST_PAUSE_MS;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const retired: Promise<void>[] = [];
  const done = Promise.withResolvers<void>();
  let current: Deno.HttpServer<Deno.NetAddr> = Deno.serve(
    { hostname, port, onListen, tcpBacklog: LISTEN_BACKLOG },
    handler,
  );
  const addr = current.addr;

  const watch = (server: Deno.HttpServer<Deno.NetAddr>) => {
    server.finished.then(() => {
      if (stopping) return;
      // Nobody asked it to stop: only a failure of the listener ends a Deno server this way.
      restart(new Error("the server finished by itself"));
    }, (error) => {
      if (!stopping) restart(error);
    });
  };

  const restart = (error: unknown) => {
    log(
      `Cannot accept connections on ${hostname}:${addr.port}: ${error}; serving again in ${pauseMs} ms`,
    );
    timer = setTimeout(() => {
      timer = undefined;
      if (stopping) return;
      try {
        // Serve again on the port actually bound, even when asked for port 0.
        current = Deno.serve(
          { hostname, port: addr.port, onListen() {}, tcpBacklog: LISTEN_BACKLOG },
          handler,
        );
        pauseMs = FIRST_PAUSE_MS;
        log(`Serving again on ${hostname}:${addr.port}`);
        watch(current);
      } catch (listenError) {
        pauseMs = Math.min(MAX_PAUSE_MS, pauseMs * 2);
        restart(listenError);
      }
    }, pauseMs);
  };

  watch(current);
  return {
    addr,
    finished: done.promise,
    async shutdown() {
      if (!stopping) {
        stopping = true;
        clearTimeout(timer);
        retired.push(current.shutdown().catch(() => {}));
        await Promise.all(retired);
        done.resolve();
      }
      await done.promise;
    },
  };
}
