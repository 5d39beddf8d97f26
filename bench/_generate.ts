/**
 * Runs one open-loop step of the overload experiments from a fresh generator process
 * (`bench/_generator.ts`), on Bun when the project's Bun is installed, else on Deno.
 *
 * Bun, because the generator is not what is measured and shares the machine's two cores with
 * what is: in `exp:overload`'s 4× step the Bun generator used 0.35 of a core and sent 9 ms late
 * at p99 (4,712 requests/s), where the Deno one, in the run before it, used 0.67 of a core and
 * sent 490 ms late (3,857/s).
 *
 * Bun's `fetch` keeps at most 256 requests open at once unless `BUN_CONFIG_MAX_HTTP_REQUESTS`
 * says otherwise, and queues the rest unseen: its sends then wait for the answers, which is a
 * closed loop of 256 clients, not an open model. At 4× capacity the gateway's 200 admitted
 * requests held most of the 256, and its 503s waited behind them in the generator (p50 324 ms,
 * with the gateway's thread not saturated). Unbounded (Bun's most, 65,535), it opened a
 * connection for nearly every request once answers slowed: 17,000 at once at 8× capacity, with
 * the generator using 1.9 cores of the two and the gateway's thread mostly idle (figures read
 * by hand during runs, with `ss` and `/proc`). So it may keep {@linkcode MAX_OPEN_REQUESTS}
 * open, as a fleet of clients' connection pools would: about five times what the gateway holds
 * at 4× (its admission limit of 200 and a few ms of 503s).
 *
 * @module
 */
import { childJson } from "./_child_json.ts";
import { existsSync } from "node:fs";
import type { Sample } from "./_open_loop.ts";

const BUN = new URL("../node_modules/.bin/bun", import.meta.url).pathname;
const SCRIPT = new URL("./_generator.ts", import.meta.url).pathname;

/** The most requests the Bun generator keeps open at once; more wait in it, unseen. */
export const MAX_OPEN_REQUESTS = 1024;

/** The runtime the generator runs on: `"bun"` when the project's Bun is installed. */
export const GENERATOR: "bun" | "deno" = existsSync(BUN) ? "bun" : "deno";

/** Options of {@linkcode generate}. */
export interface GenerateOptions {
  ratePerSecond: number;
  count: number;
  /** Any request still open this long after it was sent is aborted. */
  guardMs: number;
  /** The `budget` query parameter of every product request. */
  budgetMs: number;
  /** Called once the generator is about to send its first request. */
  onStarted?: () => void;
}

/**
 * Sends `count` product requests to `url` at `ratePerSecond` from a process of its own and
 * resolves with their samples (each body a `ProductSummary`) and the CPU seconds it used.
 *
 * @example
 * ```ts
 * import { generate } from "./_generate.ts";
 * const { samples } = await generate("http://127.0.0.1:8787/", {
 *   ratePerSecond: 100,
 *   count: 200,
 *   guardMs: 5000,
 *   budgetMs: 1000,
 * });
 * ```
 */
export function generate(
  url: string,
  { ratePerSecond, count, guardMs, budgetMs, onStarted }: GenerateOptions,
): Promise<{ samples: Sample[]; cpuSeconds: number }> {
  const args = [url, ratePerSecond, count, guardMs, budgetMs].map(String);
  let announced = false;
  return childJson(
    GENERATOR === "bun" ? BUN : Deno.execPath(),
    GENERATOR === "bun" ? [SCRIPT, ...args] : ["run", "--allow-net=127.0.0.1", SCRIPT, ...args],
    {
      what: `a load step's ${GENERATOR} generator`,
      env: { BUN_CONFIG_MAX_HTTP_REQUESTS: String(MAX_OPEN_REQUESTS) },
      onOutput: (output) => {
        if (!announced && output.includes("started\n")) {
          announced = true;
          onStarted?.();
        }
      },
    },
  );
}
