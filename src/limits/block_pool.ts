/**
 * `BlockPool`: the pure policy of block leasing (Google's Doorman idea). An isolate leases
 * *blocks* of permits from the global ledger and sub-grants them locally, so most acquires and
 * releases never leave the isolate. No timers and no I/O: the caller passes the time, performs
 * the calls the pool asks for, and reports how they went.
 *
 * Why the ceiling holds exactly: a permit is taken locally only while the blocks held cover
 * it, and a block counts only until its *local* expiry — the time its request (or renewal) was
 * sent plus the TTL. The ledger starts its TTL when the request arrives, later, so by any
 * clock's rate the isolate stops counting a block before the ledger can hand it to another.
 *
 * @module
 */

/**
 * Options of {@linkcode BlockPool}.
 *
 * @example
 * ```ts
 * import type { BlockPoolOptions } from "./block_pool.ts";
 * const options: BlockPoolOptions = { blockSize: 8, ttlMs: 30_000, spareBlocks: 1, safeShare: 2 };
 * ```
 */
export interface BlockPoolOptions {
  /** Permits per block: the larger, the fewer calls to the ledger and the more idle permits. */
  blockSize: number;
  /** Lease lifetime of a block in ms; renewed after half of it while the pool is in use. */
  ttlMs: number;
  /** Free blocks kept beyond current demand before returning one; 1 by default. */
  spareBlocks?: number;
  /**
   * Permits the isolate may use on its own while the ledger is unreachable; 0 by default (fail
   * closed). The ceiling holds during an outage only if this times the number of isolates stays
   * within the capacity the ledger is not handing out.
   */
  safeShare?: number;
  /** After a failed call, how long to run on the safe share before calling again, in ms; 1000. */
  retryMs?: number;
}

interface Block {
  leaseId: string;
  weight: number;
  /** Local time after which the block no longer counts. */
  expiresAt: number;
  /** Local time after which a pool in use renews it. */
  renewAt: number;
  renewing: boolean;
}

/**
 * A snapshot of a {@linkcode BlockPool}.
 *
 * @example
 * ```ts
 * import { BlockPool } from "./block_pool.ts";
 * const { held, inUse } = new BlockPool({ blockSize: 4, ttlMs: 1000 }).stats(0);
 * ```
 */
export interface BlockPoolStats {
  /** Permits usable now: live blocks, or the safe share when that is more during an outage. */
  capacity: number;
  /** Permits of live blocks. */
  held: number;
  /** Blocks held (live or not yet returned). */
  blocks: number;
  /** Permits sub-granted and not yet given back. */
  inUse: number;
  /** Permits of block requests in flight. */
  requested: number;
  /** Whether the last call to the ledger failed and the pool runs on its safe share. */
  unreachable: boolean;
}

/**
 * The block-leasing policy: what to take locally, which blocks to ask for, renew and return.
 *
 * @example
 * ```ts
 * import { BlockPool } from "./block_pool.ts";
 *
 * const pool = new BlockPool({ blockSize: 4, ttlMs: 1000 });
 * pool.take(1, 0); // false: nothing held yet
 * const asks = pool.requests(1, 0); // [4]: one block of 4
 * pool.granted({ id: "l-1", weight: 4 }, 4, 0);
 * pool.take(1, 1); // true, with no call to the ledger
 * ```
 */
export class BlockPool {
  #blockSize: number;
  #ttlMs: number;
  #spareBlocks: number;
  #safeShare: number;
  #retryMs: number;
  #blocks = new Map<string, Block>();
  #inUse = 0;
  #requested = 0;
  #unreachableUntil = -Infinity;
  #unreachable = false;

  /** A pool holding nothing. */
  constructor(
    { blockSize, ttlMs, spareBlocks = 1, safeShare = 0, retryMs = 1000 }: BlockPoolOptions,
  ) {
    for (
      const [field, value] of [["blockSize", blockSize], ["spareBlocks", spareBlocks], [
        "safeShare",
        safeShare,
      ]] as const
    ) {
      if (!Number.isSafeInteger(value) || value < (field === "blockSize" ? 1 : 0)) {
        throw new RangeError(
          `Cannot create a block pool as '${field}' must be a whole number${
            field === "blockSize" ? " of at least 1" : ""
          }: current value is ${value}`,
        );
      }
    }
    if (!(ttlMs > 0) || !Number.isFinite(ttlMs)) {
      throw new RangeError(
        `Cannot create a block pool as 'ttlMs' must be a positive finite number of ms: current value is ${ttlMs}`,
      );
    }
    this.#blockSize = blockSize;
    this.#ttlMs = ttlMs;
    this.#spareBlocks = spareBlocks;
    this.#safeShare = safeShare;
    this.#retryMs = retryMs;
  }

  /** Permits per block. */
  get blockSize(): number {
    return this.#blockSize;
  }

  /** Lease lifetime of a block in ms. */
  get ttlMs(): number {
    return this.#ttlMs;
  }

  /** Blocks held, live or not yet returned. */
  get blocks(): number {
    return this.#blocks.size;
  }

  /** Permits sub-granted and not yet given back. */
  get inUse(): number {
    return this.#inUse;
  }

