/**
 * A hostile downstream on raw TCP, in the test's own process: it reads each request's head
 * itself and writes whatever bytes the case calls for, HTTP or not. The case is the product id
 * the gateway forwards (`/<branch>/<id>`); it applies to the `reviews` branch only, and every
 * other branch answers a small JSON object, so a page can always be joined.
 *
 * | id            | what `reviews` gets                                                     |
 * |---------------|-------------------------------------------------------------------------|
 * | `redirect`    | `302` to an internal server's `/admin/keys`                             |
 * | `deep`        | `200` JSON nested 10,000 deep (20 KB)                                   |
 * | `huge`        | `200` with `content-length` 30 MB, then that many bytes                 |
 * | `endless`     | `200` chunked JSON that never ends                                      |
 * | `gzipbomb`    | `200` gzip that inflates to 10 MB                                       |
 * | `html`        | a JSON object labelled `text/html`                                      |
 * | `null`        | JSON `null`                                                             |
 * | `reset`       | the connection closed without a byte                                    |
 * | `garbage`     | bytes that are not HTTP, then closed                                    |
 * | `halfheaders` | half a status line and headers, then nothing                            |
 * | `stall`       | nothing at all                                                          |
 * | `liar`        | `content-length: 10` and 1 MB of body                                   |
 * | anything else | a small JSON object                                                     |
 *
 * Every connection it holds is closed by {@linkcode HostileDownstream.close}, and a stalled one
 * as soon as the gateway gives up on it.
 *
 * @module
 */

/** The hostile downstream and its internal neighbour. */
export interface HostileDownstream {
  /** Base URL with a trailing slash. */
  readonly url: string;
  /** Requests the internal server (the redirect target) received. */
  readonly internalHits: () => number;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

/** The text no answer of the gateway may ever contain: it came from the downstream. */
export const DOWNSTREAM_SECRET = "admin-keys-7f3a";
/** Bytes of the `garbage` case; no answer of the gateway may contain them. */
export const GARBAGE = "\u0000\u00ffNOT-HTTP-" + DOWNSTREAM_SECRET + "\r\n\r\n";

const encoder = new TextEncoder();
/** 10 MB of JSON gzipped, made once: compressing it per request would stall this event loop. */
let gzipBomb: Promise<Uint8Array>;
/** Longest request head read, so that the downstream itself is bounded. */
const MAX_HEAD = 16 * 1024;

/**
 * Starts the hostile downstream and its internal neighbour on 127.0.0.1.
 *
 * @example
 * ```ts
 * import { startHostileDownstream } from "./_hostile_downstream.ts";
 * const downstream = await startHostileDownstream();
 * await downstream.close();
 * ```
 */
export async function startHostileDownstream(): Promise<HostileDownstream> {
  const inflated = new Blob([`{"pad":"${"0".repeat(10 * 1024 * 1024)}"}`]);
  gzipBomb ??= new Response(inflated.stream().pipeThrough(new CompressionStream("gzip")))
    .arrayBuffer().then((buffer) => new Uint8Array(buffer));
  await gzipBomb;
  let hits = 0;
  const internal = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    hits++;
    return Response.json({ keys: DOWNSTREAM_SECRET });
  });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const served: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      open.add(conn);
      served.push(
        serve(conn, internal.addr.port).finally(() => {
          open.delete(conn);
          try {
            conn.close();
          } catch {
            // Closed already.
          }
        }),
      );
    }
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/`,
    internalHits: () => hits,
    async close() {
      listener.close();
      for (const conn of open) {
        try {
          conn.close();
        } catch {
          // Closed already.
        }
      }
      await accepting;
      await Promise.all(served);
      await internal.shutdown();
    },
  };
}

async function serve(conn: Deno.Conn, internalPort: number): Promise<void> {
  const head = await readHead(conn);
  if (head === undefined) return;
  const [, target = "/"] = head.split(" ");
  const [, branch = "", id = ""] = target.split("?")[0].split("/");
  const kind = branch === "reviews" ? id : "ok";
  try {
    await answer(conn, kind, internalPort);
  } catch {
    // The gateway went away mid-answer: that is what it should do with most of these.
  }
}

async function answer(conn: Deno.Conn, kind: string, internalPort: number): Promise<void> {
  switch (kind) {
    case "redirect":
      return await write(
        conn,
        head(302, {
          location: `http://127.0.0.1:${internalPort}/admin/keys`,
          "content-length": "0",
        }),
      );
    case "deep":
      return await writeJson(conn, "[".repeat(10_000) + "]".repeat(10_000));
    case "huge": {
      const size = 30 * 1024 * 1024;
      await write(conn, head(200, json({ "content-length": String(size) })));
      const chunk = new Uint8Array(64 * 1024).fill(0x20);
      for (let sent = 0; sent < size; sent += chunk.length) await conn.write(chunk);
      return;
    }
    case "endless": {
      await write(conn, head(200, json({ "transfer-encoding": "chunked" })));
      const chunk = encoder.encode(`10000\r\n${" ".repeat(0x10000)}\r\n`);
      for (;;) await conn.write(chunk);
    }
    case "gzipbomb": {
      const body = await gzipBomb;
      await write(
        conn,
        head(200, json({ "content-encoding": "gzip", "content-length": String(body.length) })),
      );
      return await conn.write(body).then(() => {});
    }
    case "html":
      return await write(
        conn,
        head(200, { "content-type": "text/html", "content-length": "16" }) + '{"stars":"html"}',
      );
    case "null":
      return await writeJson(conn, "null");
    case "reset":
      return;
    case "garbage":
      return await write(conn, GARBAGE);
    case "halfheaders":
      await write(conn, "HTTP/1.1 200 OK\r\ncontent-type: applic");
      return await untilClosed(conn);
    case "stall":
      return await untilClosed(conn);
    case "liar":
      await write(conn, head(200, json({ "content-length": "10" })));
      return await write(conn, `{"a":"${"x".repeat(1024 * 1024)}"}`);
    default:
      return await writeJson(conn, JSON.stringify({ kind, ok: true }));
  }
}

function json(headers: Record<string, string>): Record<string, string> {
  return { "content-type": "application/json", ...headers };
}

function head(status: number, headers: Record<string, string>): string {
  const lines = Object.entries({ ...headers, connection: "close" })
    .map(([name, value]) => `${name}: ${value}`);
  return `HTTP/1.1 ${status} X\r\n${lines.join("\r\n")}\r\n\r\n`;
}

async function writeJson(conn: Deno.Conn, body: string): Promise<void> {
  const bytes = encoder.encode(body);
  await write(conn, head(200, json({ "content-length": String(bytes.length) })));
  await conn.write(bytes);
}

async function write(conn: Deno.Conn, text: string): Promise<void> {
  const bytes = encoder.encode(text);
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}

/** The request head up to its blank line, or `undefined` when the peer closed first. */
async function readHead(conn: Deno.Conn): Promise<string | undefined> {
  const buffer = new Uint8Array(MAX_HEAD);
  let length = 0;
  const decoder = new TextDecoder();
  while (length < buffer.length) {
    const read = await conn.read(buffer.subarray(length)).catch(() => null);
    if (read === null) return undefined;
    length += read;
    const text = decoder.decode(buffer.subarray(0, length));
    if (text.includes("\r\n\r\n")) return text;
  }
  return undefined;
}

/** Resolves when the peer closes (or resets) the connection; reads and drops what it sends. */
async function untilClosed(conn: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(1024);
  while ((await conn.read(buffer).catch(() => null)) !== null) {
    // Keep reading until it goes.
  }
}
