/**
 * `npm run start:workerd` (`cli/serve_workerd.ts`): the Worker under plain `workerd serve` answers
 * a product page with every branch, stops on SIGTERM leaving no bundle behind, and refuses bad
 * options with a message naming them.
 *
 * @module
 */
import { assert, assertEquals } from "./_assert.ts";
import { freePort, startProcess } from "./_servers.ts";

const script = new URL("../cli/serve_workerd.ts", import.meta.url).pathname;
const permissions = ["--allow-read", "--allow-write", "--allow-run", "--allow-env"];

Deno.test("start:workerd serves the Worker, with its variables, until SIGTERM", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "fanfare-start-workerd-test-" });
  const port = freePort();
  const served = await startProcess({
    name: "start:workerd",
    command: Deno.execPath(),
    args: [
      "run",
      ...permissions,
      script,
      "--port",
      String(port),
      "--var",
      "ADMISSION_MAX_LIMIT:96",
    ],
    url: `http://127.0.0.1:${port}/`,
    readyPath: "metrics",
    env: { TMPDIR: tmp },
  });
  try {
    const response = await fetch(`${served.url}product/sku-1?budget=1000`);
    const body = await response.json();
    assertEquals(response.status, 200, JSON.stringify(body));
    assertEquals(
      Object.values(body.timings as Record<string, { outcome: string }>).map((t) => t.outcome),
      ["ok", "ok", "ok", "ok", "ok"],
    );
    const metrics = await (await fetch(`${served.url}metrics`)).text();
    assert(/^fanfare_admission_limit_max 96$/m.test(metrics), "the --var reached the Worker");
  } finally {
    const status = await served.stop();
    assertEquals(status.code, 0, served.output());
    // wrangler keeps a cache of its own there too.
    const bundles = [...Deno.readDirSync(tmp)].filter((e) => e.name.startsWith("fanfare-workerd-"));
    assertEquals(bundles, [], "the bundle's directory is removed on exit");
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("start:workerd stopped while wrangler still bundles leaves no bundle behind", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "fanfare-start-workerd-test-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...permissions, script, "--port", String(freePort())],
    env: { TMPDIR: tmp },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Once its bundle directory exists it is bundling: stop it then (bounded: 20 s at most).
  for (let i = 0; i < 200; i++) {
    if ([...Deno.readDirSync(tmp)].some((e) => e.name.startsWith("fanfare-workerd-"))) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill("SIGTERM");
  const { code } = await child.output();
  const bundles = [...Deno.readDirSync(tmp)].filter((e) => e.name.startsWith("fanfare-workerd-"));
  await Deno.remove(tmp, { recursive: true });
  assertEquals(code, 0);
  assertEquals(bundles, [], "the bundle's directory is removed");
});

for (
  const [args, message] of [
    [["--var", "NOCOLON"], /'--var' must be NAME:value: current value is 'NOCOLON'/],
    [["--port", "http"], /port must be an integer from 1 to 65535: current value is 'http'/],
    [["--watch"], /'--watch' is not an option/],
    [["--port"], /'--port' needs a value/],
  ] as const
) {
  Deno.test(`start:workerd refuses ${args.join(" ")} with exit code 2`, async () => {
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...permissions, script, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(code, 2);
    assert(message.test(new TextDecoder().decode(stderr)), new TextDecoder().decode(stderr));
  });
}
