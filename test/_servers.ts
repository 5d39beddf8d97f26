/**
 * Starts and stops the processes of the conformance suite: the scripted simulated downstream and
 * the gateway served by Deno, Bun or workerd (plain `workerd serve`, see {@linkcode startWorkerd};
 * `wrangler dev` for the suites that need its queues), each on a free port of 127.0.0.1.
 *
 * Every process is spawned with piped output that is drained as it comes (so a chatty process
 * never blocks on a full pipe) and kept for the error message when it fails to start.
 * {@linkcode ServedProcess.stop} sends SIGTERM, awaits the exit status and the end of both pipes.
 *
 * @module
 */

import { prepareWorkerd } from "../cli/_workerd_config.ts";

/** The runtimes the gateway is served by in the conformance suite. */
export type Runtime = "deno" | "bun" | "workerd";

/** Polls before a process counts as not ready; with {@linkcode READY_POLL_MS}, about 30 s. */
const READY_POLLS = 300;
/** Pause between two readiness polls. */
const READY_POLL_MS = 100;
/** How long a stopped process may keep its pipes open (e.g. through a grandchild). */
const DRAIN_GRACE_MS = 5000;

/** A process serving HTTP on 127.0.0.1, and how to stop it. */
export interface ServedProcess {
  /** Base URL with a trailing slash, e.g. `http://127.0.0.1:40123/`. */
  readonly url: string;
  /** Its process id, e.g. to read its memory from `/proc/<pid>/status` on Linux. */
  readonly pid: number;
  /** Everything it wrote so far on stdout and stderr. */
  output(): string;
  /** Sends SIGTERM (once), then waits for the exit and the end of its output. */
  stop(): Promise<Deno.CommandStatus>;
}

/**
 * A port that was free a moment ago: bound on 127.0.0.1 by the OS, then released.
 *
 * @example
 * ```ts
 * import { freePort } from "./_servers.ts";
 * const port = freePort();
 * ```
 */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    return (listener.addr as Deno.NetAddr).port;
  } finally {
    listener.close();
  }
}

/**
 * Starts the scripted simulated downstream (`test/_scripted_downstream.ts`) as its own Deno
 * process and waits until `GET /stats` answers.
 *
 * @example
 * ```ts
 * import { startDownstream } from "./_servers.ts";
 * const downstream = await startDownstream();
 * try {
 *   await fetch(`${downstream.url}stats`).then((r) => r.json());
 * } finally {
 *   await downstream.stop();
 * }
 * ```
 */
export function startDownstream(): Promise<ServedProcess> {
  const port = freePort();
  return startProcess({
    name: "scripted downstream",
    command: Deno.execPath(),
    args: [
      "run",
      // Without it Deno 2.9 also aborts request.signal after a successful answer.
      "--unstable-no-legacy-abort",
      "--allow-net=127.0.0.1",
      new URL("./_scripted_downstream.ts", import.meta.url).pathname,
      "--port",
      String(port),
    ],
    url: `http://127.0.0.1:${port}/`,
    readyPath: "stats",
  });
}

/**
 * Starts the simulated downstream as deployed (`adapters/downstream_deno.ts`: seeded latency,
 * honouring every per-request fault) and waits until `GET /stats` answers.
 *
 * @example
 * ```ts
 * import { startSimulatedDownstream } from "./_servers.ts";
 * const downstream = await startSimulatedDownstream();
 * await downstream.stop();
 * ```
 */
export function startSimulatedDownstream(): Promise<ServedProcess> {
  const port = freePort();
  const root = new URL("../", import.meta.url);
  return startProcess({
    name: "simulated downstream",
    command: Deno.execPath(),
    args: [
      "run",
      "--unstable-no-legacy-abort",
      "--allow-net=127.0.0.1",
      "--allow-env=PORT",
      "adapters/downstream_deno.ts",
      "--port",
      String(port),
    ],
    url: `http://127.0.0.1:${port}/`,
    readyPath: "stats",
    cwd: root.pathname,
  });
}

/**
 * Starts the gateway on `runtime` with `DOWNSTREAM_URL` set to `downstreamUrl`, the way each
 * adapter is started in production, and waits until `GET /metrics` answers. `vars` are further
 * environment variables (Worker variables on workerd), e.g. `OTEL_EXPORTER_OTLP_ENDPOINT`.
 *
 * @example
 * ```ts
 * import { startDownstream, startGateway } from "./_servers.ts";
 * const downstream = await startDownstream();
 * const gateway = await startGateway("bun", downstream.url);
 * await gateway.stop();
 * await downstream.stop();
 * ```
 */
