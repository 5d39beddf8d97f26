/**
 * The permit object's HTTP API in this process, over a `LedgerHost`: what it reads of an
 * attacker's request, how long an acquire may wait, and who may return a lease.
 *
 * @module
 */
import { permitHttpApi } from "../../adapters/_permit_http_api.ts";
import { LedgerHost, PermitLedger } from "../../src/limits/mod.ts";
import { assert, assertEquals } from "../_assert.ts";
import { flush } from "../_deferred.ts";

const SECRET = "Bearer s3cret";

function setup({ capacity = 1, maxWaitMs = 10_000 } = {}) {
  const host = new LedgerHost(
    new PermitLedger({ capacity, leaseIdSuffix: () => crypto.randomUUID().replaceAll("-", "") }),
  );
  const api = permitHttpApi(() => host, {
    authenticated: (request) => Promise.resolve(request.headers.get("authorization") === SECRET),
    maxWaitMs: () => maxWaitMs,
    stats: () => host.stats(),
  });
  const call = async (path: string, body: BodyInit, init: RequestInit = {}) => {
    const response = await api.fetch(
      new Request(`http://object/limiter/${path}`, {
        method: "POST",
        headers: { authorization: SECRET },
        body,
        ...init,
      }),
    );
    return { status: response.status, json: await response.json() };
  };
  return { host, api, call };
}

/** A body of `chunks` chunks of 64 KiB, counting how many were pulled. */
function countedBody(chunks: number) {
  const counter = { pulled: 0, cancelled: false };
  const chunk = new Uint8Array(64 * 1024).fill(0x20);
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (counter.pulled === chunks) return controller.close();
      counter.pulled++;
      controller.enqueue(chunk);
    },
    cancel() {
      counter.cancelled = true;
    },
  }, { highWaterMark: 0 });
  return { body, counter };
}

Deno.test("an unauthenticated call is a 401 on its header alone: its body is cancelled after 4 KiB", async () => {
  const { call } = setup();
  const { body, counter } = countedBody(2400); // 150 MiB
  const { status } = await call("acquire", body, { headers: {} });
  assertEquals(status, 401);
  assertEquals(counter.pulled, 1);
  assert(counter.cancelled, "the body was left open");
});

Deno.test("an authenticated body is read no further than 4 KiB, then refused with 413", async () => {
  const { call, host } = setup();
  const { body, counter } = countedBody(2400);
  const { status, json } = await call("acquire", body);
  assertEquals([status, json.error], [413, "body too large"]);
  assertEquals(counter.pulled, 1);
  assert(counter.cancelled, "the body was left open");
  assertEquals(host.ledger.counters.granted, 0);
});

Deno.test("an acquire with no waitMs waits no longer than the object's maximum", async () => {
  const { call } = setup({ maxWaitMs: 20 });
  const body = (holder: string) => JSON.stringify({ holder, weight: 1, ttlMs: 60_000 });
  assertEquals((await call("acquire", body("a"))).json.granted, true);
  assertEquals((await call("acquire", body("b"))).json, { granted: false, reason: "deadline" });
});

Deno.test("a queued acquire whose caller disconnects leaves the queue and is granted nothing", async () => {
  const { call, host } = setup();
  const body = (holder: string) => JSON.stringify({ holder, weight: 1, ttlMs: 60_000 });
  const first = await call("acquire", body("a"));
  const caller = new AbortController();
  const gone = call("acquire", body("b"), { signal: caller.signal });
  await flush();
  assertEquals(host.ledger.waiting, 1);
  caller.abort();
  assertEquals((await gone).status, 499);
  assertEquals(host.ledger.waiting, 0);
  await call("release", JSON.stringify({ leaseId: first.json.lease.id, holder: "a" }));
  assertEquals(host.ledger.inUse, 0);
});

Deno.test("only a lease's holder may renew or release it", async () => {
  const { call, host } = setup();
  const { json } = await call("acquire", JSON.stringify({ holder: "a", weight: 1, ttlMs: 60_000 }));
  const leaseId = json.lease.id;
  assert(/^l-1-[0-9a-f]{32}$/.test(leaseId), `lease id ${leaseId}`);
  const steal = JSON.stringify({ leaseId, holder: "mallory" });
  assertEquals((await call("release", steal)).json, { released: false });
  const renew = JSON.stringify({ leaseId, holder: "mallory", ttlMs: 1 });
  assertEquals((await call("renew", renew)).json, { lease: null });
  assertEquals(host.ledger.inUse, 1);
  const own = JSON.stringify({ leaseId, holder: "a" });
  assertEquals((await call("release", own)).json, { released: true });
});
