/**
 * Hostile clients against the gateway on Deno, Bun and workerd (`workerd serve`), over raw TCP:
 * connections that send half a request and stall (slowloris), bytes that are not HTTP, an
 * oversized query, a flood of headers, thousands of unknown parameters. None may get a 5xx, and
 * after all of them, with the stalled connections still open, the gateway answers a product.
 *
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { type Runtime, startGateway } from "../_servers.ts";
import { startHostileDownstream } from "./_hostile_downstream.ts";

const RUNTIMES: Runtime[] = ["deno", "bun", "workerd"];
/** Stalled connections held open while the gateway must keep serving. */
const STALLED = 50;
/** A safety net for a read that never ends, not a measured time: the test fails on it. */
const READ_GIVE_UP_MS = 10_000;

const encoder = new TextEncoder();

/** Sends `request` raw and returns the status of the answer, or 0 when the server closed. */
async function exchange(port: number, request: string): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const giveUp = setTimeout(() => conn.close(), READ_GIVE_UP_MS);
  try {
    await conn.write(encoder.encode(request)).catch(() => 0);
    const buffer = new Uint8Array(64);
    const read = await conn.read(buffer).catch(() => null);
    if (read === null) return 0;
    const match = new TextDecoder().decode(buffer.subarray(0, read)).match(
      /^HTTP\/1\.[01] (\d{3})/,
    );
    return match === null ? -1 : Number(match[1]);
  } finally {
    clearTimeout(giveUp);
    try {
      conn.close();
    } catch {
      // Closed by the give-up timer.
    }
  }
}

const get = (target: string, headers = "") =>
  `GET ${target} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n${headers}\r\n`;

for (const runtime of RUNTIMES) {
  Deno.test(`hostile clients get no 5xx and do not stop the gateway on ${runtime}`, async (t) => {
    const downstream = await startHostileDownstream();
    const gateway = await startGateway(runtime, downstream.url).catch(async (error) => {
      await downstream.close();
      throw error;
    });
    const port = Number(new URL(gateway.url).port);
    const stalled: Deno.Conn[] = [];
    try {
      await t.step("half requests stay open (slowloris)", async () => {
        for (let i = 0; i < STALLED; i++) {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port });
          stalled.push(conn);
          await conn.write(
            encoder.encode(i % 2 ? "GET /product/sku-1 HTTP/1.1\r\nhost: x\r\nx-" : "G"),
          );
        }
      });

      // Not HTTP: the runtime answers before the app, with its own status (Deno 400, Bun 505 for
      // a missing version, workerd 501 for garbage) or by closing; never a 500.
      for (
        const [what, request] of [
          ["bytes that are not HTTP", "\u0000\u00ff\u0001garbage\r\n\r\n"],
          ["a request line with no version", "GET /product/sku-42\r\n\r\n"],
        ]
      ) {
        await t.step(what, async () => {
          const status = await exchange(port, request);
          assert(status === 0 || [400, 501, 505].includes(status), `answered ${status}`);
        });
      }

      const cases: [string, string][] = [
        ["a 64 KB query", get(`/product/sku-42?q=${"a".repeat(64 * 1024)}`)],
        [
          "4,000 unknown fault parameters",
          get(
            `/product/sku-42?${
              Array.from({ length: 4000 }, (_, i) => `fault.j${i}=fail`).join("&")
            }`,
          ),
        ],
        [
          "200 junk headers",
          get(
            "/product/sku-42",
            Array.from({ length: 200 }, (_, i) => `x-junk-${i}: ${i}\r\n`).join(""),
          ),
        ],
        [
          "a budget header that is not a number",
          get("/product/sku-42", "x-fanfare-budget-ms: NaN\r\n"),
        ],
        ["a negative budget header", get("/product/sku-42", "x-fanfare-budget-ms: -5\r\n")],
        ["an id with encoded slashes", get("/product/..%2F..%2Fadmin")],
        [
          "HEAD on the product",
          "HEAD /product/sku-42 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        ],
        [
          "a body on a GET",
          get("/product/sku-42", "content-length: 5\r\n").replace(/\r\n$/, "\r\nhello"),
        ],
      ];
      for (const [what, request] of cases) {
        await t.step(what, async () => {
          const status = await exchange(port, request);
          assert(status === 0 || (status >= 200 && status < 500), `answered ${status}`);
        });
      }

      await t.step(
        "the gateway still answers a product with the stalled connections open",
        async () => {
          const response = await fetch(`${gateway.url}product/sku-42?budget=2000`);
          const body = await response.json();
          assertEquals(response.status, 200, JSON.stringify(body));
          assertEquals(body.degraded, []);
        },
      );
    } finally {
      for (const conn of stalled) conn.close();
      await gateway.stop();
      await downstream.close();
    }
  });
}
