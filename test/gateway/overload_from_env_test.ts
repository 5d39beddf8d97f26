import assert from "node:assert/strict";
import { overloadFromEnv } from "../../src/gateway/mod.ts";

Deno.test("overloadFromEnv turns both protections on by default", () => {
  const { admission, bulkheads } = overloadFromEnv({});
  assert.equal(admission?.stats().limit, 64);
  assert.equal(admission?.stats().maxLimit, 128);
  assert.ok(bulkheads !== undefined);
});

Deno.test("overloadFromEnv reads limits and switches each protection off", () => {
  const { admission } = overloadFromEnv({
    ADMISSION_MAX_LIMIT: "50",
    ADMISSION_INITIAL_LIMIT: "5",
  });
  assert.equal(admission?.stats().limit, 5);
  assert.equal(admission?.stats().maxLimit, 50);
  assert.deepEqual(overloadFromEnv({ ADMISSION: "off", BULKHEADS: "off" }), {});
  assert.equal(overloadFromEnv({ ADMISSION_MAX_LIMIT: "8" }).admission?.stats().limit, 8);
});

Deno.test("overloadFromEnv reads how long an optional branch waits for a permit, only when set", () => {
  const off = { ADMISSION: "off", BULKHEADS: "off" };
  assert.deepEqual(overloadFromEnv({ ...off, OPTIONAL_WAIT_MS: "250" }), { optionalWaitMs: 250 });
  assert.deepEqual(overloadFromEnv({ ...off, OPTIONAL_WAIT_MS: "0" }), { optionalWaitMs: 0 });
  assert.equal(overloadFromEnv({}).optionalWaitMs, undefined, "unset: the gateway's default");
});

Deno.test("overloadFromEnv names the variable of a negative, non-numeric or zero setting", () => {
  const cases: [Record<string, string>, RegExp][] = [
    [
      { ADMISSION_MAX_LIMIT: "-1" },
      /'ADMISSION_MAX_LIMIT' must be a whole number of at least 1: current value is "-1"/,
    ],
    [
      { ADMISSION_MAX_QUEUE: "lots" },
      /'ADMISSION_MAX_QUEUE' must be a whole number: current value is "lots"/,
    ],
    [{ BULKHEAD_MAX_LIMIT: "0" }, /'BULKHEAD_MAX_LIMIT'/],
    [{ BULKHEAD_MAX_QUEUE: "2.5" }, /'BULKHEAD_MAX_QUEUE'/],
    [
      { ADMISSION_INITIAL_LIMIT: "300" },
      /'ADMISSION_INITIAL_LIMIT' must not exceed 'ADMISSION_MAX_LIMIT' \(128\)/,
    ],
    [{ ADMISSION: "on" }, /'ADMISSION' must be 'adaptive' or 'off': current value is "on"/],
    [
      { OPTIONAL_WAIT_MS: "soon" },
      /'OPTIONAL_WAIT_MS' must be a whole number: current value is "soon"/,
    ],
    [
      { ADMISSION_MAX_LAG_MS: "-25" },
      /'ADMISSION_MAX_LAG_MS' must be a whole number: current value is "-25"/,
    ],
  ];
  for (const [env, message] of cases) {
    assert.throws(() => overloadFromEnv(env), message, JSON.stringify(env));
  }
});

Deno.test("the Deno gateway refuses to start with a bad overload setting, naming it", async () => {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      new URL("../../adapters/deno.ts", import.meta.url).pathname,
    ],
    env: { ADMISSION_MAX_QUEUE: "-5", PORT: "0", DOWNSTREAM_PORT: "0", NO_COLOR: "1" },
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.notEqual(code, 0);
  assert.match(new TextDecoder().decode(stderr), /'ADMISSION_MAX_QUEUE' must be a whole number/);
});
