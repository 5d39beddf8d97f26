import assert from "node:assert/strict";
import { AdaptiveLimiter, isAdmissionRejectedError } from "../../src/limits/mod.ts";
import { flush, rejectionOf } from "../_deferred.ts";

const LONG_MS = 60_000;

Deno.test("AdaptiveLimiter hands a released place to the waiter, which then holds it", async () => {
  const limiter = new AdaptiveLimiter({ initialLimit: 1, maxLimit: 1, intervalMs: LONG_MS });
  const first = await limiter.acquire();
  const second = limiter.acquire();
  assert.equal(limiter.stats().waiting, 1);
  await first.release();
  const permit = await second;
  assert.deepEqual(
    [limiter.stats().inFlight, limiter.stats().waiting, limiter.stats().admitted],
    [1, 0, 2],
  );
  await permit.release();
  await permit.release(); // harmless
  assert.equal(limiter.stats().inFlight, 0);
});

Deno.test("AdaptiveLimiter rejects a waiter whose sojourn bound passes, naming the reason, and leaves no timer", async () => {
  const limiter = new AdaptiveLimiter({ initialLimit: 1, maxLimit: 1, targetMs: 1, intervalMs: 1 });
  const holder = await limiter.acquire();
  await assert.rejects(
    limiter.acquire(),
    (error) => isAdmissionRejectedError(error) && error.reason === "sojourn",
  );
  assert.equal(limiter.stats().turnedAway.sojourn, 1);
  await holder.release();
});

Deno.test("AdaptiveLimiter stops a waiter whose signal aborts, with the signal's reason", async () => {
  const limiter = new AdaptiveLimiter({ initialLimit: 1, maxLimit: 1, intervalMs: LONG_MS });
  const holder = await limiter.acquire();
  const controller = new AbortController();
  const waiting = limiter.acquire(1, { signal: controller.signal });
  controller.abort(new Error("client left"));
  await assert.rejects(waiting, /client left/);
  const stats = limiter.stats();
  assert.equal(stats.cancelled, 1);
  assert.equal(stats.offered, stats.admitted + stats.rejected + stats.shed + stats.cancelled);
  await holder.release();
});

Deno.test("AdaptiveLimiter grants only weight 1", async () => {
  await assert.rejects(new AdaptiveLimiter().acquire(2), /'weight' must be 1: current value is 2/);
});

Deno.test("AdaptiveLimiter with handOffMs settles a waiter in its own turn, not in the turn of the release that admits it", async () => {
  const limiter = new AdaptiveLimiter({
    initialLimit: 1,
    maxLimit: 1,
    intervalMs: LONG_MS,
    handOffMs: 1,
  });
  const first = await limiter.acquire();
  let settled = false;
  const waiting = limiter.acquire().finally(() => settled = true);
  await first.release();
  await flush();
  assert.equal(settled, false, "settled from the releasing caller's turn");
  assert.equal(limiter.stats().inFlight, 1, "the permit is the waiter's already");
  const second = await waiting;
  await second.release();
  assert.equal(limiter.stats().inFlight, 0);
});

Deno.test("AdaptiveLimiter gives an admission back when its waiter has not taken it up within maxHandOffMs", async () => {
  const limiter = new AdaptiveLimiter({
    initialLimit: 1,
    maxLimit: 1,
    intervalMs: LONG_MS,
    handOffMs: 1,
    // Any admission not taken up by the next turn counts as abandoned.
    maxHandOffMs: 0,
  });
  const first = await limiter.acquire();
  const abandoned = limiter.acquire();
  await first.release();
  // The next caller's turn finds the admission not taken up, takes it back and admits itself.
  const next = limiter.acquire();
  const error = await rejectionOf(abandoned);
  assert.ok(isAdmissionRejectedError(error), String(error));
  const permit = await next;
  assert.equal(limiter.stats().inFlight, 1);
  await permit.release();
  assert.equal(limiter.stats().inFlight, 0);
});

Deno.test("AdaptiveLimiter with handOffMs ends a queued waiter whose signal aborts, leaving no timer", async () => {
  const limiter = new AdaptiveLimiter({
    initialLimit: 1,
    maxLimit: 1,
    intervalMs: LONG_MS,
    handOffMs: 1,
  });
  const first = await limiter.acquire();
  const controller = new AbortController();
  const waiting = limiter.acquire(1, { signal: controller.signal });
  controller.abort(new Error("client gone"));
  assert.equal(String(await rejectionOf(waiting)), "Error: client gone");
  await first.release();
  assert.equal(limiter.stats().inFlight, 0);
});

Deno.test("AdaptiveLimiter.admit answers each outcome as a value: admitted, rejected, queued then decided, aborted", async () => {
  const limiter = new AdaptiveLimiter({
    initialLimit: 1,
    maxLimit: 1,
    maxQueue: 1,
    intervalMs: LONG_MS,
    retryAfterMs: 2000,
  });
  const first = limiter.admit();
  assert.equal(first.kind, "admitted");
  const second = limiter.admit();
  assert.equal(second.kind, "queued");
  // Not overloaded yet (the queue was empty a moment ago): a full queue turns the third away.
  assert.deepEqual(limiter.admit(), {
    kind: "rejected",
    reason: "queue_full",
    retryAfterMs: 2000,
    waiting: 1,
  });
  const gone = AbortSignal.abort(new Error("client left"));
  const aborted = limiter.admit({ signal: gone });
  assert.equal(aborted.kind, "aborted");
  assert.equal((aborted as { reason: Error }).reason.message, "client left");
  if (first.kind !== "admitted" || second.kind !== "queued") throw new Error("unreachable");
  await first.permit.release();
  const decided = await second.decided;
  assert.equal(decided.kind, "admitted");
  if (decided.kind === "admitted") await decided.permit.release();
  const { offered, admitted, rejected } = limiter.stats();
  assert.deepEqual([offered, admitted, rejected], [3, 2, 1]);
});

