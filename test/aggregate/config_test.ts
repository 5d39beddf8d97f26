import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { configIssues, parseConfig } from "../../src/aggregate/mod.ts";
import { configJsonSchema } from "../../cli/_config_schema.ts";

const repo = new URL("../../", import.meta.url);

/** A valid one-endpoint config whose `customer` branch a test then breaks. */
function config(customer: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  return {
    endpoints: [{
      name: "orders",
      route: "/orders/:orderId",
      branches: {
        order: { path: "/orders/{params.orderId}", required: true, timeoutMs: 300 },
        customer: {
          path: "/customers/{order.customerId}",
          needs: ["order"],
          timeoutMs: 200,
          ...customer,
        },
        ...extra,
      },
    }],
  };
}

Deno.test("the committed fanfare.config.json is valid", async () => {
  const json = JSON.parse(await Deno.readTextFile(new URL("fanfare.config.json", repo)));
  assertEquals(configIssues(json), []);
});

Deno.test("the committed JSON Schema is the one the config's zod schema gives (deno task config:check --schema)", async () => {
  const committed = JSON.parse(
    await Deno.readTextFile(new URL("fanfare.config.schema.json", repo)),
  );
  assertEquals(committed, JSON.parse(JSON.stringify(configJsonSchema())));
});

Deno.test("an unknown need is named with its JSON path", () => {
  const json = config({ needs: ["ordr"] });
  json.endpoints.unshift(
    ...[0, 1].map((n) => ({ ...config().endpoints[0], name: `e${n}`, route: `/e${n}/:orderId` })),
  );
  assertEquals(configIssues(json), [
    'endpoints[2].branches.customer.needs[0]: unknown branch "ordr"',
    'endpoints[2].branches.customer.path: {order.customerId} names "order", which is not in needs',
  ]);
});

Deno.test("a cycle in needs is an error naming the cycle", () => {
  const issues = configIssues(config({ needs: ["order", "address"] }, {
    address: { path: "/addresses/{customer.id}", needs: ["customer"], timeoutMs: 100 },
  }));
  assertEquals(issues, [
    "endpoints[0].branches: needs form a cycle: customer → address → customer",
  ]);
});

Deno.test("schema errors name their JSON path: a missing timeout, a wrong type, an unknown field", () => {
  assertEquals(configIssues(config({ timeoutMs: undefined, required: "yes", retries: 3 })), [
    'endpoints[0].branches.customer.required: must be a boolean: current value is "yes"',
    "endpoints[0].branches.customer.timeoutMs: is required (number)",
    'endpoints[0].branches.customer: unknown field(s) "retries"',
  ]);
  assertEquals(configIssues({ endpoints: [] }), ["endpoints: must have at least 1 element(s)"]);
});

Deno.test("placeholders must name a route parameter, an allowed header, a need, or item with forEach", () => {
  const issues = configIssues(config({
    path: "/c/{params.id}/{headers.x-tenant}/{item}/{query.lang}",
  }));
  assertEquals(issues, [
    "endpoints[0].branches.customer.path: {params.id} names no parameter of the route",
    "endpoints[0].branches.customer.path: {headers.x-tenant} names a header not listed in the endpoint's headers",
    "endpoints[0].branches.customer.path: {item} needs forEach on the branch",
  ]);
});

Deno.test("a template may not read the gateway's own query parameters: budget and policy", () => {
  const issues = configIssues(config({
    path: "/c/{query.budget}/{query.policy}/{query.lang}",
  }));
  assertEquals(issues, [
    `endpoints[0].branches.customer.path: {query.budget} names the gateway's own query parameter "budget"`,
    `endpoints[0].branches.customer.path: {query.policy} names the gateway's own query parameter "policy"`,
  ]);
});

Deno.test("a malformed template, an unknown downstream, a hedge without idempotence and a foreign forEach are named", () => {
  const issues = configIssues(config({
    path: "/c/{order.customerId",
    downstream: "users",
    hedge: { delayMs: 20 },
    retry: {},
    idempotent: false,
    forEach: { from: "other.ids" },
  }));
  assertEquals(issues, [
    'endpoints[0].branches.customer.downstream: unknown downstream "users" (declare it in downstreams)',
    "endpoints[0].branches.customer.hedge: a hedge repeats the call, which needs idempotent: true",
    "endpoints[0].branches.customer.retry: a retry repeats the call, which needs idempotent: true",
    'endpoints[0].branches.customer.forEach.from: "other" is not in needs',
    'endpoints[0].branches.customer.path: Cannot parse the template as every brace must close one placeholder: current value is "/c/{order.customerId"',
  ]);
});

Deno.test("two endpoints on one route, a reserved branch name and a shared group are errors", () => {
  const json = config({ group: "order" }, {
    item: { path: "/x", timeoutMs: 10 },
  }) as { endpoints: Record<string, unknown>[] };
  json.endpoints.push({ ...json.endpoints[0], name: "again", route: "/orders/:id" });
  const issues = configIssues(json);
  assert(
    issues.includes('endpoints[1].route: same route as endpoints[0]: "/orders/:id"'),
    issues.join("\n"),
  );
  assert(
    issues.includes(
      'endpoints[0].branches: "item" is reserved for templates, name the branch otherwise',
    ),
  );
  assert(
    issues.includes(
      'endpoints[0].branches.customer.group: "order" is also the group of branch order',
    ),
  );
});

Deno.test("parseConfig() throws a ConfigError listing every issue", () => {
  assertThrows(
    () => parseConfig({ endpoints: [] }, "fanfare.config.json"),
    /Cannot use fanfare.config.json as it has 1 problem\(s\):\nendpoints: /,
  );
});

Deno.test("config:check prints each problem with its JSON path and exits 1", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/bad.json`, JSON.stringify(config({ needs: ["ordr"] })));
    const run = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "cli/config_check.ts",
        `${dir}/bad.json`,
        "fanfare.config.json",
      ],
      cwd: repo,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(run.code, 1);
    const stderr = new TextDecoder().decode(run.stderr);
    assert(
      stderr.includes('bad.json: endpoints[0].branches.customer.needs[0]: unknown branch "ordr"'),
      stderr,
    );
    assert(
      new TextDecoder().decode(run.stdout).includes("fanfare.config.json: valid, 1 endpoint(s)"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
