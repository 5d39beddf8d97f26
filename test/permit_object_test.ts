/**
 * Proof on workerd (miniflare's programmatic API) with the real `PermitObject` Durable Object:
 * the Worker is bundled by wrangler exactly as it would be deployed, then served by miniflare
 * with the object's storage persisted to a temporary directory, so a "restart" is disposing of
 * miniflare and starting it again on the same directory.
 *
 * Miniflare runs workerd as a child process with its own sockets, which it closes in
 * `dispose()`; every test disposes of it in `finally`.
 *
 * @module
 */
import { assert, assertEquals } from "./_assert.ts";
import { InFlight } from "./_deferred.ts";
import { httpPermitService } from "../src/limits/permit_service.ts";
import { ServiceLimiter } from "../src/limits/service_limiter.ts";
import type { PermitObjectStats } from "../adapters/permit_object.ts";

/**
 * The part of miniflare's `Miniflare` used here. Its own types are not imported: they declare
 * the whole Workers global scope (where `Response.json()` is `unknown`), which would change how
 * every other file of the type-checked program reads.
 */
interface Miniflare {
  dispatchFetch(url: string, init?: RequestInit): Promise<Response>;
  dispose(): Promise<void>;
}
/** The module name in a variable, so that the type checker does not load miniflare's types. */
const MINIFLARE_MODULE = "miniflare";
const { Miniflare } = await import(MINIFLARE_MODULE) as {
  Miniflare: new (options: Record<string, unknown>) => Miniflare;
};

const SECRET = "test-secret";
/**
 * Miniflare keeps a MessagePort and timers of its Node-compat internals alive past `dispose()`
 * (workerd itself is stopped and awaited): Deno's sanitizers would fail every test for them.
 */
const MINIFLARE_LEAKS = { sanitizeOps: false, sanitizeResources: false };
const ROOT = new URL("../", import.meta.url).pathname;

/**
 * The Worker as wrangler bundles it for deployment, built once per test run into wrangler's own
 * (git-ignored) `.wrangler/` directory.
 */
let bundled: Promise<string> | undefined;
function bundle(): Promise<string> {
  bundled ??= build(`${ROOT}.wrangler/tmp/permit-object-test`);
  return bundled;
}

async function build(outdir: string): Promise<string> {
  const { code, stderr, stdout } = await new Deno.Command(
    new URL("node_modules/.bin/wrangler", `file://${ROOT}`).pathname,
    {
      args: ["deploy", "--dry-run", "--outdir", outdir],
      cwd: ROOT,
      env: { CI: "1", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    },
  ).output();
  const decoder = new TextDecoder();
  assert(
    code === 0,
    `wrangler could not bundle the Worker:\n${decoder.decode(stdout)}${decoder.decode(stderr)}`,
  );
  return `${outdir}/workers.js`;
}

interface World {
  scriptPath: string;
  persist: string;
  downstreamUrl: string;
  capacity: number;
}

function start(
  { scriptPath, persist, downstreamUrl, capacity }: World,
  extra: Record<string, string> = {},
): Miniflare {
  return new Miniflare({
    modules: true,
    scriptPath,
    // Module names are paths relative to this; the bundle lives outside the working directory.
    modulesRoot: scriptPath.slice(0, scriptPath.lastIndexOf("/")),
    compatibilityDate: "2026-04-26",
    durableObjects: { LIMITER: "PermitObject" },
    durableObjectsPersist: persist,
    bindings: {
      LIMITER_CAPACITY: String(capacity),
      LIMITER_BLOCK_SIZE: "2",
      // Short, so that a block whose give-back never ran (see below) is reclaimed within a test.
      LIMITER_TTL_MS: "2000",
      LIMITER_SECRET: SECRET,
      DOWNSTREAM_URL: downstreamUrl,
      ...extra,
    },
  });
}

/** A downstream on 127.0.0.1 that counts its calls in flight; each answers after a short pause. */
function countingDownstream(inFlight: InFlight): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    inFlight.enter();
    try {
      // Latency, not synchronisation: it only makes calls overlap.
      await new Promise((resolve) => setTimeout(resolve, 5));
      return Response.json({ path: new URL(request.url).pathname });
    } finally {
      inFlight.leave();
    }
  });
}