Deno.test("AdaptiveLimiter.admit resolves a queued caller's decision to a refusal, never a rejection, when its wait runs out", async () => {
  const limiter = new AdaptiveLimiter({ initialLimit: 1, maxLimit: 1, targetMs: 1, intervalMs: 1 });
  const holder = await limiter.acquire();
  const queued = limiter.admit();
  assert.equal(queued.kind, "queued");
  if (queued.kind !== "queued") return;
  assert.deepEqual(await queued.decided, {
    kind: "rejected",
    reason: "sojourn",
    retryAfterMs: 1000,
    waiting: 0,
  });
  await holder.release();
});

/**
 * A limiter that watches its event loop every 1 ms (bound 25 ms) on a clock the test moves, while
 * it holds one permit for three samples: each read of the clock moves it `stepMs` on (each
 * sample then fires `stepMs - 1` ms late), or, with `once`, only the first sample is late. Its
 * stats then, and once the permit is back.
 */
async function holdWithLateSamples(stepMs: number, { once = false } = {}) {
  let now = 0;
  let reads = 0;
  const limiter = new AdaptiveLimiter({
    initialLimit: 20,
    maxLimit: 20,
    maxLagMs: 25,
    lagIntervalMs: 1,
    clock: () => (reads++, once ? now : now += stepMs),
  });
  const permit = await limiter.acquire();
  if (once) now += stepMs;
  // While it holds the permit only its event-loop samples read the clock: wait for three of them
  // (at most 50 waits of 1 ms), whatever the pace of the timers.
  const samplesFrom = reads;
  for (let i = 0; i < 50 && reads < samplesFrom + 3; i++) {
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const during = limiter.stats();
  await permit.release();
  return { during, after: limiter.stats() };
}

Deno.test("AdaptiveLimiter with maxLagMs backs the limit off when its event loop runs late three samples in a row, and holds no timer once idle", async () => {
  const { during, after } = await holdWithLateSamples(28); // each sample 27 ms late
  assert.ok(during.lagBackOffs >= 1, `backed off ${during.lagBackOffs} times`);
  // × (1 − 0.2 / 2) each time.
  assert.equal(during.limit, Math.floor(20 * 0.9 ** during.lagBackOffs));
  // Idle: the watch stopped with the release (the sanitizers fail a test that leaks its timer).
  assert.equal(after.lagMs, 0);
});

Deno.test("AdaptiveLimiter with maxLagMs backs off further the later its event loop runs, at most by half", async () => {
  const { during } = await holdWithLateSamples(100); // 99 ms late: × 25 / 99, held at half
  assert.ok(during.lagBackOffs >= 1);
  assert.equal(during.limit, Math.max(1, Math.floor(20 * 0.5 ** during.lagBackOffs)));
});

Deno.test("AdaptiveLimiter with maxLagMs leaves the limit alone for one late sample, or samples within the bound", async () => {
  const once = await holdWithLateSamples(100, { once: true });
  assert.deepEqual([once.during.limit, once.during.lagBackOffs], [20, 0]);
  const timely = await holdWithLateSamples(10); // 9 ms late: within the bound
  assert.deepEqual([timely.during.limit, timely.during.lagBackOffs], [20, 0]);
});

Deno.test("AdaptiveLimiter.tryAcquire takes a free place, and counts nothing when there is none", async () => {
  const limiter = new AdaptiveLimiter({ initialLimit: 1, maxLimit: 1, intervalMs: LONG_MS });
  const first = limiter.tryAcquire();
  assert.ok(first !== undefined);
  assert.equal(limiter.tryAcquire(), undefined);
  const waiting = limiter.acquire();
  await first.release();
  // The place freed went to the waiter, not to a newcomer.
  assert.equal(limiter.tryAcquire(), undefined);
  await (await waiting).release();
  const { offered, admitted, inFlight } = limiter.stats();
  assert.deepEqual([offered, admitted, inFlight], [2, 2, 0]);
});

Deno.test("AdaptiveLimiter.tryRefuse refuses only when the queue is full, as admit would, and counts nothing otherwise", async () => {
  const limiter = new AdaptiveLimiter({
    initialLimit: 1,
    maxLimit: 1,
    maxQueue: 1,
    intervalMs: LONG_MS,
    retryAfterMs: 2000,
  });
  assert.equal(limiter.tryRefuse(), undefined, "a place is free");
  const first = limiter.tryAcquire()!;
  assert.equal(limiter.tryRefuse(), undefined, "there is room to wait");
  const waiting = limiter.acquire();
  assert.deepEqual(limiter.tryRefuse(), {
    kind: "rejected",
    reason: "queue_full",
    retryAfterMs: 2000,
    waiting: 1,
  });
  await first.release();
  await (await waiting).release();
  const { offered, admitted, rejected, turnedAway } = limiter.stats();
  assert.deepEqual([offered, admitted, rejected, turnedAway.queue_full], [3, 2, 1, 1]);
});