  /** Takes `weight` permits locally if the pool covers them now; returns whether it did. */
  take(weight: number, now: number): boolean {
    if (this.#inUse + weight > this.#capacity(now)) return false;
    this.#inUse += weight;
    return true;
  }

  /** Gives back `weight` permits taken with {@linkcode BlockPool.take}. */
  give(weight: number): void {
    this.#inUse = Math.max(0, this.#inUse - weight);
  }

  /**
   * Block sizes to request now so that `demand` more permits (those waiting locally) would fit,
   * counting requests already in flight; counted as in flight from here. Nothing while the
   * ledger is unreachable and the retry pause has not passed.
   */
  requests(demand: number, now: number): number[] {
    if (now < this.#unreachableUntil) return [];
    const shortfall = this.#inUse + demand - this.#held(now) - this.#requested;
    const asks: number[] = [];
    for (let missing = shortfall; missing > 0; missing -= this.#blockSize) {
      asks.push(this.#blockSize);
      this.#requested += this.#blockSize;
    }
    return asks;
  }

  /** A block request sent at `sentAt` was granted `lease`. */
  granted(lease: { id: string; weight: number }, requested: number, sentAt: number): void {
    this.#requested -= requested;
    this.#reachable();
    this.#blocks.set(lease.id, {
      leaseId: lease.id,
      weight: lease.weight,
      expiresAt: sentAt + this.#ttlMs,
      renewAt: sentAt + this.#ttlMs / 2,
      renewing: false,
    });
  }

  /** A block request was answered without a grant (deadline or full queue). */
  refused(requested: number): void {
    this.#requested -= requested;
    this.#reachable();
  }

  /** A call to the ledger failed at `now`: run on the safe share for a while. */
  unreachable(now: number, requested = 0): void {
    this.#requested -= requested;
    this.#unreachable = true;
    this.#unreachableUntil = now + this.#retryMs;
  }

  /**
   * Blocks to renew now, marked as renewing: those past half their TTL, while the pool is in use
   * or in demand. An idle pool lets its blocks lapse, so an isolate that went quiet gives its
   * share back without a call.
   */
  dueForRenewal(demand: number, now: number): string[] {
    if (this.#inUse + demand === 0 || now < this.#unreachableUntil) return [];
    const due: string[] = [];
    for (const block of this.#blocks.values()) {
      if (block.renewing || block.renewAt > now || block.expiresAt <= now) continue;
      block.renewing = true;
      due.push(block.leaseId);
    }
    return due;
  }

  /** A renewal sent at `sentAt` succeeded. */
  renewed(leaseId: string, sentAt: number): void {
    this.#reachable();
    const block = this.#blocks.get(leaseId);
    if (block === undefined) return;
    Object.assign(block, {
      expiresAt: sentAt + this.#ttlMs,
      renewAt: sentAt + this.#ttlMs / 2,
      renewing: false,
    });
  }

  /** The ledger no longer holds this block (it expired there): forget it. */
  lost(leaseId: string): void {
    this.#reachable();
    this.#blocks.delete(leaseId);
  }

  /** A renewal failed to reach the ledger at `now`. */
  renewFailed(leaseId: string, now: number): void {
    const block = this.#blocks.get(leaseId);
    if (block !== undefined) block.renewing = false;
    this.unreachable(now);
  }

  /**
   * Blocks to give back now, removed from the pool: every block past its local expiry, then
   * live blocks beyond what is in use, in demand, and {@linkcode BlockPoolOptions.spareBlocks}
   * spares.
   */
  surplus(demand: number, now: number): string[] {
    const back: string[] = [];
    for (const block of this.#blocks.values()) {
      if (block.expiresAt <= now && !block.renewing) {
        this.#blocks.delete(block.leaseId);
        back.push(block.leaseId);
      }
    }
    const keep = this.#inUse + demand + this.#spareBlocks * this.#blockSize;
    let held = this.#held(now);
    for (const block of [...this.#blocks.values()].sort((a, b) => a.expiresAt - b.expiresAt)) {
      if (block.renewing || held - block.weight < keep) continue;
      this.#blocks.delete(block.leaseId);
      held -= block.weight;
      back.push(block.leaseId);
    }
    return back;
  }

  /** Every block, removed from the pool: what to give back when closing. */
  drain(): string[] {
    const all = [...this.#blocks.keys()];
    this.#blocks.clear();
    return all;
  }

  /** A snapshot at `now`. */
  stats(now: number): BlockPoolStats {
    return {
      capacity: this.#capacity(now),
      held: this.#held(now),
      blocks: this.#blocks.size,
      inUse: this.#inUse,
      requested: this.#requested,
      unreachable: this.#unreachable,
    };
  }

  #reachable(): void {
    this.#unreachable = false;
    this.#unreachableUntil = -Infinity;
  }

  #held(now: number): number {
    let held = 0;
    for (const block of this.#blocks.values()) if (block.expiresAt > now) held += block.weight;
    return held;
  }

  #capacity(now: number): number {
    const held = this.#held(now);
    return this.#unreachable ? Math.max(held, this.#safeShare) : held;
  }
}