export function startGateway(
  runtime: Runtime,
  downstreamUrl: string,
  { vars = {} }: { vars?: Record<string, string> } = {},
): Promise<ServedProcess> {
  const port = freePort();
  const url = `http://127.0.0.1:${port}/`;
  const root = new URL("../", import.meta.url);
  const bin = (name: string) => new URL(`node_modules/.bin/${name}`, root).pathname;
  const env = { ...vars, PORT: String(port), DOWNSTREAM_URL: downstreamUrl, NO_COLOR: "1" };
  const common = { url, readyPath: "metrics", cwd: root.pathname, env };
  switch (runtime) {
    case "deno":
      return startProcess({
        ...common,
        name: "gateway on Deno",
        command: Deno.execPath(),
        // As npm start runs it: request.signal then fires only when the client goes away.
        args: [
          "run",
          "--unstable-no-legacy-abort",
          "--allow-net",
          "--allow-env",
          "adapters/deno.ts",
        ],
      });
    case "bun":
      return startProcess({
        ...common,
        name: "gateway on Bun",
        command: bin("bun"),
        args: ["run", "adapters/bun.ts"],
      });
    case "workerd":
      return startWorkerd({
        name: "gateway on workerd",
        vars: { ...vars, DOWNSTREAM_URL: downstreamUrl },
      });
  }
}

/** Options of {@linkcode startWorkerd}. */
export interface WorkerdOptions {
  /** What the process is, for error messages. */
  name: string;
  /** Worker variables over those of `wrangler.toml`'s `[vars]`. */
  vars?: Record<string, string>;
  /** The checkout whose Worker (and wrangler and workerd) to run; this one by default. */
  root?: URL;
}

/**
 * Starts this project's Worker under plain `workerd serve` on a free port of 127.0.0.1, as
 * `npm run start:workerd` does (`prepareWorkerd` of `cli/_workerd_config.ts` says what it holds:
 * no queues, so no `/jobs` routes; {@linkcode startWranglerDev} is for those), and waits until
 * `GET /metrics` answers.
 *
 * Nothing stands between the client and the Worker, as in production. Under `wrangler dev` every
 * request also crosses its proxy Worker, and its inspector records every fetch and relays the
 * events through its Node process: with five downstream calls a request, each answer cost 14–17
 * times the CPU (`deno task bench:workers --hosts --downstream`), enough for 16 keep-alive clients
 * to push answers past the branches' 200 ms deadlines on a 2-core machine.
 *
 * @example
 * ```ts
 * import { startWorkerd } from "./_servers.ts";
 * const worker = await startWorkerd({ name: "worker", vars: { LIMITER_CAPACITY: "4" } });
 * await worker.stop();
 * ```
 */
export async function startWorkerd(
  { name, vars = {}, root = new URL("../", import.meta.url) }: WorkerdOptions,
): Promise<ServedProcess> {
  let port = 0;
  const prepared = await prepareWorkerd({ root, port: () => port = freePort(), vars });
  const served = await startProcess({
    name,
    command: prepared.workerd,
    args: ["serve", prepared.configPath, "--verbose"],
    url: `http://127.0.0.1:${port}/`,
    readyPath: "metrics",
  }).catch(async (error) => {
    await Deno.remove(prepared.dir, { recursive: true });
    throw error;
  });
  return {
    ...served,
    async stop() {
      const status = await served.stop();
      // A second stop finds the directory gone already.
      await Deno.remove(prepared.dir, { recursive: true }).catch(() => {});
      return status;
    },
  };
}

/** Options of {@linkcode startWranglerDev}. */
export interface WranglerDevOptions {
  /** What the process is, for error messages. */
  name: string;
  /** Worker variables, each passed as `--var NAME:value`. */
  vars?: Record<string, string>;
  /** A store directory of its own (`--persist-to`), so no state of an earlier run is seen. */
  persistTo?: string;
  /** The checkout whose Worker (and wrangler) to run; this one by default. */
  root?: URL;
}

/**
 * Starts this project's Worker with `wrangler dev` (workerd) on a free port of 127.0.0.1 and
 * waits until `GET /metrics` answers.
 *
 * @example
 * ```ts
 * import { startWranglerDev } from "./_servers.ts";
 * const worker = await startWranglerDev({ name: "worker", vars: { LIMITER_CAPACITY: "4" } });
 * await worker.stop();
 * ```
 */
