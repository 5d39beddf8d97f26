import { assertEquals, assertThrows } from "../_assert.ts";
import { BlockPool } from "../../src/limits/block_pool.ts";

Deno.test("BlockPool rejects a block size, spare count or TTL that cannot work", () => {
  assertThrows(() => new BlockPool({ blockSize: 0, ttlMs: 1 }), /'blockSize'.*current value is 0/);
  assertThrows(() => new BlockPool({ blockSize: 1, ttlMs: 0 }), /'ttlMs'.*current value is 0/);
  assertThrows(
    () => new BlockPool({ blockSize: 1, ttlMs: 1, spareBlocks: -1 }),
    /'spareBlocks'.*-1/,
  );
});

Deno.test("BlockPool takes locally only what its blocks cover", () => {
  const pool = new BlockPool({ blockSize: 2, ttlMs: 100 });
  assertEquals(pool.take(1, 0), false);
  pool.granted({ id: "l-1", weight: 2 }, 2, 0);
  assertEquals([pool.take(1, 1), pool.take(1, 1), pool.take(1, 1)], [true, true, false]);
});

Deno.test("BlockPool asks for just enough blocks, counting those already requested", () => {
  const pool = new BlockPool({ blockSize: 4, ttlMs: 100 });
  assertEquals(pool.requests(5, 0), [4, 4]);
  assertEquals(pool.requests(5, 0), [], "two blocks are already on their way");
  pool.refused(4);
  assertEquals(pool.requests(5, 0), [4]);
});

Deno.test("BlockPool stops counting a block at its local expiry and returns it", () => {
  const pool = new BlockPool({ blockSize: 2, ttlMs: 100 });
  pool.granted({ id: "l-1", weight: 2 }, 2, 10);
  assertEquals(pool.take(2, 109), true);
  pool.give(2);
  assertEquals(pool.take(1, 110), false, "the TTL counts from when the request was sent");
  assertEquals(pool.surplus(0, 110), ["l-1"]);
});

Deno.test("BlockPool returns blocks beyond demand plus its spares, never one in use", () => {
  const pool = new BlockPool({ blockSize: 2, ttlMs: 100, spareBlocks: 1 });
  for (const id of ["l-1", "l-2", "l-3"]) pool.granted({ id, weight: 2 }, 2, 0);
  pool.take(2, 1);
  assertEquals(pool.surplus(0, 1).length, 1, "one in use, one spare kept, one returned");
  assertEquals(pool.stats(1).held, 4);
  pool.give(2);
  assertEquals(pool.surplus(0, 2).length, 1);
  assertEquals(pool.stats(2).held, 2);
});

Deno.test("BlockPool renews blocks past half their TTL only while in use", () => {
  const pool = new BlockPool({ blockSize: 2, ttlMs: 100 });
  pool.granted({ id: "l-1", weight: 2 }, 2, 0);
  assertEquals(pool.dueForRenewal(0, 60), [], "an idle pool lets its block lapse");
  pool.take(1, 60);
  assertEquals(pool.dueForRenewal(0, 60), ["l-1"]);
  assertEquals(pool.dueForRenewal(0, 61), [], "a renewal is already on its way");
  pool.renewed("l-1", 60);
  assertEquals(pool.take(1, 150), true, "renewed until 160");
});

Deno.test("BlockPool runs on its safe share while the ledger is unreachable, then asks again", () => {
  const pool = new BlockPool({ blockSize: 4, ttlMs: 100, safeShare: 1, retryMs: 50 });
  assertEquals(pool.requests(1, 0), [4]);
  pool.unreachable(0, 4);
  assertEquals([pool.take(1, 1), pool.take(1, 1)], [true, false]);
  assertEquals(pool.requests(1, 10), [], "within the retry pause");
  assertEquals(pool.requests(1, 50), [4]);
  pool.granted({ id: "l-1", weight: 4 }, 4, 50);
  assertEquals(pool.stats(51).unreachable, false);
  assertEquals(pool.stats(51).capacity, 4);
});