/** Runs `body` with a bundled Worker, a counting downstream and a fresh storage directory. */
async function withWorld(
  capacity: number,
  body: (world: World, inFlight: InFlight) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  const inFlight = new InFlight();
  const downstream = countingDownstream(inFlight);
  try {
    const world = {
      scriptPath: await bundle(),
      persist: `${dir}/storage`,
      downstreamUrl: `http://127.0.0.1:${downstream.addr.port}/`,
      capacity,
    };
    await body(world, inFlight);
  } finally {
    await downstream.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Calls the object's HTTP API through the Worker; `secret: null` sends no credentials. */
async function api(
  mf: Miniflare,
  path: string,
  { body, secret = SECRET }: { body?: unknown; secret?: string | null } = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (secret !== null) headers.authorization = `Bearer ${secret}`;
  const response = await mf.dispatchFetch(`http://gateway.test/limiter/${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers,
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: response.status, json: await response.json() as Record<string, unknown> };
}

async function stats(mf: Miniflare): Promise<PermitObjectStats> {
  const { status, json } = await api(mf, "stats");
  assertEquals(status, 200, JSON.stringify(json));
  return json as unknown as PermitObjectStats;
}

/** A permit service over the object's HTTP API as served by miniflare (a "Deno fleet" member). */
function fleetMember(mf: Miniflare, name: string): ServiceLimiter {
  const service = httpPermitService("http://gateway.test/limiter/", {
    secret: SECRET,
    fetch: async (request) =>
      await mf.dispatchFetch(request.url, {
        method: request.method,
        headers: Object.fromEntries(request.headers),
        body: request.body === null ? undefined : await request.text(),
      }),
  });
  return new ServiceLimiter(service, { holder: name, ttlMs: 30_000 });
}

/** Polls `probe` until `done`, at most `attempts` times `pauseMs` apart; fails otherwise. */
async function pollUntil<T>(
  what: string,
  probe: () => Promise<T>,
  done: (value: T) => boolean,
  { attempts = 100, pauseMs = 50 } = {},
): Promise<T> {
  let value = await probe();
  for (let i = 1; i < attempts && !done(value); i++) {
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
    value = await probe();
  }
  assert(done(value), `${what}: not the case after ${attempts} polls: ${JSON.stringify(value)}`);
  return value;
}

Deno.test({
  name:
    "Gateway requests and fleet members through several stubs never exceed the object's capacity at the downstream",
  ...MINIFLARE_LEAKS,
  fn: async () => {
    await withWorld(4, async (world, inFlight) => {
      const mf = start(world);
      try {
        const members = ["deno-1", "deno-2", "bun-1"].map((name) => fleetMember(mf, name));
        const viaMembers = members.flatMap((member, m) =>
          Array.from({ length: 6 }, async (_, i) => {
            await using _permit = await member.acquire(1);
            const response = await fetch(`${world.downstreamUrl}fleet/${m}-${i}`);
            await response.body?.cancel();
          })
        );
        const viaGateway = Array.from({ length: 12 }, async (_, i) => {
          const response = await mf.dispatchFetch(`http://gateway.test/product/p${i}?budget=5000`);
          await response.body?.cancel();
          return response.status;
        });
        const [statuses] = await Promise.all([Promise.all(viaGateway), Promise.all(viaMembers)]);
        assert(inFlight.max <= 4, `${inFlight.max} calls in flight at the downstream, capacity 4`);
        // A branch whose permit would come after its own timeout is skipped: when it is required,
        // the ceiling failed it (503 + Retry-After), not its downstream.
        assert(statuses.every((s) => s === 200 || s === 503), JSON.stringify(statuses));
        assert(inFlight.started >= 3 * 6, `${inFlight.started} calls reached the downstream`);
        // A block granted after the request that asked for it has answered is given back from
        // outside any request, which workerd may drop; its TTL and the alarm then reclaim it.
        const after = await pollUntil(
          "every permit is back, returned or reclaimed, once the gateway is idle",
          () => stats(mf),
          (s) => s.inUse === 0,
        );
        assertEquals(after.counters.unknownReleases, 0);
      } finally {
        await mf.dispose();
      }
    });
  },
});

Deno.test({
  name: "A holder that never releases gets its permits reclaimed by the alarm after its TTL",
  ...MINIFLARE_LEAKS,
  fn: async () => {
    await withWorld(2, async (world) => {
      const mf = start(world);
      try {
        const { status, json } = await api(mf, "acquire", {
          body: { holder: "vanishing", weight: 2, ttlMs: 300 },
        });
        assertEquals([status, json.granted], [200, true]);
        assertEquals((await stats(mf)).inUse, 2);
        // Reading stats applies no time, so only the alarm can bring the permits back.
        const done = await pollUntil(
          "the alarm reclaimed the lease",
          () => stats(mf),
          (s) => s.inUse === 0,
        );
        assertEquals(done.alarm.reclaimed, 1);
        assertEquals(done.counters.reclaimedWeight, 2);
      } finally {
        await mf.dispose();
      }
    });
  },
});

Deno.test({
  name: "A restart of the object neither loses its leases nor grants their permits twice",
  ...MINIFLARE_LEAKS,
  fn: async () => {
    await withWorld(4, async (world) => {
      let mf = start(world);
      const leases: string[] = [];
      try {
        for (const holder of ["a", "b", "c"]) {
          const { json } = await api(mf, "acquire", { body: { holder, weight: 1, ttlMs: 60_000 } });
          leases.push((json.lease as { id: string }).id);
        }
        // A waiter queued when the object goes away dies with it.
        const queued = api(mf, "acquire", {
          body: { holder: "d", weight: 2, ttlMs: 60_000, waitMs: 30_000 },
        })
          .catch((error) => error);
        await pollUntil("the waiter is queued", () => stats(mf), (s) => s.waiting === 1);
        await mf.dispose();
        await queued;
        mf = start(world);
        const restarted = await stats(mf);
        assertEquals([restarted.inUse, restarted.leases, restarted.waiting], [3, 3, 0]);
        const tooMuch = await api(mf, "acquire", {
          body: { holder: "e", weight: 2, ttlMs: 1000, waitMs: 0 },
        });
        assertEquals(tooMuch.json, { granted: false, reason: "deadline" });
        const one = await api(mf, "acquire", { body: { holder: "f", weight: 1, ttlMs: 1000 } });
        assertEquals(one.json.granted, true);
        assert(!leases.includes((one.json.lease as { id: string }).id), "a lease id was reused");
        for (const id of leases) {
          const holder = ["a", "b", "c"][leases.indexOf(id)];
          assertEquals((await api(mf, "release", { body: { leaseId: id, holder } })).json, {
            released: true,
          });
        }
        assertEquals((await stats(mf)).inUse, 1);
      } finally {
        await mf.dispose();
      }
    });
  },
});