export function startWranglerDev(
  { name, vars = {}, persistTo, root = new URL("../", import.meta.url) }: WranglerDevOptions,
): Promise<ServedProcess> {
  const port = freePort();
  return startProcess({
    name,
    command: new URL("node_modules/.bin/wrangler", root).pathname,
    args: [
      "dev",
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      // The default (9229) would clash with any other wrangler dev on this machine.
      "--inspector-port",
      String(freePort()),
      ...(persistTo === undefined ? [] : ["--persist-to", persistTo]),
      ...Object.entries(vars).flatMap(([key, value]) => ["--var", `${key}:${value}`]),
      "--show-interactive-dev-session=false",
    ],
    url: `http://127.0.0.1:${port}/`,
    readyPath: "metrics",
    cwd: root.pathname,
    env: { NO_COLOR: "1", CI: "1", WRANGLER_SEND_METRICS: "false" },
  });
}

/** What {@linkcode startProcess} runs and where it answers once ready. */
export interface ProcessOptions {
  name: string;
  command: string;
  args: string[];
  url: string;
  readyPath: string;
  cwd?: string;
  env?: Record<string, string>;
}

/**
 * Spawns `command args`, collects its output, and waits until `url + readyPath` answers 200
 * (bounded polls); on failure it stops the process and throws with its output.
 *
 * @example
 * ```ts
 * import { freePort, startProcess } from "./_servers.ts";
 * const port = freePort();
 * const served = await startProcess({
 *   name: "downstream",
 *   command: Deno.execPath(),
 *   args: ["run", "--allow-net", "adapters/downstream_deno.ts", "--port", String(port)],
 *   url: `http://127.0.0.1:${port}/`,
 *   readyPath: "stats",
 * });
 * await served.stop();
 * ```
 */
export async function startProcess(
  { name, command, args, url, readyPath, cwd, env }: ProcessOptions,
): Promise<ServedProcess> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(command, {
      args,
      cwd,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    throw new Error(`Cannot start the ${name} as '${command}' did not spawn: ${error}`, {
      cause: error,
    });
  }
  const chunks: string[] = [];
  const reading = new AbortController();
  const drained = Promise.all([
    drain(child.stdout, chunks, reading.signal),
    drain(child.stderr, chunks, reading.signal),
  ]);
  let exited = false;
  const status = child.status.finally(() => exited = true);
  let stopping: Promise<Deno.CommandStatus> | undefined;
  const served: ServedProcess = {
    url,
    pid: child.pid,
    output: () => chunks.join(""),
    stop() {
      stopping ??= (async () => {
        if (!exited) {
          try {
            child.kill("SIGTERM");
          } catch {
            // It exited between the check and the kill.
          }
        }
        const result = await status;
        // A grandchild may still hold the pipes: stop reading then, so the test can end.
        await settleWithin(drained, DRAIN_GRACE_MS, () => reading.abort());
        return result;
      })();
      return stopping;
    },
  };
  try {
    await waitUntilReady(`${url}${readyPath}`, () => exited);
  } catch (error) {
    await served.stop();
    throw new Error(
      `Cannot start the ${name} as ${url}${readyPath} never answered: ${
        (error as Error).message
      }\n--- its output ---\n${served.output()}`,
    );
  }
  return served;
}

/** Reads `stream` to its end (or until `signal` aborts and cancels it), keeping the text. */
async function drain(
  stream: ReadableStream<Uint8Array>,
  chunks: string[],
  signal: AbortSignal,
): Promise<void> {
  try {
    const text = stream.pipeThrough(new TextDecoderStream(), { signal });
    for await (const chunk of text) chunks.push(chunk);
  } catch {
    // Cancelled by stop(): nothing more to read.
  }
}

/** Awaits `promise`; after `ms` calls `onLate` once and keeps waiting. The timer never leaks. */
async function settleWithin(promise: Promise<unknown>, ms: number, onLate: () => void) {
  const timer = setTimeout(onLate, ms);
  try {
    await promise;
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `url` until it answers 200, at most {@linkcode READY_POLLS} times. */
async function waitUntilReady(url: string, exited: () => boolean): Promise<void> {
  let last = "no answer yet";
  for (let poll = 0; poll < READY_POLLS; poll++) {
    if (exited()) throw new Error("the process exited");
    try {
      const response = await fetch(url);
      await response.body?.cancel();
      if (response.ok) return;
      last = `status ${response.status}`;
    } catch (error) {
      last = String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
  }
  throw new Error(`gave up after ${READY_POLLS} polls (last: ${last})`);
}
