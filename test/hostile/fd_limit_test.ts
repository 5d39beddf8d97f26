/**
 * The gateway on Deno and Bun under a file-descriptor limit: clients that open connections and
 * send nothing exhaust it; the process must stay up and serve again once they leave (and on Deno,
 * where the server itself dies of it, log it).
 *
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { freePort, startDownstream, startProcess } from "../_servers.ts";

/** Descriptors the gateway process may hold: a few dozen above what Deno needs to start. */
const FD_LIMIT = 96;
/** Idle clients: more than the limit leaves room for. */
const CLIENTS = 150;
/** Polls of the gateway after the clients left, 100 ms apart at most (bounded, not a sleep). */
const RECOVERY_POLLS = 100;

const root = new URL("../../", import.meta.url).pathname;
const COMMANDS = {
  deno: `"$0" run --unstable-no-legacy-abort --allow-net --allow-env adapters/deno.ts`,
  bun: `${root}node_modules/.bin/bun run adapters/bun.ts`,
};

for (const [runtime, command] of Object.entries(COMMANDS)) {
  Deno.test(`the gateway on ${runtime} survives running out of file descriptors and serves again`, async () => {
    const downstream = await startDownstream();
    const port = freePort();
    const gateway = await startProcess({
      name: `gateway on ${runtime} under ulimit -n`,
      command: "sh",
      args: ["-c", `ulimit -n ${FD_LIMIT} && exec ${command}`, Deno.execPath()],
      url: `http://127.0.0.1:${port}/`,
      readyPath: "metrics",
      cwd: root,
      env: { PORT: String(port), DOWNSTREAM_URL: downstream.url, NO_COLOR: "1" },
    });
    const clients: Deno.Conn[] = [];
    try {
      for (let i = 0; i < CLIENTS; i++) {
        try {
          clients.push(await Deno.connect({ hostname: "127.0.0.1", port }));
        } catch {
          break; // The listener is down: the limit was reached.
        }
      }
      // One request makes the server accept whatever is queued, reaching the limit for sure.
      await fetch(gateway.url + "metrics").then((r) => r.body?.cancel(), () => {});
      for (const client of clients) client.close();
      clients.length = 0;

      let status = 0;
      for (let poll = 0; poll < RECOVERY_POLLS && status !== 200; poll++) {
        try {
          const response = await fetch(`${gateway.url}product/sku-42`);
          status = response.status;
          await response.body?.cancel();
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      // Deno's server dies of it and ours logs it before serving again; Bun keeps its listener.
      if (runtime === "deno") {
        assert(
          /Too many open files/.test(gateway.output()),
          `never hit the limit:\n${gateway.output()}`,
        );
      }
      assertEquals(status, 200, `the gateway did not serve again:\n${gateway.output()}`);
    } finally {
      for (const client of clients) client.close();
      await gateway.stop();
      await downstream.stop();
    }
  });
}
