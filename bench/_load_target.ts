/**
 * Where the load generator and the experiments send `GET /product/:id`: the gateway app
 * in-process (its `fetch`, with the simulated downstream as its in-process fetcher) or a gateway
 * process over HTTP on 127.0.0.1 in front of a downstream process. Both answer the same reduced
 * reply and expose the same gauges, so a step is measured the same way on either.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { createApp } from "../routes/app.ts";
import { createDownstream, type DownstreamOptions } from "../sim/downstream.ts";
import type { BranchRegistry, Fetcher } from "../src/gateway/mod.ts";
import { DownstreamStats } from "../sim/downstream_stats.ts";
import { DOWNSTREAM_OPTIONS, scenarioById, type ScenarioId } from "./_gateway_scenarios.ts";
import type { Reply } from "./_open_loop.ts";
import { productReply } from "./_product_reply.ts";
import { type BenchProcess, startServe } from "./_processes.ts";

/** A gateway to load, and its gauges. */
export interface LoadTarget {
  /** `"in-process"` or `"http"`. */
  readonly kind: "in-process" | "http";
  /** The gateway's base URL, ending in `/` (HTTP targets only). */
  readonly url?: string;
  /** Sends `GET <pathAndQuery>`; the reply's body is a `ProductSummary` (`bench/_product_reply.ts`). */
  send(pathAndQuery: string, signal: AbortSignal): Promise<Reply>;
  /** The gateway's `fanfare_branches_in_flight` gauge now. */
  inFlightBranches(): Promise<number>;
  /** Downstream calls in flight now, over every branch. */
  downstreamInFlight(): Promise<number>;
  /** Resident memory of the gateway's process now, in bytes (this process when in-process). */
  rssBytes(): number;
  /**
   * CPU seconds used so far by the gateway's and the downstream's processes (user + system;
   * Linux, NaN elsewhere); both are this process's when in-process.
   */
  cpuSeconds(): { gateway: number; downstream: number };
  /** Stops what the target started. */
  close(): Promise<void>;
}

const IN_FLIGHT = /^fanfare_branches_in_flight (\S+)$/m;

/** The in-flight gauge from `/metrics` text; a gauge never set yet renders no sample: 0. */
function gauge(text: string): number {
  return Number(IN_FLIGHT.exec(text)?.[1] ?? 0);
}

/** Options of {@linkcode inProcessTarget}. */
export interface InProcessOptions {
  /** The simulated downstream's options; the gateway benchmark's (seeded, tail off) by default. */
  downstream?: DownstreamOptions;
  /** The gateway's registry over the downstream; the default registry by default. */
  registry?: (downstream: Fetcher) => BranchRegistry;
}

/**
 * The gateway app called through its `fetch` in this process, in front of the simulated
 * downstream, also in-process. Load generator, gateway and downstream share one event loop.
 *
 * @example
 * ```ts
 * import { inProcessTarget } from "./_load_target.ts";
 * const target = inProcessTarget();
 * const reply = await target.send("/product/sku-1", new AbortController().signal);
 * ```
 */
export function inProcessTarget(
  {
    downstream = DOWNSTREAM_OPTIONS,
    registry = scenarioById("healthy-default-timeouts").registry,
  }: InProcessOptions = {},
): LoadTarget {
  const stats = new DownstreamStats();
  const app = createApp({ registry: registry(createDownstream({ ...downstream, stats })) });
  return {
    kind: "in-process",
    send: async (pathAndQuery, signal) =>
      productReply(
        await app.fetch(new Request(`http://gateway.internal${pathAndQuery}`, { signal })),
      ),
    inFlightBranches: async () =>
      gauge(await (await app.fetch(new Request("http://gateway.internal/metrics"))).text()),
    downstreamInFlight: () =>
      Promise.resolve(Object.values(stats.snapshot()).reduce((sum, c) => sum + c.inFlight, 0)),
    rssBytes: () => process.memoryUsage().rss,
    cpuSeconds: () => {
      const { user, system } = process.cpuUsage();
      return { gateway: (user + system) / 1e6, downstream: (user + system) / 1e6 };
    },
    close: () => Promise.resolve(),
  };
}

/** Clock ticks per second of `/proc/<pid>/stat` (USER_HZ, 100 on every Linux in use). */
const USER_HZ = 100;

/** CPU seconds (user + system) process `pid` has used, from `/proc/<pid>/stat`; NaN elsewhere. */
function cpuOf(pid: number): number {
  try {
    // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
  } catch {
    return NaN;
  }
}

/** Resident set size of process `pid` from `/proc/<pid>/status` (Linux), NaN elsewhere. */
function rssOf(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? NaN) * 1024;
  } catch {
    return NaN;
  }
}

/**
 * A gateway process serving scenario `scenario` of the gateway benchmark
 * (`bench/_gateway_scenarios.ts`) on 127.0.0.1, in front of a downstream process; both Deno.
 * `protection` picks its overload protection (see `bench/_serve.ts`): none by default. With
 * `hand-written` the gateway is not fanfare but a hand-written handler with an in-flight counter
 * (`limitedNaiveGateway`), which has no `/metrics`: its branches in flight are its downstream's
 * calls in flight.
 *
 * @example
 * ```ts
 * import { httpTarget } from "./_load_target.ts";
 * const target = await httpTarget();
 * try {
 *   await target.send("/product/sku-1", new AbortController().signal);
 * } finally {
 *   await target.close();
 * }
 * ```
 */
export async function httpTarget(
  scenario: ScenarioId = "healthy-default-timeouts",
  protection: "none" | "static" | "adaptive" | "hand-written" = "none",
): Promise<LoadTarget> {
  const processes: BenchProcess[] = [];
  const close = async () => {
    await Promise.all(processes.map((p) => p.stop()));
  };
  try {
    const downstream = await startServe("downstream", [], "stats");
    processes.push(downstream);
    const handWritten = protection === "hand-written";
    const gateway = await startServe(
      "gateway",
      [scenario, downstream.url, protection],
      handWritten ? "product/sku-0" : "metrics",
    );
    processes.push(gateway);
    const base = gateway.url.replace(/\/$/, "");
    const downstreamInFlight = async () => {
      const { branches } = await (await fetch(`${downstream.url}stats`)).json() as {
        branches: Record<string, { inFlight: number }>;
      };
      return Object.values(branches).reduce((sum, c) => sum + c.inFlight, 0);
    };
    return {
      kind: "http",
      url: gateway.url,
      send: async (pathAndQuery, signal) =>
        productReply(await fetch(`${base}${pathAndQuery}`, { signal })),
      inFlightBranches: handWritten
        ? downstreamInFlight
        : async () => gauge(await (await fetch(`${gateway.url}metrics`)).text()),
      downstreamInFlight,
      rssBytes: () => rssOf(gateway.pid),
      cpuSeconds: () => ({ gateway: cpuOf(gateway.pid), downstream: cpuOf(downstream.pid) }),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