Deno.test({
  name: "The object's HTTP API answers a bad request with a 4xx JSON naming the field",
  ...MINIFLARE_LEAKS,
  fn: async () => {
    await withWorld(2, async (world) => {
      const mf = start(world);
      try {
        const missing = await api(mf, "acquire", { body: { holder: "a", ttlMs: 100 } });
        assertEquals(missing.status, 400);
        assertEquals((missing.json.fields as { field: string }[]).map((f) => f.field), ["weight"]);
        const overCapacity = await api(mf, "acquire", {
          body: { holder: "a", weight: 3, ttlMs: 100 },
        });
        assertEquals(overCapacity.status, 400);
        assertEquals((overCapacity.json.fields as { field: string }[])[0].field, "weight");
        const notJson = await api(mf, "release", { body: "{" });
        assertEquals([notJson.status, notJson.json.error], [400, "invalid request"]);
        const badTtl = await api(mf, "renew", { body: { leaseId: "l-1", holder: "a", ttlMs: -5 } });
        assertEquals((badTtl.json.fields as { field: string }[])[0].field, "ttlMs");
        const unknown = await api(mf, "nope");
        assertEquals([unknown.status, unknown.json.error], [404, "not found"]);
        assertEquals((await stats(mf)).counters.granted, 0);
      } finally {
        await mf.dispose();
      }
    });
  },
});

Deno.test({
  name: "An unauthenticated call to the object's HTTP API gets 401 and changes nothing",
  ...MINIFLARE_LEAKS,
  fn: async () => {
    await withWorld(2, async (world) => {
      const mf = start(world);
      try {
        const held = await api(mf, "acquire", { body: { holder: "a", weight: 1, ttlMs: 60_000 } });
        const leaseId = (held.json.lease as { id: string }).id;
        const before = await stats(mf);
        for (const secret of [null, "wrong-secret"]) {
          const calls = [
            api(mf, "acquire", { body: { holder: "x", weight: 1, ttlMs: 100 }, secret }),
            api(mf, "release", { body: { leaseId, holder: "a" }, secret }),
            api(mf, "renew", { body: { leaseId, holder: "a", ttlMs: 100 }, secret }),
            api(mf, "stats", { secret }),
          ];
          for (const { status, json } of await Promise.all(calls)) {
            assertEquals([status, json.error], [401, "unauthenticated"]);
          }
        }
        assertEquals(await stats(mf), before);
      } finally {
        await mf.dispose();
      }
    });
  },
});

Deno.test({
  name: "An acquire over HTTP without waitMs waits no longer than the object's maximum",
  ...MINIFLARE_LEAKS,
  fn: async () => {
    await withWorld(1, async (world) => {
      const mf = start(world, { LIMITER_MAX_WAIT_MS: "200" });
      try {
        await api(mf, "acquire", { body: { holder: "a", weight: 1, ttlMs: 60_000 } });
        const late = await api(mf, "acquire", { body: { holder: "b", weight: 1, ttlMs: 60_000 } });
        assertEquals(late.json, { granted: false, reason: "deadline" });
        assertEquals((await stats(mf)).waiting, 0);
      } finally {
        await mf.dispose();
      }
    });
  },
});

Deno.test({
  name: "Lease ids are unguessable and only their holder may renew or release them",
  ...MINIFLARE_LEAKS,
  fn: async () => {
    await withWorld(2, async (world) => {
      const mf = start(world);
      try {
        const held = await api(mf, "acquire", { body: { holder: "a", weight: 1, ttlMs: 60_000 } });
        const leaseId = (held.json.lease as { id: string }).id;
        assert(/^l-\d+-[0-9a-f]{32}$/.test(leaseId), `lease id ${leaseId} is guessable`);
        const stolen = await api(mf, "release", { body: { leaseId, holder: "mallory" } });
        assertEquals(stolen.json, { released: false });
        const renewed = await api(mf, "renew", { body: { leaseId, holder: "mallory", ttlMs: 5 } });
        assertEquals(renewed.json, { lease: null });
        assertEquals((await stats(mf)).inUse, 1);
        const own = await api(mf, "release", { body: { leaseId, holder: "a" } });
        assertEquals(own.json, { released: true });
      } finally {
        await mf.dispose();
      }
    });
  },
});
