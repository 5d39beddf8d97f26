/**
 * Starts and stops the gateway benchmark's loopback processes (`bench/_serve.ts`), each a Deno
 * process on a free port of 127.0.0.1.
 *
 * @module
 */

/** Readiness polls before giving up; with {@linkcode READY_POLL_MS}, about 20 s. */
const READY_POLLS = 200;
const READY_POLL_MS = 100;

/** A served process and how to stop it. */
export interface BenchProcess {
  /** Base URL with a trailing slash. */
  readonly url: string;
  /** Its stderr so far (stdout is discarded). */
  output(): string;
  /** SIGTERM once, then awaits its exit and the end of its stderr. */
  stop(): Promise<Deno.CommandStatus>;
}

/** A port of 127.0.0.1 that was free a moment ago. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    return (listener.addr as Deno.NetAddr).port;
  } finally {
    listener.close();
  }
}

/**
 * Starts `bench/_serve.ts <role> <port> ...args` and waits until `readyPath` answers 200.
 *
 * @example
 * ```ts
 * import { startServe } from "./_processes.ts";
 * const downstream = await startServe("downstream", [], "stats");
 * await downstream.stop();
 * ```
 */
export async function startServe(
  role: "downstream" | "gateway",
  args: string[],
  readyPath: string,
): Promise<BenchProcess> {
  const port = freePort();
  const url = `http://127.0.0.1:${port}/`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      // Without it Deno 2.9 also aborts request.signal after a successful answer, and warns.
      "--unstable-no-legacy-abort",
      "--allow-net=127.0.0.1",
      new URL("./_serve.ts", import.meta.url).pathname,
      role,
      String(port),
      ...args,
    ],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const chunks: string[] = [];
  const drained = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      chunks.push(chunk);
    }
  })();
  let exited = false;
  const status = child.status.finally(() => exited = true);
  let stopping: Promise<Deno.CommandStatus> | undefined;
  const served: BenchProcess = {
    url,
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
        const [result] = await Promise.all([status, drained]);
        return result;
      })();
      return stopping;
    },
  };
  let last = "no answer yet";
  for (let poll = 0; poll < READY_POLLS && !exited; poll++) {
    try {
      const response = await fetch(`${url}${readyPath}`);
      await response.body?.cancel();
      if (response.ok) return served;
      last = `status ${response.status}`;
    } catch (error) {
      last = String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
  }
  await served.stop();
  throw new Error(
    `Cannot start the ${role} process as ${url}${readyPath} never answered (last: ${last})\n` +
      served.output(),
  );
}
